# An agents group with no subnets, a zone with no interface and a rule with no sources.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = [] # ERROR: TW108
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

agents "empty" {
  zone    = zone.agents
  subnets = [] # ERROR: TW108
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

rule "nobody" {
  from = [] # ERROR: TW108
  to   = [provider.saas]
  tcp  = ["8443"]
}
