# Trap: the relay's realm differs from the platform's tenant realm.
#
# The platform provisions the agents' TURN users in its tenant realm
# ("corp.example.com"); the relay authenticates in its own ("example.com").
# Every allocation is refused with 401 and relayed calls never connect. The
# compiler reports TW204; `turnwall verify` still builds the lab to show the
# allocations failing with that reason, and fails.

policy "realm-mismatch" {
  description    = "Relay realm and tenant realm differ"
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
    tcp = 3478
    tls = 5349
  }
}

platform "contact-center" {
  use_turn             = true
  preferred_transport  = "udp"
  ice_check_priority   = 60
  tcp_fallback         = true
  turn_server_override = relay.dmz.fqdn
  tenant_realm         = "corp.example.com"
}
