# Host bits set in a prefix are a warning (the prefix is normalised); the
# invalid provider range beside it is the error.
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
  subnets = ["10.20.1.5/16"] # WARNING: TW104
}

provider "saas" {
  zone = zone.internet
  ranges = [
    "198.51.100.7/24", # WARNING: TW104
    "198.51.256.0/24", # ERROR: TW103
  ]
  https = true
  media = { udp = ["16384-65535"] }
}
