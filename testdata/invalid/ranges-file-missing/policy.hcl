# ranges_file() names a file that does not exist.
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
  ranges = ranges_file("saas-ranges.txt") # ERROR: TW114
  https  = true
  media  = { udp = ["16384-65535"] }
}
