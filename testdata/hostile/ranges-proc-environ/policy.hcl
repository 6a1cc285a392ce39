# ranges_file() names the process environment (secrets of a CI runner).
# Want: TW118, nothing of the file echoed.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ranges_file("/proc/self/environ")
  https  = true
  media  = { udp = ["3478-3481"] }
}
