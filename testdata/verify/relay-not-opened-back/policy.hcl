# Trap: the relay's port range is not opened back to the agents (guide, edge
# case 2: one-way audio with a valid TURN configuration).
#
# The relay in the DMZ lists only the platform as its peer, so nothing lets
# UDP from its relay ports reach the agent VLAN. Agents reach the relay and
# their own allocations work, but media that the relay sends towards an
# agent's address from its relay range (a remote party relayed through it) is
# dropped by the gateway: the agent hears nothing. The compiler warns TW207;
# `turnwall verify` must fail and report one-way audio.

policy "relay-not-opened-back" {
  description    = "Relay range not opened back to the agents"
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
  peers       = [provider.platform]
  clients     = [agents.floor]
  lab_only    = true

  listen {
    udp = 3478
    tcp = 3478
    tls = 5349
  }
}

platform "contact-center" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 60
  tcp_fallback        = true
}
