# Type errors HCL reports itself: arithmetic on a string, a list where a string is needed.
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
  zone        = zone.agents
  subnets     = ["10.20.0.0/16"]
  description = "Floor " + 3 # ERROR: Invalid operand
}

provider "saas" {
  zone        = zone.internet
  ranges      = ["198.51.100.0/24"]
  description = upper(["saas"]) # ERROR: Invalid function argument
  https       = true
  media       = { udp = ["16384-65535"] }
}
