# A lab relay for turnwall's relay tests: every address is a documentation
# address, put on loopback in a network namespace the test creates.
#   agents   203.0.113.0/24, 2001:db8:203::/48  (TURN clients)
#   relay    192.0.2.10, 2001:db8:30::10         (listeners and relayed addresses)
#   provider 198.51.100.0/24, 2001:db8:198::/48 (peers: echo servers)
policy "relay-lab" {
  description = "Lab relay for end-to-end tests"
}

zone "agents" { interface = "vlan30" }
zone "dmz" { interface = "dmz0" }
zone "internet" { interface = "wan0" }

agents "lab" {
  zone    = zone.agents
  subnets = ["203.0.113.0/24", "2001:db8:203::/48"]
}

provider "media" {
  zone   = zone.internet
  ranges = ["198.51.100.0/24", "2001:db8:198::/48"]
}

relay "lab" {
  zone        = zone.dmz
  addresses   = ["192.0.2.10", "2001:db8:30::10"]
  fqdn        = "turn.lab.example.com"
  realm       = "lab.example.com"
  relay_ports = "49152-65535"
  peers       = [provider.media, agents.lab]
  tcp_relay   = true
  lab_only    = true
  listen {
    udp = 3478
    tcp = 3478
    tls = [5349, 443]
  }
}
