# The shape from the policy-language design: Genesys Cloud, a private relay in
# a DMZ, platform settings and a SIP trunk rule. Expected findings: a low
# ice_check_priority (TW203) and SIP for WebRTC-only agents (TW209).
policy "floor3" {
  description = "WebRTC agents to Genesys Cloud with a private relay"
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
  ranges = ["52.129.96.0/20", "169.150.104.0/21", "167.234.48.0/20", "136.245.64.0/18"]
  https      = true
  turn       = { udp = [3478], tcp = [3478] }
  media      = { udp = ["16384-65535"] }
  stun_fqdns = ["stun.l.google.com"]
}

relay "corp" {
  zone        = zone.dmz
  addresses   = ["198.51.100.10", "2001:db8::10"]
  fqdn        = "turn.example.com"
  realm       = "example.com"
  relay_ports = "49152-65535"
  peers       = [agents.floor3, provider.genesys]
  lab_only    = true
  listen {
    udp = 3478
    tcp = 3478
    tls = 5349
  }
}

platform "genesys-cloud" {
  use_turn             = true
  preferred_transport  = "udp"
  ice_check_priority   = 20
  tcp_fallback         = true
  turn_server_override = relay.corp.fqdn
  tenant_realm         = "example.com"
}

rule "sip-trunk" {
  from = agents.floor3
  to   = ["203.0.113.0/28"]
  udp  = ["5060"]
  tcp  = ["5061"]
}
