# Function calls that fail: a subnet that does not fit, and an unknown function.
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
  subnets = [cidrsubnet("10.20.0.0/16", 20, 0)] # ERROR: Error in function call
}

agents "annex" {
  zone    = zone.agents
  subnets = cidrsubnets("10.30.0.0/16", 8, 8) # ERROR: Call to unknown function
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
