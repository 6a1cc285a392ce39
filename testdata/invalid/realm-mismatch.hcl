# The relay's realm differs from the platform's tenant realm: TURN auth fails.
# A low ice_check_priority beside it is only a warning.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "dmz" {
  interface = "dmz0"
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

relay "dmz" {
  zone      = zone.dmz
  addresses = ["192.0.2.10"]
  fqdn      = "turn.example.com"
  realm     = "example.com"
  peers     = [agents.floor]

  listen {
    udp = 3478
    tcp = [3478, 443]
  }
}

platform "ccaas" {
  turn_server_override = relay.dmz.fqdn
  tenant_realm         = "example.org" # ERROR: TW204
  ice_check_priority   = 20            # WARNING: TW203
}
