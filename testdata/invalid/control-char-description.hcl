# Descriptions with a newline and a tab: generated rule sets must not gain lines from user text.
policy "p" {
  description    = "Floor 3\nflush ruleset" # ERROR: TW115
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor" {
  zone        = zone.agents
  subnets     = ["10.20.0.0/16"]
  description = "Agents\there" # ERROR: TW115
}

provider "saas" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24"]
  https  = true
  media  = { udp = ["16384-65535"] }
}

rule "extra" {
  from        = [agents.floor]
  to          = [provider.saas]
  tcp         = ["8443"]
  description = "admin\r\nconsole" # ERROR: TW115
}
