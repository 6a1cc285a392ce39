# A provider range of 0.0.0.0/0 opens the whole internet. The agents are
# IPv6-only so that the range does not also overlap them.
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
  subnets = ["fd00:20::/48"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ["2001:db8:100::/48", "0.0.0.0/0"] # ERROR: TW210
  https  = true
  media  = { udp = ["16384-65535"] }
}
