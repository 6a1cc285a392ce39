# An empty address entry, a scoped IPv6 address and a range whose end is not an address.
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
    "",                        # ERROR: TW103
    "fe80::1%eth0",            # ERROR: TW103
    "10.21.0.1-10.21.0.x",     # ERROR: TW103
  ]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
