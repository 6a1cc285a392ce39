# Twilio Flex: agents on the Flex desktop (Twilio Voice JavaScript SDK).
#
# Ports Twilio documents (all outbound; Twilio never opens a connection to an
# agent, and the firewall is stateful, so replies pass):
#   TCP 443          WSS signalling
#   UDP 10000-60000  SRTP media to 168.86.128.0/18, every edge
#   UDP 3478         STUN/TURN to the Network Traversal Service (NTS) ranges
#   TLS 443          TURN over TLS to the same NTS ranges (TCP on the wire)
# TLS 443 is opened with https = true, TCP 443 for signalling and TURN/TLS:
# that purpose is kept out of TLS inspection (PAN-OS no-decrypt, FortiOS
# certificate-inspection), which breaks TURN/TLS. turn = { tls = [443] }
# opens the same port but does not get that exemption yet.
#
# SAMPLE DATA. Twilio publishes the NTS ranges per region as start-end pairs
# on an HTML page. nts-sample.pairs holds documentation addresses in that
# form, not Twilio's; so does the default of signalling_ranges. To use this
# policy, copy the NTS pairs of your regions into a file and import it:
#   turnwall ranges import --format-in pairs -o nts.ranges nts-pairs.txt
# and set signalling_ranges (--var) to where agents' WSS signalling to
# Twilio's hostnames goes through your firewall.

policy "flex-agents" {
  description    = "Flex agents to Twilio Voice"
  default_action = "deny"
  log_default    = true
}

variable "signalling_ranges" {
  description = "Destinations of the agents' WSS signalling; SAMPLE documentation addresses"
  type        = list(string)
  default     = ["203.0.113.192/26"]
}

zone "agents" {
  interface = "vlan50"
}

zone "internet" {
  interface = "wan0"
}

agents "flex" {
  zone        = zone.agents
  subnets     = ["10.50.0.0/16", "fd00:50::/48"]
  description = "Flex contact-centre agents"
}

provider "twilio-media" {
  zone        = zone.internet
  ranges      = ["168.86.128.0/18"]
  description = "Twilio Voice media, every edge"
  media       = { udp = ["10000-60000"] }
}

provider "twilio-nts" {
  zone        = zone.internet
  ranges      = ranges_file("nts.ranges")
  description = "Twilio Network Traversal Service (STUN/TURN); SAMPLE ranges"
  https       = true
  turn        = { udp = [3478] }
}

provider "twilio-signal" {
  zone        = zone.internet
  ranges      = var.signalling_ranges
  description = "Twilio Voice WSS signalling"
  https       = true
}
