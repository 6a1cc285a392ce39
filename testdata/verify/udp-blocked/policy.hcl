# Trap: UDP blocked for compliance (guide, section 1).
#
# Security blocks every UDP flow from the agents. The call must still work:
# the browser's TURN/UDP allocation fails, and TURN over TLS on TCP 443 to the
# private relay carries the media. `turnwall verify` shows the UDP servers
# failing (decided by rule "no-udp") and the call connected over relay/tls.

policy "udp-blocked" {
  description    = "All UDP from the agents is denied; TURN/TLS 443 carries the call"
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

platform "contact-center" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 60
  tcp_fallback        = true
}
