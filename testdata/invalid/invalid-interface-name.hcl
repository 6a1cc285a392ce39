# Interface names with a space, a leading dash, a quote and 33 characters.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = [
    "vlan20",
    "vlan 21",                           # ERROR: TW111
    "-eth0",                             # ERROR: TW111
    "eth\"1",                            # ERROR: TW111
    "abcdefghijklmnopqrstuvwxyz0123456", # ERROR: TW111
  ]
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
