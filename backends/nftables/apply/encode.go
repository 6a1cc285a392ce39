package apply

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
)

// The encoder writes the same netlink messages `nft -f` writes for the text
// rendering of the model (checked against `nft --debug=netlink,mnl` of
// nftables 1.0.6 and by the parity test): the same expressions in the same
// order, the same set flags, key types and user data, and interval sets as
// a start element per range and an end element one past its last address.

// nft's data type numbers (nftables include/datatype.h).
const (
	typeIPv4Addr    = 7
	typeIPv6Addr    = 8
	typeInetService = 13
	typeIfname      = 41
	ifnameLen       = 16 // IFNAMSIZ, NUL included
)

// Set user data (libnftnl include/udata.h).
const (
	udataKeyByteOrder = 0
	udataMerge        = 2
	udataKeyTypeof    = 3
	udataComment      = 7
	udataElemFlags    = 1 // NFTNL_UDATA_SET_ELEM_FLAGS
	elemIntervalOpen  = 1 // NFTNL_SET_ELEM_F_INTERVAL_OPEN
	byteOrderHost     = 1
	byteOrderBig      = 2
	exprTypePayload   = 7 // nft's EXPR_PAYLOAD, in typeof user data
	exprTypeMeta      = 9 // EXPR_META
	protoDescUDP      = 6 // nft's PROTO_DESC_UDP
	protoDescTCP      = 8 // PROTO_DESC_TCP
	fieldSport        = 1 // UDPHDR_SPORT, TCPHDR_SPORT
	fieldDport        = 2
)

var hooks = map[string]uint32{
	"prerouting": unix.NF_INET_PRE_ROUTING, "input": unix.NF_INET_LOCAL_IN, "forward": unix.NF_INET_FORWARD,
	"output": unix.NF_INET_LOCAL_OUT, "postrouting": unix.NF_INET_POST_ROUTING,
}

var ctStates = []struct {
	name string
	bit  uint32
}{{"invalid", 1}, {"established", 2}, {"related", 4}, {"new", 8}, {"untracked", 64}}

var protos = map[ir.Proto]byte{ir.UDP: unix.IPPROTO_UDP, ir.TCP: unix.IPPROTO_TCP}

// element is one interval set element: a range's first key, or (end) the
// key one past its last; open marks a last range that runs to the top of
// the key space and so has no end element.
type element struct {
	key  []byte
	end  bool
	open bool
}

// encoder adds a table's objects to a batch.
type encoder struct {
	b     *batch
	table string
	setID uint32
	ids   map[string]uint32 // named sets created in this batch
}

func newEncoder(b *batch, table string) *encoder {
	return &encoder{b: b, table: table, ids: map[string]uint32{}}
}

func (e *encoder) nextSetID() uint32 {
	e.setID++
	return e.setID
}

// replace queues the `table` / `delete table` / `table { ... }` idiom of the
// text rendering: the table is replaced whole, or created.
func (e *encoder) replace(rs *nftables.Ruleset, ranges map[string][]netipx.IPRange) error {
	e.addTable()
	e.deleteTable()
	e.addTable()
	for _, s := range rs.Sets {
		if err := e.addSet(s, ranges[s.Name]); err != nil {
			return err
		}
	}
	for _, c := range rs.Chains {
		if err := e.addChain(c); err != nil {
			return err
		}
	}
	for _, c := range rs.Chains {
		for i, r := range c.Rules {
			if err := e.addRule(c.Name, r); err != nil {
				return fmt.Errorf("chain %s rule %d (%s): %w", c.Name, i+1, r.Text(), err)
			}
		}
	}
	return nil
}

// remove queues the deletion of the table, which may not exist: `table` then
// `delete table`, as the text rendering does.
func (e *encoder) remove() {
	e.addTable()
	e.deleteTable()
}

func (e *encoder) addTable() {
	var a attrs
	a.str(unix.NFTA_TABLE_NAME, e.table)
	a.u32(unix.NFTA_TABLE_FLAGS, 0)
	e.b.add(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, "table inet "+e.table, a.b)
}

func (e *encoder) deleteTable() {
	var a attrs
	a.str(unix.NFTA_TABLE_NAME, e.table)
	e.b.add(unix.NFT_MSG_DELTABLE, 0, "delete table inet "+e.table, a.b)
}

func setKey(s nftables.Set) (typ, length uint32) {
	if s.V6 {
		return typeIPv6Addr, 16
	}
	return typeIPv4Addr, 4
}

func (e *encoder) addSet(s nftables.Set, ranges []netipx.IPRange) error {
	typ, keyLen := setKey(s)
	id := e.nextSetID()
	e.ids[s.Name] = id
	var a attrs
	a.str(unix.NFTA_SET_TABLE, e.table)
	a.str(unix.NFTA_SET_NAME, s.Name)
	a.u32(unix.NFTA_SET_FLAGS, unix.NFT_SET_INTERVAL)
	a.u32(unix.NFTA_SET_KEY_TYPE, typ)
	a.u32(unix.NFTA_SET_KEY_LEN, keyLen)
	a.u32(unix.NFTA_SET_ID, id)
	ud := userdata.AppendUint32(nil, udataKeyByteOrder, byteOrderBig)
	if s.Comment != "" {
		ud = userdata.AppendString(ud, udataComment, s.Comment)
	}
	a.put(unix.NFTA_SET_USERDATA, ud)
	e.b.add(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, "set "+s.Name, a.b)
	elems, err := addrElements(s, ranges)
	if err != nil {
		return err
	}
	e.elements(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, s.Name, id, elems)
	return nil
}

// addrElements turns a set's ranges into elements, with nft's zero end
// marker first when the first range does not start at the zero address.
// The keys share one buffer, sized up front so that none moves.
func addrElements(s nftables.Set, ranges []netipx.IPRange) ([]element, error) {
	if len(ranges) == 0 {
		return nil, nil
	}
	n := 2*len(ranges) + 1
	elems := make([]element, 0, n)
	zero, keyLen := netip.IPv4Unspecified(), 4
	if s.V6 {
		zero, keyLen = netip.IPv6Unspecified(), 16
	}
	keys := make([]byte, 0, n*keyLen)
	key := func(a netip.Addr) []byte {
		start := len(keys)
		keys = appendKey(keys, a)
		return keys[start:len(keys):len(keys)]
	}
	if ranges[0].From() != zero {
		elems = append(elems, element{key: key(zero), end: true})
	}
	for _, r := range ranges {
		if !r.IsValid() || r.From().Is6() != s.V6 || r.From().Is4In6() {
			return nil, fmt.Errorf("set %s: range %v is not of the set's family", s.Name, r)
		}
		next := r.To().Next()
		if !next.IsValid() {
			elems = append(elems, element{key: key(r.From()), open: true})
			continue
		}
		elems = append(elems, element{key: key(r.From())}, element{key: key(next), end: true})
	}
	return elems, nil
}

// appendKey appends an address's bytes in network order (4 or 16).
func appendKey(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

// rangeElements is one range's start element and, unless it runs to the top
// of the address space, its end element.
func rangeElements(r netipx.IPRange) []element {
	next := r.To().Next()
	if !next.IsValid() {
		return []element{{key: r.From().AsSlice(), open: true}}
	}
	return []element{{key: r.From().AsSlice()}, {key: next.AsSlice(), end: true}}
}

// elements queues set elements in messages whose element list stays under
// the 16-bit attribute length, all in the same batch.
func (e *encoder) elements(op int, flags uint16, set string, setID uint32, elems []element) {
	verb := "add"
	if op == unix.NFT_MSG_DELSETELEM {
		verb = "delete"
	}
	var a attrs // one buffer for every message: add copies it into the batch
	for start, part := 0, 1; start < len(elems); part++ {
		a.b = a.b[:0]
		a.str(unix.NFTA_SET_ELEM_LIST_TABLE, e.table)
		a.str(unix.NFTA_SET_ELEM_LIST_SET, set)
		if setID != 0 {
			a.u32(unix.NFTA_SET_ELEM_LIST_SET_ID, setID)
		}
		list := a.nest(unix.NFTA_SET_ELEM_LIST_ELEMENTS)
		first := len(a.b)
		n := 0
		for start+n < len(elems) && len(a.b)-first < maxListAttr {
			el := elems[start+n]
			item := a.nest(unix.NFTA_LIST_ELEM)
			if el.end {
				a.u32(unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
			}
			key := a.nest(unix.NFTA_SET_ELEM_KEY)
			a.put(unix.NFTA_DATA_VALUE, el.key)
			a.end(key)
			if el.open && op == unix.NFT_MSG_NEWSETELEM {
				a.put(unix.NFTA_SET_ELEM_USERDATA, userdata.AppendUint32(nil, udataElemFlags, elemIntervalOpen))
			}
			a.end(item)
			n++
		}
		a.end(list)
		e.b.add(op, flags, fmt.Sprintf("%s %d elements of set %s (message %d)", verb, n, set, part), a.b)
		start += n
	}
}

func (e *encoder) addChain(c nftables.Chain) error {
	var a attrs
	a.str(unix.NFTA_CHAIN_TABLE, e.table)
	a.str(unix.NFTA_CHAIN_NAME, c.Name)
	if c.Hook != "" {
		num, ok := hooks[c.Hook]
		if !ok {
			return fmt.Errorf("chain %s: unknown hook %q", c.Name, c.Hook)
		}
		var policy uint32
		switch c.Policy {
		case "accept":
			policy = nfAccept
		case "drop":
			policy = nfDrop
		default:
			return fmt.Errorf("chain %s: unknown policy %q", c.Name, c.Policy)
		}
		prio, ok := priorities[c.Priority]
		if !ok {
			return fmt.Errorf("chain %s: unknown priority %q", c.Name, c.Priority)
		}
		hook := a.nest(unix.NFTA_CHAIN_HOOK)
		a.u32(unix.NFTA_HOOK_HOOKNUM, num)
		a.u32(unix.NFTA_HOOK_PRIORITY, uint32(prio))
		a.end(hook)
		a.u32(unix.NFTA_CHAIN_POLICY, policy)
		a.str(unix.NFTA_CHAIN_TYPE, "filter")
	}
	e.b.add(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE, "chain "+c.Name, a.b)
	return nil
}

// anonSet is a constant set written inline in a rule ({ "a", "b" }, { 443, 5349 }).
type anonSet struct {
	id       uint32
	keyType  uint32
	keyLen   uint32
	interval bool
	size     uint32
	udata    []byte
	elems    []element
}

func (e *encoder) addRule(chain string, r nftables.Rule) error {
	exprs, anons, err := e.ruleExprs(r)
	if err != nil {
		return err
	}
	for _, s := range anons {
		e.addAnonSet(s)
	}
	var a attrs
	a.str(unix.NFTA_RULE_TABLE, e.table)
	a.str(unix.NFTA_RULE_CHAIN, chain)
	list := a.nest(unix.NFTA_RULE_EXPRESSIONS)
	for _, x := range exprs {
		b, err := expr.Marshal(unix.NFPROTO_INET, x)
		if err != nil {
			return err
		}
		el := a.nest(unix.NFTA_LIST_ELEM)
		a.b = append(a.b, b...)
		a.pad()
		a.end(el)
	}
	a.end(list)
	if r.Comment != "" {
		a.put(unix.NFTA_RULE_USERDATA, userdata.AppendString(nil, udataRuleComment, r.Comment))
	}
	what := "rule in chain " + chain
	if r.Comment != "" {
		what += fmt.Sprintf(" (comment %q)", r.Comment)
	}
	e.b.add(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, what, a.b)
	return nil
}

func (e *encoder) addAnonSet(s anonSet) {
	flags := uint32(unix.NFT_SET_ANONYMOUS | unix.NFT_SET_CONSTANT)
	if s.interval {
		flags |= unix.NFT_SET_INTERVAL
	}
	var a attrs
	a.str(unix.NFTA_SET_TABLE, e.table)
	a.str(unix.NFTA_SET_NAME, "__set%d")
	a.u32(unix.NFTA_SET_FLAGS, flags)
	a.u32(unix.NFTA_SET_KEY_TYPE, s.keyType)
	a.u32(unix.NFTA_SET_KEY_LEN, s.keyLen)
	a.u32(unix.NFTA_SET_ID, s.id)
	desc := a.nest(unix.NFTA_SET_DESC)
	a.u32(unix.NFTA_SET_DESC_SIZE, s.size)
	a.end(desc)
	a.put(unix.NFTA_SET_USERDATA, s.udata)
	e.b.add(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, "anonymous set", a.b)
	e.elements(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, "__set%d", s.id, s.elems)
}

// ruleExprs is the rule's expressions in the order nft generates them for
// Rule.Text, with the anonymous sets they look up.
func (e *encoder) ruleExprs(r nftables.Rule) ([]expr.Any, []anonSet, error) {
	var out []expr.Any
	var anons []anonSet
	var err error
	if r.CtDir != "" {
		x, err := ctDirection(r.CtDir)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, x...)
	}
	steps := []func(nftables.Rule, []expr.Any, *[]anonSet) ([]expr.Any, error){e.protoExprs, e.ifaceExprs, e.addrExprs}
	if r.AddrsFirst {
		steps = []func(nftables.Rule, []expr.Any, *[]anonSet) ([]expr.Any, error){e.ifaceExprs, e.addrExprs, e.protoExprs}
	}
	for _, step := range steps {
		if out, err = step(r, out, &anons); err != nil {
			return nil, nil, err
		}
	}
	if len(r.CtState) > 0 {
		var mask uint32
		for _, st := range r.CtState {
			bit := uint32(0)
			for _, c := range ctStates {
				if c.name == st {
					bit = c.bit
				}
			}
			if bit == 0 {
				return nil, nil, fmt.Errorf("unknown ct state %q", st)
			}
			mask |= bit
		}
		out = append(out, &expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, mask), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)})
	}
	if r.LimitOver != "" {
		rate, unit, err := limitRate(r.LimitOver)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, &expr.Limit{Type: expr.LimitTypePkts, Rate: rate, Over: true, Unit: unit, Burst: uint32(r.LimitBurst)})
	}
	if r.Counter {
		out = append(out, &expr.Counter{})
	}
	if r.Log != "" {
		out = append(out, &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(r.Log)})
	}
	if r.MarkDSCP {
		x, err := setDSCP(r.Family, r.DSCP)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, x...)
	}
	v, err := verdict(r.Verdict)
	if err != nil {
		return nil, nil, err
	}
	return append(out, v), anons, nil
}

// ifaceExprs, addrExprs and protoExprs append the interface, address and
// protocol/port matches of a rule.
func (e *encoder) ifaceExprs(r nftables.Rule, out []expr.Any, anons *[]anonSet) ([]expr.Any, error) {
	for _, m := range []struct {
		key   expr.MetaKey
		names []string
	}{{expr.MetaKeyIIFNAME, r.IIF}, {expr.MetaKeyOIFNAME, r.OIF}} {
		if len(m.names) == 0 {
			continue
		}
		out = append(out, &expr.Meta{Key: m.key, Register: 1})
		if len(m.names) == 1 {
			data, err := ifnameData(m.names[0], true)
			if err != nil {
				return nil, err
			}
			out = append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
			continue
		}
		s := anonSet{id: e.nextSetID(), keyType: typeIfname, keyLen: ifnameLen, size: uint32(len(m.names))}
		s.udata = userdata.AppendUint32(nil, udataKeyByteOrder, byteOrderHost)
		s.udata = userdata.Append(s.udata, udataKeyTypeof, typeofMeta(uint32(m.key)))
		for _, n := range m.names {
			data, err := ifnameData(n, false)
			if err != nil {
				return nil, err
			}
			s.elems = append(s.elems, element{key: data})
		}
		*anons = append(*anons, s)
		out = append(out, &expr.Lookup{SourceRegister: 1, SetName: "__set%d", SetID: s.id})
	}
	return out, nil
}

func (e *encoder) addrExprs(r nftables.Rule, out []expr.Any, anons *[]anonSet) ([]expr.Any, error) {
	if r.SrcSet != "" || r.DstSet != "" {
		nfproto, offSrc, offDst, l := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4)
		switch r.Family {
		case 4:
		case 6:
			nfproto, offSrc, offDst, l = unix.NFPROTO_IPV6, 8, 24, 16
		default:
			return nil, fmt.Errorf("address match without family 4 or 6")
		}
		out = append(out, &expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}})
		for _, m := range []struct {
			set string
			off uint32
		}{{r.SrcSet, offSrc}, {r.DstSet, offDst}} {
			if m.set == "" {
				continue
			}
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: m.off, Len: l},
				&expr.Lookup{SourceRegister: 1, SetName: m.set, SetID: e.ids[m.set]})
		}
	}
	return out, nil
}

func (e *encoder) protoExprs(r nftables.Rule, out []expr.Any, anons *[]anonSet) ([]expr.Any, error) {
	if r.Proto != "" {
		num, ok := protos[r.Proto]
		if !ok {
			return nil, fmt.Errorf("unknown protocol %q", r.Proto)
		}
		out = append(out, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{num}})
		for _, m := range []struct {
			ports []ir.PortRange
			off   uint32
			field uint32
		}{{r.SPorts, 0, fieldSport}, {r.DPorts, 2, fieldDport}} {
			if len(m.ports) == 0 {
				continue
			}
			out = append(out, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: m.off, Len: 2})
			x, s, err := e.portMatch(r.Proto, m.field, m.ports)
			if err != nil {
				return nil, err
			}
			out = append(out, x...)
			if s != nil {
				*anons = append(*anons, *s)
			}
		}
	}
	return out, nil
}

// portMatch is `cmp eq` for one port, `cmp gte` + `cmp lte` for one range,
// and a lookup in an anonymous set (an interval set when a range is in it)
// for several.
func (e *encoder) portMatch(proto ir.Proto, field uint32, ports []ir.PortRange) ([]expr.Any, *anonSet, error) {
	be := func(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }
	for _, p := range ports {
		if p.First > p.Last {
			return nil, nil, fmt.Errorf("inverted port range %v", p)
		}
	}
	if len(ports) == 1 {
		p := ports[0]
		if p.First == p.Last {
			return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be(p.First)}}, nil, nil
		}
		return []expr.Any{&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: be(p.First)}, &expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: be(p.Last)}}, nil, nil
	}
	s := anonSet{id: e.nextSetID(), keyType: typeInetService, keyLen: 2}
	for _, p := range ports {
		s.interval = s.interval || p.First != p.Last
	}
	desc := uint32(protoDescUDP)
	if proto == ir.TCP {
		desc = protoDescTCP
	}
	s.udata = userdata.AppendUint32(nil, udataKeyByteOrder, byteOrderBig)
	if s.interval {
		s.udata = userdata.AppendUint32(s.udata, udataMerge, 1)
	}
	s.udata = userdata.Append(s.udata, udataKeyTypeof, typeofPayload(desc, field))
	if !s.interval {
		for _, p := range ports {
			s.elems = append(s.elems, element{key: be(p.First)})
		}
		s.size = uint32(len(ports))
	} else {
		if ports[0].First != 0 {
			s.elems = append(s.elems, element{key: be(0), end: true})
			s.size++
		}
		for _, p := range ports {
			s.size += 2
			if p.Last == 65535 {
				s.elems = append(s.elems, element{key: be(p.First), open: true})
				continue
			}
			s.elems = append(s.elems, element{key: be(p.First)}, element{key: be(p.Last + 1), end: true})
		}
	}
	return []expr.Any{&expr.Lookup{SourceRegister: 1, SetName: "__set%d", SetID: s.id}}, &s, nil
}

// typeofMeta and typeofPayload are the "typeof" user data nft attaches to
// anonymous sets, describing the expression whose value the set holds.
func typeofMeta(key uint32) []byte {
	ud := userdata.AppendUint32(nil, 0, exprTypeMeta)
	return userdata.Append(ud, 1, userdata.AppendUint32(nil, 0, key))
}

func typeofPayload(desc, field uint32) []byte {
	ud := userdata.AppendUint32(nil, 0, exprTypePayload)
	inner := userdata.AppendUint32(nil, 0, desc)
	inner = userdata.AppendUint32(inner, 1, field)
	return userdata.Append(ud, 1, inner)
}

// ifnameData is an interface name as nft compares it: NUL-padded to
// IFNAMSIZ, or, for a single name ending in '*', only the prefix before it.
func ifnameData(name string, wildcardOK bool) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("empty interface name")
	}
	if strings.HasSuffix(name, "*") && !strings.HasSuffix(name, `\*`) {
		if !wildcardOK {
			return nil, fmt.Errorf("interface wildcard %q in a set of interfaces: apply supports wildcards only alone", name)
		}
		return []byte(strings.TrimSuffix(name, "*")), nil
	}
	if len(name) >= ifnameLen {
		return nil, fmt.Errorf("interface name %q is longer than %d bytes (Linux IFNAMSIZ)", name, ifnameLen-1)
	}
	data := make([]byte, ifnameLen)
	copy(data, name)
	return data, nil
}

func verdict(v string) (*expr.Verdict, error) {
	switch f := strings.Fields(v); {
	case v == "accept":
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case v == "drop":
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case v == "return":
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case len(f) == 2 && f[0] == "jump":
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: f[1]}, nil
	case len(f) == 2 && f[0] == "goto":
		return &expr.Verdict{Kind: expr.VerdictGoto, Chain: f[1]}, nil
	}
	return nil, fmt.Errorf("unknown verdict %q", v)
}

// limitUnits are the rate units nft writes, by their length in seconds.
var limitUnits = []struct {
	name string
	unit expr.LimitTime
}{{"second", expr.LimitTimeSecond}, {"minute", expr.LimitTimeMinute}, {"hour", expr.LimitTimeHour}, {"day", expr.LimitTimeDay}, {"week", expr.LimitTimeWeek}}

// limitRate reads "10/second".
func limitRate(s string) (uint64, expr.LimitTime, error) {
	n, u, ok := strings.Cut(s, "/")
	rate, err := strconv.ParseUint(n, 10, 64)
	if ok && err == nil && rate > 0 {
		for _, lu := range limitUnits {
			if lu.name == u {
				return rate, lu.unit, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("limit rate %q: expected N/second, N/minute, ...", s)
}

// limitText renders a limit expression's rate as nft lists it.
func limitText(rate uint64, unit expr.LimitTime) (string, bool) {
	for _, lu := range limitUnits {
		if lu.unit == unit {
			return fmt.Sprintf("%d/%s", rate, lu.name), true
		}
	}
	return "", false
}
