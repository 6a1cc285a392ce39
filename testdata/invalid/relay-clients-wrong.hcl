# A relay's clients are agents groups: one is misspelt, one is a provider.
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

provider "saas" {
  zone   = zone.dmz
  ranges = ["198.51.100.0/24"]
  https  = true
}

relay "dmz" {
  zone      = zone.dmz
  addresses = ["192.0.2.10"]
  realm     = "example.com"
  peers     = [agents.floor]
  clients = [
    "flor",        # ERROR: TW102
    provider.saas, # ERROR: TW117
  ]
}
