# Trap: UDP blocked and TCP 443 blocked as well, with public STUN left open
# (guide, edge case 1). A STUN server answers Binding requests and gives a
# server-reflexive candidate, but no media flows to it: this is still no media
# path. validate must say so (TW201 error), as verify does.
#
# UDP is denied for compliance and a second rule denies TCP 443 to the relay
# and the platform too (in the guide, QoS throttles it to nothing). ICE finds no path:
# agents hang on "Connecting" (ice:connection-state failed). `turnwall
# verify` must fail and say why.

policy "stun-only" {
  description    = "UDP and TCP 443 to the relay denied: no media path"
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
  ranges = ["52.129.96.0/20"]
  https  = true

  stun_fqdns = ["stun.l.google.com"]
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

rule "no-udp" {
  action      = "deny"
  from        = agents.floor
  to          = [relay.dmz, provider.platform]
  udp         = ["1-65535"]
  description = "Compliance: no UDP leaves the agent VLAN"
}

rule "no-tls-443" {
  action      = "deny"
  from        = agents.floor
  to          = [relay.dmz, provider.platform]
  tcp         = [443]
  description = "Outbound 443 only through the web proxy"
}

platform "contact-center" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 60
  tcp_fallback        = true
}
