# An agents group's zone is a provider; a provider's agents list holds a zone.
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
  zone    = provider.saas # ERROR: TW117
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  agents = [zone.agents] # ERROR: TW117
  https  = true
  media  = { udp = ["16384-65535"] }
}
