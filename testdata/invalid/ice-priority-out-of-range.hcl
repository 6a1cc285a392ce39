# ice_check_priority is a whole number from 0 to 100.
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

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

platform "high" {
  ice_check_priority = 150 # ERROR: TW111
}

platform "negative" {
  ice_check_priority = -1 # ERROR: TW111
}

platform "fraction" {
  ice_check_priority = 75.5 # ERROR: TW111
}
