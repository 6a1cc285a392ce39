# A qos block with bad classes: DSCP names and numbers that do not exist, a
# class naming no flow, flows that are not blocks, an unknown purpose.
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
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

qos {
  class "audio" {
    flows = [provider.saas]
    dscp  = "EX" # ERROR: TW111
  }
  class "video" {
    flows = [provider.saas]
    dscp  = 64 # ERROR: TW111
  }
  class "nothing" { # ERROR: TW112
    dscp = "CS5"
  }
  class "empty" {
    flows = [] # ERROR: TW108
    dscp  = "AF41"
  }
  class "literal" {
    flows = [
      "198.51.100.7", # ERROR: TW117
      zone.agents,    # ERROR: TW117
    ]
    purposes = ["medai"] # ERROR: TW111
    dscp     = "af42"
  }
  class "missing" {
    flows = [provider.nope] # ERROR: TW102
    dscp  = "EF"
  }
  class "audio" { # ERROR: TW101
    flows = [provider.saas]
    dscp  = "EF"
  }
}
