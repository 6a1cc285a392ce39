# A relay's TURN/TLS certificate is self-signed: browsers refuse it.
# turn.example.com.pem was made with
#   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
#     -keyout KEY -out turn.example.com.pem -days 36500 -subj /CN=turn.example.com
# (the key was thrown away: only the certificate is read).
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
  zone      = zone.dmz
  addresses = ["192.0.2.10"]
  fqdn      = "turn.example.com"
  realm     = "example.com"
  peers     = [agents.floor]
  tls_cert  = "turn.example.com.pem" # ERROR: TW205
  tls_key   = "/etc/turnwall/turn.example.com.key"

  listen {
    udp = 3478
    tls = [5349, 443]
  }
}
