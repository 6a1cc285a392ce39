# The test writes ranges.txt larger than the limit for a file a policy reads.
# Want: TW119.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ranges_file("ranges.txt")
  https  = true
  media  = { udp = ["3478-3481"] }
}
