package store

import (
	"go4.org/netipx"

	"github.com/turnwall/turnwall/relay/peerfilter"
)

// NeverSet is the set of addresses a relay must never reach whatever the
// policy or the database says: peerfilter's never-classes (loopback,
// link-local, cloud metadata, multicast, ...).
func NeverSet() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, c := range peerfilter.Classes {
		if c.Never {
			b.AddPrefix(c.Prefix)
		}
	}
	s, _ := b.IPSet()
	return s
}

// Bound returns the peers a relay may reach once the database's lists are
// applied to the policy's peers:
//
//	policyPeers − never − (dbDenied − dbAllowed)
//
// The database can only take peers away. An allowed-peer-ip entry has
// coturn's meaning, an exception to denied-peer-ip, and nothing more: it
// never allows an address outside the policy's peers, nor one of the never
// class (never; nil means NeverSet()). A nil or empty policyPeers gives an
// empty set. The relay's peer filter still judges every address against the
// result (special-purpose ranges, embedded addresses, its own address).
func Bound(policyPeers, never *netipx.IPSet, dbAllowed, dbDenied []netipx.IPRange) *netipx.IPSet {
	if never == nil {
		never = NeverSet()
	}
	var b netipx.IPSetBuilder
	if policyPeers != nil {
		b.AddSet(policyPeers)
	}
	b.RemoveSet(never)
	var deny netipx.IPSetBuilder
	for _, r := range dbDenied {
		deny.AddRange(r)
	}
	for _, r := range dbAllowed {
		deny.RemoveRange(r)
	}
	d, _ := deny.IPSet()
	b.RemoveSet(d)
	s, _ := b.IPSet()
	return s
}
