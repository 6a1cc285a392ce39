package panos

import (
	"net/netip"

	"github.com/turnwall/turnwall/backends/naming"
)

// PAN-OS name limits. Address, service and rule names take 1-63 characters
// ("Enter a name (up to 63 characters)", Objects > Addresses and Objects >
// Services, https://docs.paloaltonetworks.com/pan-os/10-0/pan-os-web-interface-help/objects/objects-addresses
// and .../objects/objects-services; rule names 1-63 in pan-os-codegen
// specs/policies/security-policy-rule.yaml). Zone names take at most 31
// characters (../shared/reference/vendors.md, not re-checked against a
// vendor page). The documentation also allows spaces; turnwall never emits
// them, so a name is always one CLI token and never needs quotes.
const (
	maxObjectName = 63
	maxZoneName   = 31
)

// nameChars is the character set turnwall uses in every PAN-OS name.
var nameChars = naming.ASCIIWord("._-")

func objectRules(reserved ...string) naming.Rules {
	return naming.Rules{
		MaxLen:   maxObjectName,
		Allowed:  nameChars,
		First:    naming.AlphaNum,
		Replace:  '_',
		Reserved: append([]string{"any"}, reserved...),
	}
}

// zoneRules: "any" is the keyword for every zone in a rule's from/to list;
// "multicast" is kept free because the rule editor offers it as a special
// destination zone.
var zoneRules = naming.Rules{
	MaxLen:   maxZoneName,
	Allowed:  nameChars,
	First:    naming.AlphaNum,
	Replace:  '_',
	Reserved: []string{"any", "multicast"},
}

// ZoneName is the PAN-OS zone that stands for an IR zone. It is the one naming
// contract the emitter and the reader share: the firewall's zones must carry
// these names (a zone that already exists under another name is renamed in
// the policy, or the IR zone is named after it). A valid IR zone name is kept
// as it is; any other gets a readable prefix and a hash, the same on every run.
func ZoneName(irZone string) string {
	return naming.New(zoneRules).Name(irZone)
}

// namespace hands out names in one PAN-OS namespace that holds more than one
// kind of thing (addresses and address groups; services and service groups;
// security and decryption rules). The kind keeps an IR name that happens to
// equal another kind's key from being handed the same target name.
type namespace struct {
	namer *naming.Namer
	block *naming.Block    // the objects named after their prefixes (nameValues)
	owner map[string]owned // namer key -> the kind that claimed it, its name
}

// owned is the kind that claimed a key and the name the key was given.
type owned struct{ kind, name string }

func newNamespace(r naming.Rules) *namespace {
	ns := &namespace{owner: map[string]owned{}}
	rules := r
	rules.Taken = func(lower string) bool { return ns.block != nil && ns.block.Taken(lower) }
	ns.namer = naming.New(rules)
	return ns
}

func (ns *namespace) name(kind, key string) string {
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
		key += "#" + kind
	}
	// Each key is named once, here; the owner table keeps its name.
	name := ns.namer.Fresh(key)
	ns.owner[key] = owned{kind, name}
	return name
}

// nameValues names objects after the prefixes they hold (sorted, distinct)
// as name(kind, key) of each in turn would, with no table entry for the
// names that need no change (naming.Block). Once per namespace.
func (ns *namespace) nameValues(kind string, prefixes []netip.Prefix) []string {
	if ns.block != nil {
		panic("nameValues: the namespace has its block")
	}
	ns.block = naming.NewBlock(ns.namer, kind, prefixes, appendPrefixObjectKey, parsePrefixObjectKey)
	ns.block.Name(func(key string) string { return ns.name(kind, key) })
	return ns.block.Names()
}
