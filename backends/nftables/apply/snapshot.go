package apply

import (
	"errors"
	"fmt"

	"github.com/google/nftables/userdata"
	"go4.org/netipx"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
)

// Snapshot is the owned table as the kernel holds it, read back through
// netlink into the same model the text backend renders.
type Snapshot struct {
	Table  string `json:"table"`
	Exists bool   `json:"exists"`
	// Ruleset has no header, and its sets no Prefixes: Ranges hold them.
	Ruleset *nftables.Ruleset `json:"ruleset,omitempty"`
	// Ranges are the exact intervals every named set holds.
	Ranges map[string][]netipx.IPRange `json:"ranges,omitempty"`
	// Counters are per chain, per rule in order.
	Counters map[string][]RuleCounter `json:"-"`

	genID   uint32
	markers map[string]bool // sets holding nft's zero end marker element
}

// Generation is the ruleset generation the snapshot was read at; the
// kernel increments it on every committed change, in any table.
func (s *Snapshot) Generation() uint32 { return s.genID }

// RuleCounter is a rule's handle and counter values.
type RuleCounter struct {
	Handle  uint64
	Counter bool
	Packets uint64
	Bytes   uint64
}

// NotOwnedError means the table holds something turnwall never writes (a
// foreign rule, a set type, an object): turnwall cannot save it for a
// rollback, so it refuses to replace it.
type NotOwnedError struct {
	Table, What string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("table inet %s holds %s, which turnwall does not write; it cannot be saved for a rollback, so turnwall leaves it alone (inspect it with `nft list table inet %s`; delete the table or choose another --table)", e.Table, e.What, e.Table)
}

// read reads the table consistently: the ruleset generation must be the same
// before and after, or the read is repeated.
func read(s *sock, table string) (*Snapshot, error) { return readExcept(s, table, nil) }

// readExcept reads the table without the elements of the sets in skip (their
// declarations are read; their ranges are left empty).
func readExcept(s *sock, table string, skip map[string]bool) (*Snapshot, error) {
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		g1, err := genID(s)
		if err != nil {
			return nil, err
		}
		snap, err := readOnce(s, table, skip)
		if errors.Is(err, errInterrupted) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, err
		}
		g2, err := genID(s)
		if err != nil {
			return nil, err
		}
		if g1 == g2 {
			snap.genID = g1
			return snap, nil
		}
		lastErr = errInterrupted
	}
	return nil, fmt.Errorf("reading table inet %s: %w (another program keeps changing the ruleset)", table, lastErr)
}

func genID(s *sock) (uint32, error) {
	msgs, err := s.request(msgType(unix.NFT_MSG_GETGEN), 0, unix.AF_UNSPEC, nil)
	if err != nil {
		return 0, fmt.Errorf("reading the ruleset generation: %w", err)
	}
	for _, m := range msgs {
		if len(m.data) < nfgenHeaderLen {
			continue
		}
		a, err := attrMap(m.data[nfgenHeaderLen:])
		if err != nil {
			return 0, err
		}
		if g, ok := a[unix.NFTA_GEN_ID]; ok {
			return be32(g), nil
		}
	}
	return 0, errors.New("the kernel sent no ruleset generation")
}

// liveSet is a set as dumped, anonymous ones included.
type liveSet struct {
	name    string
	flags   uint32
	keyType uint32
	keyLen  uint32
	comment string
	other   string // an attribute turnwall never writes
}

func dump(s *sock, nftMsg int, body []byte) ([][]byte, error) {
	msgs, err := s.request(msgType(nftMsg), unix.NLM_F_DUMP, unix.NFPROTO_INET, body)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		if len(m.data) >= nfgenHeaderLen {
			out = append(out, m.data[nfgenHeaderLen:])
		}
	}
	return out, nil
}

func readOnce(s *sock, table string, skip map[string]bool) (*Snapshot, error) {
	snap := &Snapshot{Table: table}
	var ta attrs
	ta.str(unix.NFTA_TABLE_NAME, table)
	msgs, err := s.request(msgType(unix.NFT_MSG_GETTABLE), 0, unix.NFPROTO_INET, ta.b)
	if errors.Is(err, unix.ENOENT) {
		return snap, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading table inet %s: %w", table, err)
	}
	notOwned := func(format string, args ...any) error {
		return &NotOwnedError{Table: table, What: fmt.Sprintf(format, args...)}
	}
	for _, m := range msgs {
		a, err := attrMap(m.data[nfgenHeaderLen:])
		if err != nil {
			return nil, err
		}
		if f := be32(a[unix.NFTA_TABLE_FLAGS]); f != 0 {
			return nil, notOwned("table flags %#x", f)
		}
		if _, ok := a[nftaTableUserdata]; ok {
			return nil, notOwned("a table comment")
		}
	}
	snap.Exists = true
	snap.Ruleset = &nftables.Ruleset{Table: table}
	snap.Ranges = map[string][]netipx.IPRange{}
	snap.Counters = map[string][]RuleCounter{}
	snap.markers = map[string]bool{}

	// Objects and flowtables are never written by turnwall.
	for _, k := range []struct {
		msg, tableAttr int
		what           string
	}{{unix.NFT_MSG_GETOBJ, unix.NFTA_OBJ_TABLE, "a named object"}, {unix.NFT_MSG_GETFLOWTABLE, nftaFlowtableTable, "a flowtable"}} {
		var fa attrs
		fa.str(uint16(k.tableAttr), table)
		objs, err := dump(s, k.msg, fa.b)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			a, err := attrMap(o)
			if err != nil {
				return nil, err
			}
			if cstr(a[uint16(k.tableAttr)]) == table {
				return nil, notOwned("%s", k.what)
			}
		}
	}

	// Sets.
	var sa attrs
	sa.str(unix.NFTA_SET_TABLE, table)
	setMsgs, err := dump(s, unix.NFT_MSG_GETSET, sa.b)
	if err != nil {
		return nil, fmt.Errorf("reading the sets of table inet %s: %w", table, err)
	}
	sets := map[string]liveSet{}
	var named []liveSet
	for _, b := range setMsgs {
		ls, tbl, err := parseSet(b)
		if err != nil {
			return nil, err
		}
		if tbl != table {
			continue
		}
		sets[ls.name] = ls
		if ls.flags&unix.NFT_SET_ANONYMOUS != 0 {
			continue
		}
		set := nftables.Set{Name: ls.name, Comment: ls.comment}
		switch {
		case ls.other != "":
			return nil, notOwned("set %s with %s", ls.name, ls.other)
		case ls.flags != unix.NFT_SET_INTERVAL:
			return nil, notOwned("set %s with flags %#x", ls.name, ls.flags)
		case ls.keyType == typeIPv4Addr && ls.keyLen == 4:
		case ls.keyType == typeIPv6Addr && ls.keyLen == 16:
			set.V6 = true
		default:
			return nil, notOwned("set %s of type %d", ls.name, ls.keyType)
		}
		if !skip[ls.name] {
			named = append(named, ls)
		}
		snap.Ruleset.Sets = append(snap.Ruleset.Sets, set)
	}
	results, err := readAddrSets(s, table, named)
	if err != nil {
		return nil, err
	}
	for i, ls := range named {
		snap.Ranges[ls.name] = results[i].ranges
		snap.markers[ls.name] = results[i].marker
	}

	// Chains, in the kernel's order (the order they were added).
	chainMsgs, err := dump(s, unix.NFT_MSG_GETCHAIN, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the chains of table inet %s: %w", table, err)
	}
	chainIndex := map[string]int{}
	for _, b := range chainMsgs {
		c, tbl, err := parseChain(b)
		if err != nil {
			if tbl == table {
				return nil, notOwned("%v", err)
			}
			continue
		}
		if tbl != table {
			continue
		}
		chainIndex[c.Name] = len(snap.Ruleset.Chains)
		snap.Ruleset.Chains = append(snap.Ruleset.Chains, c)
	}

	// Rules.
	var ra attrs
	ra.str(unix.NFTA_RULE_TABLE, table)
	ruleMsgs, err := dump(s, unix.NFT_MSG_GETRULE, ra.b)
	if err != nil {
		return nil, fmt.Errorf("reading the rules of table inet %s: %w", table, err)
	}
	d := &decoder{s: s, table: table, sets: sets, anon: map[string][]element{}}
	for _, b := range ruleMsgs {
		a, err := attrMap(b)
		if err != nil {
			return nil, err
		}
		if cstr(a[unix.NFTA_RULE_TABLE]) != table {
			continue
		}
		chain := cstr(a[unix.NFTA_RULE_CHAIN])
		ci, ok := chainIndex[chain]
		if !ok {
			return nil, fmt.Errorf("rule in unknown chain %s", chain)
		}
		r, cnt, err := d.rule(a)
		if err != nil {
			return nil, notOwned("a rule in chain %s (handle %d) that %v", chain, cnt.Handle, err)
		}
		snap.Ruleset.Chains[ci].Rules = append(snap.Ruleset.Chains[ci].Rules, r)
		snap.Counters[chain] = append(snap.Counters[chain], cnt)
	}
	return snap, nil
}

func parseSet(b []byte) (liveSet, string, error) {
	a, err := attrMap(b)
	if err != nil {
		return liveSet{}, "", err
	}
	ls := liveSet{
		name:    cstr(a[unix.NFTA_SET_NAME]),
		flags:   be32(a[unix.NFTA_SET_FLAGS]),
		keyType: be32(a[unix.NFTA_SET_KEY_TYPE]),
		keyLen:  be32(a[unix.NFTA_SET_KEY_LEN]),
	}
	for typ, what := range map[uint16]string{unix.NFTA_SET_DATA_TYPE: "data (a map)", unix.NFTA_SET_TIMEOUT: "a timeout",
		nftaSetExpr: "an expression", nftaSetExpressions: "expressions", unix.NFTA_SET_POLICY: "a policy"} {
		if _, ok := a[typ]; ok {
			ls.other = what
		}
	}
	if ud, ok := a[unix.NFTA_SET_USERDATA]; ok {
		ls.comment, _ = userdata.GetString(ud, udataComment)
	}
	return ls, cstr(a[unix.NFTA_SET_TABLE]), nil
}

func parseChain(b []byte) (nftables.Chain, string, error) {
	a, err := attrMap(b)
	if err != nil {
		return nftables.Chain{}, "", err
	}
	tbl := cstr(a[unix.NFTA_CHAIN_TABLE])
	c := nftables.Chain{Name: cstr(a[unix.NFTA_CHAIN_NAME])}
	if _, ok := a[nftaChainUserdata]; ok {
		return c, tbl, fmt.Errorf("chain %s with a comment", c.Name)
	}
	hook, ok := a[unix.NFTA_CHAIN_HOOK]
	if !ok {
		return c, tbl, nil
	}
	h, err := attrMap(hook)
	if err != nil {
		return c, tbl, err
	}
	num := be32(h[unix.NFTA_HOOK_HOOKNUM])
	for name, n := range hooks {
		if n == num {
			c.Hook = name
		}
	}
	prio, known := priorityName(int32(be32(h[unix.NFTA_HOOK_PRIORITY])))
	c.Priority = prio
	if c.Hook == "" || !known || len(h[unix.NFTA_HOOK_DEV]) > 0 || cstr(a[unix.NFTA_CHAIN_TYPE]) != "filter" {
		return c, tbl, fmt.Errorf("base chain %s of a kind turnwall does not write (hook %d, priority %d, type %q)", c.Name, num, int32(be32(h[unix.NFTA_HOOK_PRIORITY])), cstr(a[unix.NFTA_CHAIN_TYPE]))
	}
	switch be32(a[unix.NFTA_CHAIN_POLICY]) {
	case nfAccept:
		c.Policy = "accept"
	case nfDrop:
		c.Policy = "drop"
	default:
		return c, tbl, fmt.Errorf("base chain %s with policy %d", c.Name, be32(a[unix.NFTA_CHAIN_POLICY]))
	}
	return c, tbl, nil
}
