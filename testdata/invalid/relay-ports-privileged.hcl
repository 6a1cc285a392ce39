# A relay port range reaching below 1024 opens privileged ports (RFC 8656 7.2).
# Its certificate file is missing too, which is only a warning: it cannot be checked.
policy "p" {
  default_action = "deny"
}

zone "agents" {
  interface = "vlan20"
}

zone "dmz" {
  interface = "dmz0"
}

agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16"]
}

relay "dmz" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10"]
  realm       = "example.com"
  relay_ports = "1000-65535" # ERROR: TW206
  peers       = [agents.floor]
  tls_cert    = "certs/missing.pem" # WARNING: TW205
  tls_key     = "/etc/turnwall/turn.key"

  listen {
    udp = 3478
    tcp = 3478
    tls = [5349, 443]
  }
}
