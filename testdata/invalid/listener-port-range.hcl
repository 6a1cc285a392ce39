# A relay listens on single ports, not on a range.
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
  realm     = "example.com"
  peers     = [agents.floor]

  listen {
    udp = [3478, "3479-3481"] # ERROR: TW105
    tcp = 3478
  }
}
