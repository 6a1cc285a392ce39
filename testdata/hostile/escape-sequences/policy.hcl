# Terminal escapes (ESC[31m, OSC title, a bidi override, DEL, C1 CSI)
# in a name and in free text. Want: every one shown escaped, never raw.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
agents "x[31mred" {
  zone = zone.agents
  subnets = ["10.60.0.0/16"]
  description = "]0;pwned ‮  over"
}
provider "acs" {
  zone   = zone.wan
  ranges = ["20.202.0.0/16"]
  https  = true
  media  = { udp = ["3478-3481"] }
}
