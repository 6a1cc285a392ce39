# Genesys Cloud CX: browser softphones on floor 3 reaching Genesys Cloud directly.
#
# Ports are the ones Genesys documents (all outbound, no inbound ports needed):
#   TCP 443            HTTPS/WSS signalling and TURN/TLS fallback
#   UDP 3478, TCP 3478 STUN and TURN
#   UDP 16384-65535    SRTP and TURN media to the four media CIDRs below
#                      (16384-32768 before December 2024)
#   UDP/TCP 19302      optional third-party STUN (Google), allowed by name only
# UDP 19302 is Google's public STUN port, not Genesys media.
# Refresh media_ranges when Genesys publishes new ones. Its /api/v2/ipranges
# list (turnwall ranges import --format-in genesys) names the ranges Genesys
# Cloud services such as data actions and SMTP use; it has no media service,
# so the media CIDRs come from the documented list.

policy "genesys-floor3" {
  description    = "WebRTC agents on floor 3 to Genesys Cloud CX"
  default_action = "deny"
  log_default    = true
}

variable "media_ranges" {
  description = "Genesys Cloud media networks"
  type        = list(string)
  default     = ["52.129.96.0/20", "169.150.104.0/21", "167.234.48.0/20", "136.245.64.0/18"]
}

zone "agents" {
  interface = "vlan20"
}

zone "internet" {
  interface = "wan0"
}

agents "floor3" {
  zone        = zone.agents
  subnets     = ["10.20.0.0/16", "fd00:20::/48"]
  description = "Floor 3 contact-centre agents"
}

provider "genesys" {
  zone        = zone.internet
  ranges      = var.media_ranges
  description = "Genesys Cloud CX media and signalling"
  https       = true
  turn        = { udp = [3478], tcp = [3478] }
  media       = { udp = ["16384-65535"] }
  stun_fqdns  = ["stun.l.google.com", "stun1.l.google.com"]
  stun        = { udp = [19302], tcp = [19302] }
}

platform "genesys-cloud" {
  use_turn            = true
  preferred_transport = "udp"
  ice_check_priority  = 80
  tcp_fallback        = true
}
