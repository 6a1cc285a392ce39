# Media before browsing (the guide's edge case 1): Genesys Cloud and a video
# service through a private relay, with RFC 8325 markings: EF for audio media
# and TURN, AF41 for the video service's media, CS5 for signalling and the
# TCP 443 fallback to the provider (by destination, never by port alone).
policy "qos" {
  description = "WebRTC media prioritised over browsing"
}
zone "agents"   { interface = "vlan20" }
zone "internet" { interface = "wan0" }
zone "dmz"      { interface = "dmz0" }

agents "floor3" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16", "fd00:20::/48"]
}

provider "genesys" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20", "169.150.104.0/21", "2600:1f18:4e0::/44"]
  https  = true
  turn   = { udp = [3478], tcp = [3478] }
  media  = { udp = ["16384-65535"] }
}

provider "video" {
  zone   = zone.internet
  ranges = ["203.0.113.0/24"]
  https  = true
  media  = { udp = ["10000-20000"] }
}

relay "corp" {
  zone        = zone.dmz
  addresses   = ["198.51.100.10", "2001:db8::10"]
  realm       = "example.com"
  relay_ports = "49152-65535"
  peers       = [agents.floor3, provider.genesys]
  lab_only    = true
  listen {
    udp = 3478
    tls = 443
  }
}

rule "web" {
  from = agents.floor3
  to   = ["192.0.2.0/24"]
  tcp  = [80, 443]
}

qos {
  class "audio" {
    flows    = [provider.genesys, relay.corp]
    purposes = ["media", "stun-turn", "turn", "relay-media", "relay-return"]
    dscp     = "EF"
  }
  class "video" {
    flows    = [provider.video]
    purposes = ["media"]
    dscp     = "AF41"
  }
  class "signalling" {
    description = "signalling and the TURN/TLS fallback, not throttled"
    flows       = [provider.genesys, provider.video, relay.corp]
    purposes    = ["signalling", "turn-tls"]
    dscp        = 40
    replies     = false
  }
}
