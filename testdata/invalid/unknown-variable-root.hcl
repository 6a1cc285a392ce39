# "vars" is not a namespace (var is); HCL reports the unknown variable.
policy "p" {
  default_action = "deny"
}

variable "agent_subnets" {
  type    = list(string)
  default = ["10.20.0.0/16"]
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = vars.agent_subnets # ERROR: Unknown variable
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
