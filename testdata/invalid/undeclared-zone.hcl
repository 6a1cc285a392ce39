# Zones named by reference (zone.agent) and by string ("internt") that are not declared.
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
  zone    = zone.agent # ERROR: TW102
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = "internt" # ERROR: TW102
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
