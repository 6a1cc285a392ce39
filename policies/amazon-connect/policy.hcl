# Amazon Connect: Contact Control Panel (CCP) softphones reaching an instance
# in us-east-1.
#
# Ports Amazon Connect documents for the CCP (all outbound; no port on the
# agents' side listens, and the firewall is stateful, so replies pass):
#   UDP 3478  softphone media (STUN/TURN) to the AMAZON_CONNECT prefixes of the
#             instance's region and of GLOBAL in AWS ip-ranges.json
#   TCP 443   signalling and API. AWS recommends allowing the CCP's domains on
#             a proxy; a firewall that filters by address opens TCP 443 to the
#             region's EC2 and the GLOBAL CLOUDFRONT prefixes instead, as
#             provider connect-web does here. Drop it when a proxy does this.
# UDP 49152-65535 inbound from AMAZON_CONNECT is needed only by stateless
# firewalls. Every target turnwall emits is stateful, so it is not opened.
#
# ip-ranges-sample.json is a small SAMPLE subset of AWS's ip-ranges.json; the
# two .ranges files are imported from it. To refresh from AWS's real file:
#   turnwall ranges diff --service AMAZON_CONNECT --region us-east-1,GLOBAL amazon-connect.ranges ip-ranges.json
#   turnwall ranges import --service AMAZON_CONNECT --region us-east-1,GLOBAL -o amazon-connect.ranges ip-ranges.json
#   turnwall ranges import --service EC2,CLOUDFRONT --region us-east-1,GLOBAL -o connect-web.ranges ip-ranges.json

policy "connect-ccp" {
  description    = "CCP softphones to Amazon Connect in us-east-1"
  default_action = "deny"
  log_default    = true
}

zone "agents" {
  interface = "vlan40"
}

zone "internet" {
  interface = "wan0"
}

agents "ccp" {
  zone        = zone.agents
  subnets     = ["10.40.0.0/16", "fd00:40::/48"]
  description = "Contact Control Panel agents"
}

provider "connect" {
  zone        = zone.internet
  ranges      = ranges_file("amazon-connect.ranges")
  description = "Amazon Connect softphone media: AMAZON_CONNECT, us-east-1 and GLOBAL"
  turn        = { udp = [3478] }
}

provider "connect-web" {
  zone        = zone.internet
  ranges      = ranges_file("connect-web.ranges")
  description = "CCP signalling and API: EC2 us-east-1 and CLOUDFRONT GLOBAL"
  https       = true
}
