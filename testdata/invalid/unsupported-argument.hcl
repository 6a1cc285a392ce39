# A typo in an attribute name: "subnet" for "subnets". HCL reports the unknown
# argument, and the required one as missing.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" { # ERROR: Missing required argument
  zone   = zone.agents
  subnet = ["10.20.0.0/16"] # ERROR: Unsupported argument
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
