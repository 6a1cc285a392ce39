# Blocks missing what they need: a rule with no ports, a provider with no
# destinations, a relay with an empty realm and a key without a certificate.
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

provider "nowhere" { # ERROR: TW112
  zone = zone.internet
}

relay "edge" { # ERROR: TW112
  zone      = zone.internet
  addresses = ["192.0.2.10"]
  realm     = "" # ERROR: TW112
  tls_key   = "/etc/turnwall/edge.key"
}

rule "extra" { # ERROR: TW112
  from = [agents.floor]
  to   = [provider.saas]
}
