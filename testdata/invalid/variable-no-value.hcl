# A variable with no default, and none given on the command line.
policy "p" {
  default_action = "deny"
}

variable "agent_subnet" { # ERROR: TW112
  type        = string
  description = "The agents' subnet"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = [var.agent_subnet]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
