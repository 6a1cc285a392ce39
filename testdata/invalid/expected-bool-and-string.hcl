# Values of the wrong type: a string for a bool, an object for a host name.
policy "p" {
  default_action = "deny"
  log_default    = "yes" # ERROR: TW111
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone        = zone.agents
  subnets     = ["10.20.0.0/16"]
  webrtc_only = "maybe" # ERROR: TW111
}

provider "saas" {
  zone       = zone.internet
  ranges     = ["198.51.100.0/24"]
  https      = true
  media      = { udp = ["16384-65535"] }
  stun_fqdns = [{ host = "stun.l.google.com" }] # ERROR: TW111
}
