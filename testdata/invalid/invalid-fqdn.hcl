# Host names that are not valid FQDNs: STUN names, a relay's fqdn and a TURN override.
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
  stun_fqdns = [
    "stun.l.google.com",
    "stun..l.google.com",  # ERROR: TW111
    "-stun.l.google.com",  # ERROR: TW111
    "stun.l.google.com:19302", # ERROR: TW111
  ]
}

relay "edge" {
  zone      = zone.internet
  addresses = ["192.0.2.10"]
  fqdn      = "turn_server.example.com" # ERROR: TW111
  realm     = "example.com"
  peers     = [agents.floor]
}

platform "ccaas" {
  turn_server_override = "turn server" # ERROR: TW111
}
