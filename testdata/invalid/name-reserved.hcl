# Words some target reserves: "any" (ASA) and "Drop" (nftables, case-insensitively).
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "any" { # ERROR: TW110
  interface = "wan0"
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = zone.any
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

rule "Drop" { # ERROR: TW110
  from   = [agents.floor]
  to     = ["203.0.113.0/24"]
  tcp    = ["1-65535"]
  action = "deny"
}
