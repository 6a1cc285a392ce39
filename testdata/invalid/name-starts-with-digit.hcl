# Names must start with a letter (nftables), and hold no spaces or dots.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "3rd-floor" { # ERROR: TW110
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

rule "admin console" { # ERROR: TW110
  from = ["10.20.9.0/24"]
  to   = [provider.saas]
  tcp  = ["8443"]
}
