# A provider takes its description from a relay that peers with the provider.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

provider "saas" { # ERROR: TW113
  zone        = zone.internet
  ranges      = ["198.51.100.0/24"]
  description = relay.edge.description
  https       = true
  media       = { udp = ["16384-65535"] }
}

relay "edge" {
  zone        = zone.internet
  addresses   = ["192.0.2.10"]
  realm       = "example.com"
  description = "Edge relay"
  peers       = [agents.floor, provider.saas]
}
