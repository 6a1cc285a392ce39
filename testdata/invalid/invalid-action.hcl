# Actions other than "allow" and "deny".
policy "p" {
  default_action = "drop" # ERROR: TW111
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
  media  = { udp = ["16384-65535"] }
}

rule "extra" {
  from   = [agents.floor]
  to     = [provider.saas]
  tcp    = ["8443"]
  action = "alow" # ERROR: TW111
}
