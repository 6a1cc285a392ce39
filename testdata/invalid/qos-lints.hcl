# QoS lints: TCP 443 prioritised to any destination (browsing), a class on
# traffic the policy does not allow, a class whose flows an earlier class
# already marks. A realm mismatch is the case's error (a lint error, so the
# QoS lints run beside it).
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

provider "other" {
  zone   = zone.internet
  ranges = ["203.0.113.0/24"]
  turn   = { udp = [3478] }
}

relay "dmz" {
  zone      = zone.internet
  addresses = ["192.0.2.10"]
  realm     = "example.com"
  peers     = [agents.floor]
}

platform "saas" {
  tenant_realm = "example.org" # ERROR: TW204
}

rule "web" {
  from = agents.floor
  to   = ["0.0.0.0/0"]
  tcp  = [443]
}

qos {
  class "audio" {
    flows = [provider.saas]
    dscp  = "EF"
  }
  class "fallback" {
    flows    = [agents.floor] # WARNING: TW215
    purposes = ["custom", "signalling"]
    dscp     = "CS5"
  }
  class "again" {
    flows    = [provider.saas] # WARNING: TW217
    purposes = ["media"]
    dscp     = "AF41"
  }
  class "unused" {
    flows    = [provider.other] # WARNING: TW216
    purposes = ["media"] # WARNING: TW216
    dscp     = "AF31"
  }
}
