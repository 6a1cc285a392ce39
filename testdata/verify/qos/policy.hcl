# QoS for media (guide, edge case 1): dropouts under load.
#
# Browsing and media share the uplink. The fix is to prioritise WebRTC over
# browsing, and not to throttle the TCP 443 fallback: media and TURN are
# marked EF (RFC 8325 audio), the provider's second media service AF41
# (video), signalling and the TURN/TLS fallback CS5, each by the provider's
# or relay's addresses, never by port alone. `turnwall verify` reads the
# DSCP of the first packet at the far end and of the reply back, on the wire.

policy "qos" {
  description    = "WebRTC media prioritised over browsing"
  default_action = "deny"
}

zone "agents" { interface = "vlan30" }
zone "dmz" { interface = "dmz0" }
zone "internet" { interface = "wan0" }

agents "floor" {
  zone    = zone.agents
  subnets = ["10.30.0.0/17", "fd00:30::/56"]
}

provider "platform" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20", "2600:1f18:4e0::/44"]
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

# Web sites the agents browse: allowed, in no class, so left unmarked.
provider "sites" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
}

relay "dmz" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10", "2001:db8:30::10"]
  fqdn        = "turn.example.com"
  realm       = "example.com"
  relay_ports = "49152-59999"
  peers       = [agents.floor, provider.platform]
  lab_only    = true

  listen {
    udp = 3478
    tls = 443
  }
}

platform "contact-center" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 60
  tcp_fallback        = true
}

qos {
  class "audio" {
    flows    = [provider.platform, relay.dmz]
    purposes = ["media", "stun-turn", "turn", "relay-media", "relay-return"]
    dscp     = "EF"
  }
  class "video" {
    flows    = [provider.video]
    purposes = ["media"]
    dscp     = "AF41"
  }
  class "signalling" {
    description = "signalling and the TURN/TLS fallback: prioritised, never throttled"
    flows       = [provider.platform, provider.video, relay.dmz]
    purposes    = ["signalling", "turn-tls"]
    dscp        = "CS5"
    replies     = false
  }
}
