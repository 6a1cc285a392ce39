# Microsoft Teams media (endpoint set 11, category Optimize), IPv4 and IPv6.
#
#   UDP 3478-3481  media and TURN to 52.112.0.0/14, 52.122.0.0/15, 2603:1063::/38
#   TCP 443        signalling and TURN/TLS fallback to the same networks
# The ranges come from Microsoft's endpoints web service JSON: set 11 is the
# only Skype (Teams) set in category Optimize. endpoints-sample.json is a
# SAMPLE subset of it. To refresh from the service's current JSON:
#   turnwall ranges diff --category Optimize --service-area Skype teams-media.ranges endpoints.json
#   turnwall ranges import --category Optimize --service-area Skype -o teams-media.ranges endpoints.json

policy "teams-hq" {
  description = "Teams clients at headquarters to Teams media"
}

zone "lan" {
  interface = ["bond0.110", "bond0.111"]
}

zone "wan" {
  interface = "ppp0"
}

locals {
  teams_media = ranges_file("teams-media.ranges")
}

agents "hq" {
  zone    = zone.lan
  subnets = ["172.16.32.0/20", cidrsubnet("2001:db8:100::/48", 8, 32)]
}

provider "teams" {
  zone   = zone.wan
  ranges = local.teams_media
  https  = true
  media  = { udp = ["3478-3481"] }
}
