# Addresses that are not IPs, CIDR prefixes or ranges.
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
    "10.21.0.0/33",  # ERROR: TW103
    "10.22.0.300",   # ERROR: TW103
    "fd00:20::/129", # ERROR: TW103
    "10.23.0.0/x",   # ERROR: TW103
  ]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
