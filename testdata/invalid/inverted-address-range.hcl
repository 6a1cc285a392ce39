# Address ranges written end first.
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
  subnets = ["10.20.0.9-10.20.0.1"] # ERROR: TW106
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24", "2001:db8::ff-2001:db8::1"] # ERROR: TW106
  https  = true
  media  = { udp = ["16384-65535"] }
}
