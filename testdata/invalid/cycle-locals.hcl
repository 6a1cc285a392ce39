# Two locals defined in terms of each other.
policy "p" {
  default_action = "deny"
}

locals {
  agent_net = local.all_nets[0] # ERROR: TW113
  all_nets  = [local.agent_net, "10.21.0.0/16"]
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = local.all_nets
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}
