package panos

import (
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

// namespace is one PAN-OS namespace that holds more than one kind of thing
// (addresses and address groups; services and service groups; security and
// decryption rules). A kind whose key another kind claimed is named from
// "KEY#KIND", which the namer must change (no name holds '#'): it gets a
// hashed name.
type namespace = naming.Namespace

func newNamespace(r naming.Rules) *namespace {
	return naming.NewNamespace(r, naming.Spelling{
		Other: func(kind, key string) string { return key + "#" + kind },
		Key:   appendPrefixObjectKey, Parse: parsePrefixObjectKey,
	})
}
