# Two zones, two agents groups and two locals of the same name in one file.
policy "p" {
  default_action = "deny"
}

locals {
  media = ["16384-65535"]
}

locals {
  media = ["10000-20000"] # ERROR: TW101
}

zone "agents" {
  interface = "vlan20"
}

zone "agents" { # ERROR: TW101
  interface = "vlan21"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

agents "floor" { # ERROR: TW101
  zone    = zone.agents
  subnets = ["10.21.0.0/16"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = local.media }
}
