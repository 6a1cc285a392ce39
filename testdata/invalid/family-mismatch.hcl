# Address ranges whose ends are in different address families.
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
    "10.20.0.1-fd00:20::ff", # ERROR: TW107
    "fd00:21::1-10.21.0.9",  # ERROR: TW107
  ]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
