package eval

import (
	"math/big"
	"sort"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/load"
)

// QoSClass is one class of the qos block: the flows of some blocks, narrowed
// to some purposes, marked with one DSCP value.
type QoSClass struct {
	Block
	Flows       []Endpoint   // references to agents, providers and relays
	Purposes    []ir.Purpose // nil: every purpose
	DSCP        uint8
	Replies     bool // mark the replies of the flows too (default true)
	Description string
}

// DSCPNames are the code point names a policy may use (RFC 2474 class
// selectors, RFC 2597 assured forwarding, RFC 3246 expedited forwarding,
// RFC 5865 voice admit, RFC 8622 lower effort), upper case.
var DSCPNames = func() map[string]uint8 {
	m := map[string]uint8{"EF": 46, "VA": 44, "LE": 1, "DF": 0, "BE": 0}
	for i := 0; i < 8; i++ {
		m["CS"+strconv.Itoa(i)] = uint8(8 * i)
	}
	for x := 1; x <= 4; x++ {
		for y := 1; y <= 3; y++ {
			m["AF"+strconv.Itoa(x)+strconv.Itoa(y)] = uint8(8*x + 2*y)
		}
	}
	return m
}()

// qosPurposes are the purposes a class may narrow its flows to.
var qosPurposes = []ir.Purpose{ir.PurposeSignalling, ir.PurposeSTUNTURN, ir.PurposeMedia, ir.PurposeSTUN, ir.PurposeSIP,
	ir.PurposeTURN, ir.PurposeTURNTLS, ir.PurposeRelayMedia, ir.PurposeRelayReturn, ir.PurposeCustom}

// uniqueClasses drops classes that redeclare a name (reported by load).
func (e *evaluator) uniqueClasses(blocks []*load.Block) []*load.Block {
	seen := map[string]bool{}
	var out []*load.Block
	for _, b := range blocks {
		if !seen[b.Name] {
			seen[b.Name] = true
			out = append(out, b)
		}
	}
	return out
}

func (e *evaluator) qosClass(b *load.Block) *QoSClass {
	c := &QoSClass{Block: e.block(b), Description: e.text(b, "description")}
	c.Replies = e.boolean(b, "replies", true)
	// flows: references only. A class names the traffic of policy blocks,
	// never addresses or ports alone (TCP 443 is browsing too).
	if _, ok := b.Attrs["flows"]; !ok {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "QoS class names no flow",
			"Class %q needs `flows`: the agents, providers or relays whose traffic it marks, e.g. flows = [provider.genesys, relay.dmz].", b.Name))
	}
	for _, el := range e.elems(b, "flows") {
		kind, n, ok := refOf(el.val)
		if !ok {
			s, _ := e.elemString(el, "flow")
			e.diags = append(e.diags, diag.Errorf(diag.WrongKind, el.rng, "Not a flow reference",
				"flows lists agents, providers or relays (provider.NAME), not %q: a class marks the traffic of policy blocks, never addresses or ports alone.", s))
			continue
		}
		switch kind {
		case load.TypeAgents, load.TypeProvider, load.TypeRelay:
			c.Flows = append(c.Flows, Endpoint{Kind: kind, Name: n, Range: el.rng})
		default:
			e.diags = append(e.diags, diag.Errorf(diag.WrongKind, el.rng, "Not a flow reference",
				"flows lists agents, providers or relays, not %s %q.", kind, n))
		}
	}
	if v, a, ok := e.val(b, "flows"); ok && v.CanIterateElements() && v.LengthInt() == 0 {
		e.diags = append(e.diags, diag.Errorf(diag.EmptySet, a.Expr.Range(), "QoS class names no flow",
			"flows of class %q is empty, so the class marks nothing. Name the agents, providers or relays whose traffic it marks.", b.Name))
	}
	if _, ok := b.Attrs["purposes"]; ok {
		c.Purposes = []ir.Purpose{}
		names := make([]string, len(qosPurposes))
		for i, p := range qosPurposes {
			names[i] = string(p)
		}
		for _, el := range e.elems(b, "purposes") {
			s, ok := e.elemString(el, "purpose")
			if !ok {
				continue
			}
			found := false
			for _, p := range qosPurposes {
				if string(p) == s {
					c.Purposes = append(c.Purposes, p)
					found = true
				}
			}
			if !found {
				e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Unknown purpose",
					"%q is not a flow purpose; use %s.%s", s, strings.Join(names, ", "), diag.DidYouMean(s, names)))
			}
		}
	}
	if el, ok := e.single(b, "dscp"); ok {
		if d, ok := e.dscp(el); ok {
			c.DSCP = d
		}
	} else if _, ok := b.Attrs["dscp"]; !ok {
		e.diags = append(e.diags, diag.Errorf(diag.MissingValue, b.DeclRange, "QoS class has no dscp",
			"Class %q needs `dscp`: a name (\"EF\", \"AF41\", \"CS5\") or a number 0-63. RFC 8325: EF for audio, AF41 for video, CS5 for signalling.", b.Name))
	}
	return c
}

// dscp decodes a DSCP name ("EF", "af41", "CS5") or number (0-63).
func (e *evaluator) dscp(el elem) (uint8, bool) {
	if el.val.Type() == cty.Number {
		if i, acc := el.val.AsBigFloat().Int64(); acc == big.Exact && i >= 0 && i <= 63 {
			return uint8(i), true
		}
		e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "DSCP out of range",
			"A DSCP value is a whole number 0-63 or a name such as \"EF\" (46), \"AF41\" (34), \"CS5\" (40)."))
		return 0, false
	}
	s, ok := e.elemString(el, "DSCP")
	if !ok {
		return 0, false
	}
	if v, ok := DSCPNames[strings.ToUpper(s)]; ok {
		return v, true
	}
	if i, err := strconv.Atoi(s); err == nil && i >= 0 && i <= 63 {
		return uint8(i), true
	}
	names := make([]string, 0, len(DSCPNames))
	for n := range DSCPNames {
		names = append(names, n)
	}
	sort.Strings(names)
	e.diags = append(e.diags, diag.Errorf(diag.InvalidValue, el.rng, "Unknown DSCP",
		"%q is not a DSCP name or a number 0-63. Use EF (46, audio), AF41 (34, video), CS5 (40, signalling) or another of %s.%s",
		s, strings.Join(names, " "), diag.DidYouMean(strings.ToUpper(s), names)))
	return 0, false
}
