# ranges_file() names a secret by absolute path (the test writes the path in).
# Want: TW118.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ranges_file("@SECRET@")
  https  = true
  media  = { udp = ["3478-3481"] }
}
