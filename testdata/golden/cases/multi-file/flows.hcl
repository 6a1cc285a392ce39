agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}

provider "acs" {
  zone   = zone.wan
  ranges = ranges_file("acs-ranges.txt")
  https  = true
  media  = { udp = ["3478-3481"] }
}
