# The test adds cert.pem -> ../secret.pem; the relay names it.
# Want: TW118 at tls_cert.
policy "hostile" {}
zone "agents" { interface = "vlan50" }
zone "wan" { interface = "wan0" }
agents "remote" {
  zone    = zone.agents
  subnets = ["10.50.0.0/16"]
}
provider "acs" {
  zone   = zone.wan
  ranges = ["20.202.0.0/16"]
  https  = true
  media  = { udp = ["3478-3481"] }
}
relay "turn" {
  zone      = zone.wan
  addresses = ["192.0.2.10"]
  realm     = "example.com"
  clients   = [agents.remote]
  listen {
    tls = [443]
  }
  tls_cert = "cert.pem"
  tls_key  = "key.pem"
}
