# ranges_file() names /proc/self/pagemap, which stat reports as empty
# and reads without end. Want: TW118 (outside), and never a size from stat.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ranges_file("/proc/self/pagemap")
  https  = true
  media  = { udp = ["3478-3481"] }
}
