# The zone's interface comes from a variable that has no value. The variable is
# the one problem: the zone's interface is unknown, not missing.
policy "p" {
  default_action = "deny"
}

variable "agent_vlan" { # ERROR: TW112
  type = number
}

zone "agents" {
  interface = "vlan${var.agent_vlan}"
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
  media  = { udp = ["16384-65535"] }
}
