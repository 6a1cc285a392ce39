# ranges_file() reads a JSON array with bad entries; JSON has no comments, so
# the expectations for ranges.json are in ranges.json.expect.
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
  subnets = ["10.20.0.0/16"]
}

provider "saas" {
  zone   = zone.internet
  ranges = ranges_file("ranges.json") # ERROR: TW114
  https  = true
  media  = { udp = ["16384-65535"] }
}
