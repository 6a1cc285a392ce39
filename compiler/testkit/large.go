package testkit

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
)

// ProviderPolicy returns a policy whose provider "big" has the given ranges,
// one agents group and a relay whose peers include that provider.
func ProviderPolicy(ranges []netip.Prefix) []byte {
	var b strings.Builder
	b.WriteString(`policy "large" {}
zone "agents" { interface = "vlan20" }
zone "internet" { interface = "wan0" }
zone "dmz" { interface = "dmz0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.20.0.0/16", "fd00:20::/48"]
}
relay "corp" {
  zone        = zone.dmz
  addresses   = ["198.51.100.10", "2001:db8::10"]
  realm       = "example.com"
  peers       = [agents.floor, provider.big]
}
provider "big" {
  zone  = zone.internet
  https = true
  turn  = { udp = [3478], tcp = [3478] }
  media = { udp = ["16384-65535"] }
  ranges = [
`)
	for _, p := range ranges {
		fmt.Fprintf(&b, "    %q,\n", p)
	}
	b.WriteString("  ]\n}\n")
	return []byte(b.String())
}

// LargePolicy returns ProviderPolicy with n ranges, IPv4 and IPv6, random
// lengths, many overlapping or adjacent, so aggregation has work to do. The
// same n always gives the same policy.
func LargePolicy(n int) []byte {
	rng := rand.New(rand.NewPCG(42, 42))
	ranges := make([]netip.Prefix, 0, n)
	for i := 0; i < n; i++ {
		var p netip.Prefix
		if i%4 == 3 {
			var a [16]byte
			a[0], a[1] = 0x26, 0x00
			a[2], a[3], a[4] = byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))
			p = netip.PrefixFrom(netip.AddrFrom16(a), 24+rng.IntN(41)).Masked()
		} else {
			a := [4]byte{byte(20 + rng.IntN(30)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			p = netip.PrefixFrom(netip.AddrFrom4(a), 16+rng.IntN(17)).Masked()
		}
		ranges = append(ranges, p)
	}
	return ProviderPolicy(ranges)
}
