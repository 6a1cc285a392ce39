# Ports that are not numbers: a service name, a half range, a negative number and a fraction.
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
  media  = { udp = ["16384-65535"] }
}

rule "extra" {
  from = [agents.floor]
  to   = [provider.saas]
  tcp = [
    "https", # ERROR: TW105
    "3478-", # ERROR: TW105
    -5,      # ERROR: TW105
    443.5,   # ERROR: TW105
  ]
}
