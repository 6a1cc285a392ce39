# A variable default must be a constant; it cannot refer to a local.
policy "p" {
  default_action = "deny"
}

locals {
  saas_ranges = ["198.51.100.0/24"]
}

variable "ranges" {
  type    = list(string)
  default = local.saas_ranges # ERROR: Variables not allowed
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
  ranges = var.ranges
  https  = true
  media  = { udp = ["16384-65535"] }
}
