package naming

import "net/netip"

// Namespace hands out names in one target namespace that holds more than one
// kind of thing (a vendor's addresses and address groups, services and
// service groups, rules). Kinds are named from keys that could, in odd
// policies, be the same string (an address set called "stun.example.com"
// and an FQDN object for stun.example.com): the kind that comes second is
// named from another key (Other), so two kinds never share a name. Objects
// named after the prefixes they hold are named in one go (NameValues).
type Namespace struct {
	namer *Namer
	block *Block           // the objects named after their prefixes (NameValues)
	owner map[string]owned // key -> the kind that claimed it, its name
	spell Spelling
}

// owned is the kind that claimed a key and the name the key was given.
type owned struct{ kind, name string }

// Spelling is how a target spells its namespace's keys.
type Spelling struct {
	// Other is the key a kind is named from when another kind claimed key.
	Other func(kind, key string) string
	// Key appends a prefix's key (a one-to-one, name-safe spelling) and
	// Parse reverses it, for NameValues (see NewBlock).
	Key   func(b []byte, p netip.Prefix) []byte
	Parse func(key string) (netip.Prefix, bool)
}

// NewNamespace is an empty namespace whose names follow r.
func NewNamespace(r Rules, spell Spelling) *Namespace {
	ns := &Namespace{owner: map[string]owned{}, spell: spell}
	rules := r
	rules.Taken = func(lower string) bool { return ns.block != nil && ns.block.Taken(lower) }
	ns.namer = New(rules)
	return ns
}

// Name is the name of the kind's object with this key: the same name every
// time it is asked for, and never the name of another kind's object.
func (ns *Namespace) Name(kind, key string) string {
	for {
		o, taken := ns.owner[key]
		if !taken && ns.block != nil {
			o.kind, o.name, taken = ns.block.Lookup(key)
		}
		if !taken {
			break
		}
		if o.kind == kind {
			return o.name
		}
		key = ns.spell.Other(kind, key)
	}
	// Each key is named once, here; the owner table keeps its name.
	name := ns.namer.Fresh(key)
	ns.owner[key] = owned{kind, name}
	return name
}

// NameValues names objects after the prefixes they hold (sorted, distinct)
// as Name(kind, Key(p)) of each in turn would, with no table entry for the
// names that need no change (Block). Once per namespace.
func (ns *Namespace) NameValues(kind string, prefixes []netip.Prefix) []string {
	if ns.block != nil {
		panic("NameValues: the namespace has its block")
	}
	ns.block = NewBlock(ns.namer, kind, prefixes, ns.spell.Key, ns.spell.Parse)
	ns.block.Name(func(key string) string { return ns.Name(kind, key) })
	return ns.block.Names()
}
