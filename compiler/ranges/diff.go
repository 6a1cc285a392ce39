package ranges

import (
	"fmt"
	"math/big"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// Diff is what changed between two address sets, each part aggregated to its
// minimal prefix cover: addresses only in the new set, only in the old one,
// and in both.
type Diff struct {
	Added, Removed, Unchanged []netip.Prefix
}

// Compare returns what changed from old to new. It compares addresses, not
// lines: a prefix split in two, or two merged into one, is no change.
func Compare(old, new *netipx.IPSet) Diff {
	var added, removed, both netipx.IPSetBuilder
	added.AddSet(new)
	added.RemoveSet(old)
	removed.AddSet(old)
	removed.RemoveSet(new)
	both.AddSet(old)
	both.Intersect(new)
	return Diff{Added: prefixesOf(&added), Removed: prefixesOf(&removed), Unchanged: prefixesOf(&both)}
}

func prefixesOf(b *netipx.IPSetBuilder) []netip.Prefix {
	s, err := b.IPSet()
	if err != nil {
		panic(fmt.Sprintf("ranges: building the set: %v", err))
	}
	return s.Prefixes()
}

// Changed reports whether anything was added or removed.
func (d Diff) Changed() bool { return len(d.Added)+len(d.Removed) > 0 }

// Lines lists the changes in address order (IPv4 first), "- PREFIX" for a
// removed prefix and "+ PREFIX" for an added one.
func (d Diff) Lines() []string {
	var out []string
	i, j := 0, 0
	for i < len(d.Removed) || j < len(d.Added) {
		if j == len(d.Added) || (i < len(d.Removed) && netipx.ComparePrefix(d.Removed[i], d.Added[j]) < 0) {
			out = append(out, "- "+d.Removed[i].String())
			i++
		} else {
			out = append(out, "+ "+d.Added[j].String())
			j++
		}
	}
	return out
}

// Summary says how much changed: prefixes added and removed with their IPv4
// address and IPv6 /64 counts, and the prefixes unchanged.
func (d Diff) Summary() string {
	if !d.Changed() {
		return fmt.Sprintf("no change: %s unchanged (%s)", count(len(d.Unchanged), "prefix", "prefixes"), Size(d.Unchanged))
	}
	return fmt.Sprintf("%s added (%s), %s removed (%s), %s unchanged",
		count(len(d.Added), "prefix", "prefixes"), Size(d.Added),
		count(len(d.Removed), "prefix", "prefixes"), Size(d.Removed),
		count(len(d.Unchanged), "prefix", "prefixes"))
}

// Size says how many IPv4 addresses and IPv6 /64 networks prefixes hold
// (prefixes longer than /64 add less than one /64 and are not counted).
func Size(prefixes []netip.Prefix) string {
	v4, v6 := new(big.Int), new(big.Int)
	v6small := false
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4.Add(v4, new(big.Int).Lsh(big.NewInt(1), uint(32-p.Bits())))
		} else if p.Bits() <= 64 {
			v6.Add(v6, new(big.Int).Lsh(big.NewInt(1), uint(64-p.Bits())))
		} else {
			v6small = true
		}
	}
	var parts []string
	if v4.Sign() > 0 || v6.Sign() == 0 && !v6small {
		parts = append(parts, countBig(v4, "IPv4 address", "IPv4 addresses"))
	}
	if v6.Sign() > 0 || v6small {
		if v6.Sign() == 0 {
			parts = append(parts, "less than one IPv6 /64")
		} else {
			parts = append(parts, countBig(v6, "IPv6 /64", "IPv6 /64s"))
		}
	}
	return strings.Join(parts, ", ")
}

func countBig(n *big.Int, one, many string) string {
	if n.IsInt64() && n.Int64() == 1 {
		return "1 " + one
	}
	return n.String() + " " + many
}
