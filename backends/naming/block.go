package naming

import (
	"net/netip"
	"slices"
	"strings"
)

// Block names many objects after the prefixes they hold in one go, without
// a table entry per object: most of a large policy's objects are its
// providers' prefixes, named after their value ("net-10.20.0.0_16"). The
// names are exactly those a namespace that first names each prefix in
// order, as Namer.Name of its key, would give: a key that needs no change
// is the name (and no two prefixes have one key); one that does (too long)
// is named by the namer, which takes the block's names as taken (Rules.Taken
// calls Taken).
type Block struct {
	kind     string
	prefix   string // the namer's prefix, lower-cased
	prefixes []netip.Prefix
	names    []string // of prefixes[i]
	plain    []bool   // names[i] is the prefix and the key
	key      func(b []byte, p netip.Prefix) []byte
	parse    func(key string) (netip.Prefix, bool)
}

// NewBlock names the prefixes (sorted by address, then length; distinct),
// each after key(p), a one-to-one spelling that parse reverses, where the
// key needs no change and its name was not given (a key named already was
// given that very name). The others go through Name. kind is the kind of
// thing the names are, for the namespace's owner check (Lookup).
func NewBlock(n *Namer, kind string, prefixes []netip.Prefix, key func(b []byte, p netip.Prefix) []byte, parse func(key string) (netip.Prefix, bool)) *Block {
	b := &Block{kind: kind, prefix: strings.ToLower(n.rules.Prefix), prefixes: prefixes,
		names: make([]string, len(prefixes)), plain: make([]bool, len(prefixes)), key: key, parse: parse}
	var k []byte
	for i, p := range prefixes {
		k = key(k[:0], p)
		name, ok := n.cleanPlainBytes(k)
		if !ok {
			continue
		}
		if len(n.used) > 0 {
			if _, taken := n.used[strings.ToLower(name)]; taken {
				continue
			}
		}
		b.names[i], b.plain[i] = name, true
	}
	return b
}

// Name fills in the names the block could not give itself, with fresh(key)
// (the namespace's own naming, which keeps the name) in the prefixes' order;
// call it once, after NewBlock's names are taken (Rules.Taken). Such a name
// is hashed, and a hashed name ends in 8 hex digits after the replacement
// character, which no prefix key does: it cannot be one of the block's.
func (b *Block) Name(fresh func(key string) string) {
	var k []byte
	for i, p := range b.prefixes {
		if !b.plain[i] {
			k = b.key(k[:0], p)
			b.names[i] = fresh(string(k))
		}
	}
}

// Names returns the name of each prefix, in the block's order.
func (b *Block) Names() []string { return b.names }

// Lookup returns the kind and name a key was given by the block (not yet
// while Name is naming it).
func (b *Block) Lookup(key string) (kind, name string, ok bool) {
	if i, ok := b.index(key); ok && b.names[i] != "" {
		return b.kind, b.names[i], true
	}
	return "", "", false
}

// Taken reports whether the block gave a lower-cased name itself.
func (b *Block) Taken(lower string) bool {
	rest, ok := strings.CutPrefix(lower, b.prefix)
	if !ok {
		return false
	}
	i, ok := b.index(rest)
	return ok && b.plain[i] && strings.EqualFold(b.names[i], lower)
}

// index finds the prefix whose key is key.
func (b *Block) index(key string) (int, bool) {
	p, ok := b.parse(key)
	if !ok || string(b.key(nil, p)) != key {
		return 0, false
	}
	return slices.BinarySearchFunc(b.prefixes, p, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
}
