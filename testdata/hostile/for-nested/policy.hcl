# Three nested for expressions over range(1000): a billion elements
# without a function producing them. Want: TW119 before evaluation.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
locals {
  cube = [for a in range(1000) : [for b in range(1000) : [for c in range(1000) : "${a}.${b}.${c}"]]]
}
provider "acs" {
  zone   = zone.wan
  ranges = ["20.202.0.0/16"]
  https  = true
  media  = { udp = ["3478-3481"] }
}
