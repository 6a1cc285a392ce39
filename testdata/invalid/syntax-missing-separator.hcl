# HCL syntax error: two list items with no comma between them.
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
  subnets = ["10.20.0.0/16" "10.21.0.0/16"] # ERROR: Missing item separator
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
