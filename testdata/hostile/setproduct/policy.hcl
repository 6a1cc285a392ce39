# setproduct of three ranges of 1000: a billion elements.
# Want: TW119.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
locals {
  big = setproduct(range(1000), range(1000), range(1000))
}
provider "acs" {
  zone   = zone.wan
  ranges = ["20.202.0.0/16"]
  https  = true
  media  = { udp = ["3478-3481"] }
}
