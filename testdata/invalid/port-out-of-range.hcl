# Port 0 and port 65536, as numbers and in a range.
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
  media = {
    udp = [
      "16384-65535",
      0,             # ERROR: TW105
      65536,         # ERROR: TW105
      "60000-65536", # ERROR: TW105
    ]
  }
}
