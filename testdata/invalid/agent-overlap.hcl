# Agent subnets that overlap a provider's ranges and a relay's address.
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
  zone = zone.agents
  subnets = [
    "10.20.0.0/16",
    "198.51.100.128/25", # ERROR: TW109
    "192.0.2.0/24",      # ERROR: TW109
  ]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

relay "edge" {
  zone      = zone.internet
  addresses = ["192.0.2.10"]
  realm     = "example.com"
  peers     = [agents.floor]
}
