# A deny to everything: rule "no-telnet" denies TCP 23 from the agents to
# 0.0.0.0/0 and ::/0. The lab must still find transfer networks (a /0 range
# holds no lab host), and the calls work as without the rule.

policy "deny-everything" {
  description    = "Agents may not reach telnet anywhere"
  default_action = "deny"
}

zone "agents" { interface = "vlan30" }
zone "dmz" { interface = "dmz0" }
zone "internet" { interface = "wan0" }

agents "floor" {
  zone    = zone.agents
  subnets = ["10.30.0.0/17", "fd00:30::/56"]
}

provider "platform" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20"]
  https  = true
  turn   = { udp = [3478] }
  media  = { udp = ["16384-65535"] }
}

relay "dmz" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10", "2001:db8:30::10"]
  fqdn        = "turn.example.com"
  realm       = "example.com"
  relay_ports = "49152-59999"
  peers       = [agents.floor, provider.platform]
  lab_only    = true

  listen {
    udp = 3478
    tls = 443
  }
}

rule "no-telnet" {
  action      = "deny"
  from        = agents.floor
  to          = ["0.0.0.0/0", "::/0"]
  tcp         = [23]
  description = "Nothing from the agents to telnet, anywhere"
}

platform "contact-center" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 100
  tcp_fallback        = true
}
