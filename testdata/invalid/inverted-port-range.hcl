# Port ranges written end first, in a provider flow and in a rule.
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
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["65535-16384"] } # ERROR: TW106
}

rule "extra" {
  from = [agents.floor]
  to   = [provider.saas]
  udp  = ["3478"]
  tcp  = ["5000-4000"] # ERROR: TW106
}
