# A zone without its required interface, and a relay without its realm.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" { # ERROR: Missing required argument
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

relay "dmz" { # ERROR: Missing required argument
  zone      = zone.internet
  addresses = ["192.0.2.10"]
}
