# Port objects take udp and tcp (and tls for turn) only.
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
  turn = {
    udp  = [3478]
    dtls = [5349] # ERROR: TW111
  }
  media = {
    udp = ["16384-65535"]
    tls = [443] # ERROR: TW111
  }
  sip = ["5060"] # ERROR: TW111
}
