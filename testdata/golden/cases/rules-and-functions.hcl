# Explicit rules (allow and deny, literals and references), locals, variables
# and the CIDR functions; a TCP-relaying relay with literal peers. Expected
# findings: a shadowed rule (TW211), STUN by literal address (TW208), host bits
# (TW104), a provider range wider than /8 (TW210) and a relay range outside
# 49152-65535 (TW206).
policy "lab" {
  default_action = "deny"
}

variable "site_prefix" {
  type    = string
  default = "10.64.0.0/12"
}

locals {
  voice_vlan  = cidrsubnet(var.site_prefix, 4, 3)
  printer     = cidrhost(local.voice_vlan, 250)
  inside_site = cidrcontains(var.site_prefix, local.voice_vlan)
  trunks      = [for i in range(2) : cidrsubnet("203.0.113.0/24", 4, i)]
}

zone "inside" { interface = ["eth1", "eth2"] }
zone "outside" { interface = "eth0" }

agents "voice" {
  zone        = zone.inside
  subnets     = [local.voice_vlan, "10.99.1.7/24", "2001:db8:64::-2001:db8:64::ff"]
  webrtc_only = false
}

provider "carrier" {
  zone           = zone.outside
  ranges         = ["4.0.0.0/7", "198.18.0.0/15"]
  media          = { udp = ["10000-20000", "20001-30000", "15000-16000"], tcp = [5061] }
  stun_addresses = ["74.125.250.129"]
}

relay "lab" {
  zone        = zone.outside
  addresses   = ["192.0.2.1"]
  realm       = "lab.example"
  relay_ports = "40000-49999"
  tcp_relay   = true
  clients     = [agents.voice]
  peers       = ["192.0.2.128/25", agents.voice, "2001:db8:ff::/64"]
}

rule "block-printer" {
  action = "deny"
  log    = true
  from   = [local.printer]
  to     = [provider.carrier]
  udp    = ["1-65535"]
  tcp    = ["1-65535"]
}

rule "trunk" {
  from        = agents.voice
  to          = local.trunks
  udp         = [5060]
  description = local.inside_site ? "SIP trunk inside the site plan" : "SIP trunk"
}

rule "trunk-again" {
  from = agents.voice
  to   = ["203.0.113.0/28"]
  udp  = [5060]
}
