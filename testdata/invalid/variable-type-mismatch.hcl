# Variable defaults that do not convert to the declared type.
policy "p" {
  default_action = "deny"
}

variable "priority" {
  type    = number
  default = "high" # ERROR: TW111
}

variable "ranges" {
  type    = list(string)
  default = { a = ["198.51.100.0/24"] } # ERROR: TW111
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

platform "ccaas" {
  ice_check_priority = var.priority
}
