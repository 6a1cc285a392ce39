# var.media_rangs is a typo for var.media_ranges.
policy "p" {
  default_action = "deny"
}

variable "media_ranges" {
  type    = list(string)
  default = ["198.51.100.0/24"]
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
  ranges = var.media_rangs # ERROR: TW102
  https  = true
  media  = { udp = ["16384-65535"] }
}
