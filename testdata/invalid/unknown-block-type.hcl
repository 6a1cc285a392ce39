# A block type the language does not have.
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

firewall "edge" { # ERROR: Unsupported block type
  vendor = "nftables"
}
