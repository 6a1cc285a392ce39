# The platform's TURN override names relay "dmx", a typo for "dmz".
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
}

platform "ccaas" {
  turn_server_override = relay.dmx.fqdn # ERROR: TW102
}
