# Compliance case: a private TURN relay in the DMZ and no public TURN or STUN.
#
# Media must stay on infrastructure the company controls (HIPAA/PCI-DSS), so
# agents reach only the corporate relay; the relay alone talks to the platform.
#   agents -> relay      UDP/TCP 3478 (STUN/TURN), TCP 5349 and 443 (TURN/TLS)
#   relay  -> agents     UDP from the relay range (relayed media back to agents,
#                        the one-way-audio fix)
#   relay <-> platform   UDP on the relay range, both directions
#   agents -> platform   TCP 443 signalling only
# The certificate is issued by the company's CA (not self-signed): browsers must
# trust it for TURN/TLS. The private key stays on the relay host.

policy "dmz-relay" {
  description    = "Agents use only the private relay in the DMZ"
  default_action = "deny"
  log_default    = true
}

zone "agents" {
  interface = "vlan30"
}

zone "dmz" {
  interface = "dmz0"
}

zone "internet" {
  interface = "wan0"
}

agents "claims" {
  zone    = zone.agents
  subnets = ["10.30.0.0/17", "fd00:30::/56"]
}

agents "billing" {
  zone    = zone.agents
  subnets = ["10.30.128.0/18"]
}

provider "genesys" {
  zone   = zone.internet
  ranges = ["52.129.96.0/20", "169.150.104.0/21", "167.234.48.0/20", "136.245.64.0/18"]
  https  = true
}

relay "dmz" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10", "2001:db8:30::10"]
  fqdn        = "turn.example.com"
  realm       = "example.com"
  relay_ports = "49152-59999"
  peers       = [agents.claims, agents.billing, provider.genesys]
  tls_cert    = "certs/turn.example.com.pem"
  tls_key     = "/etc/turnwall/turn.example.com.key"

  listen {
    udp = 3478
    tcp = 3478
    tls = [5349, 443]
  }
}

platform "genesys-cloud" {
  use_turn             = true
  preferred_transport  = "udp"
  ice_check_priority   = 60
  tcp_fallback         = true
  turn_server_override = relay.dmz.fqdn
  tenant_realm         = "example.com"
}
