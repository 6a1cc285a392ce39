package apply

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
)

// decoder turns the expressions of a rule back into the model's Rule.
type decoder struct {
	s     *sock
	table string
	sets  map[string]liveSet
	anon  map[string][]element
}

var exprNames = map[string]func() expr.Any{
	"meta":      func() expr.Any { return &expr.Meta{} },
	"cmp":       func() expr.Any { return &expr.Cmp{} },
	"payload":   func() expr.Any { return &expr.Payload{} },
	"lookup":    func() expr.Any { return &expr.Lookup{} },
	"ct":        func() expr.Any { return &expr.Ct{} },
	"bitwise":   func() expr.Any { return &expr.Bitwise{} },
	"counter":   func() expr.Any { return &expr.Counter{} },
	"log":       func() expr.Any { return &expr.Log{} },
	"limit":     func() expr.Any { return &expr.Limit{} },
	"immediate": func() expr.Any { return &expr.Verdict{} },
}

// parseExprs decodes a rule's expression list; an expression turnwall never
// writes is an error, never skipped.
func parseExprs(b []byte) ([]expr.Any, error) {
	list, err := parseAttrs(b)
	if err != nil {
		return nil, err
	}
	out := make([]expr.Any, 0, len(list))
	for _, el := range list {
		a, err := attrMap(el.data)
		if err != nil {
			return nil, err
		}
		name := cstr(a[unix.NFTA_EXPR_NAME])
		mk, ok := exprNames[name]
		if !ok {
			return nil, fmt.Errorf("uses the %q expression", name)
		}
		data := a[unix.NFTA_EXPR_DATA]
		raw, err := attrMap(data)
		if err != nil {
			return nil, err
		}
		switch name {
		case "bitwise":
			if op, ok := raw[nftaBitwiseOp]; ok && be32(op) != 0 {
				return nil, fmt.Errorf("uses a shift")
			}
		case "immediate":
			if be32(raw[unix.NFTA_IMMEDIATE_DREG]) != unix.NFT_REG_VERDICT {
				return nil, fmt.Errorf("loads an immediate value")
			}
		}
		x := mk()
		if err := expr.Unmarshal(unix.NFPROTO_INET, data, x); err != nil {
			return nil, fmt.Errorf("has an undecodable %s expression: %v", name, err)
		}
		out = append(out, x)
	}
	return out, nil
}

// rule decodes one dumped rule and checks that encoding the result gives the
// kernel's expressions back, so a rule is either modelled exactly or refused.
func (d *decoder) rule(a map[uint16][]byte) (nftables.Rule, RuleCounter, error) {
	cnt := RuleCounter{Handle: be64(a[unix.NFTA_RULE_HANDLE])}
	var r nftables.Rule
	if ud, ok := a[unix.NFTA_RULE_USERDATA]; ok {
		var rest []byte
		for b := ud; len(b) >= 2; {
			typ, n := b[0], int(b[1])
			if 2+n > len(b) {
				return r, cnt, fmt.Errorf("has malformed user data")
			}
			if typ == byte(udataRuleComment) {
				r.Comment = cstr(b[2 : 2+n])
			} else {
				rest = append(rest, b[:2+n]...)
			}
			b = b[2+n:]
		}
		if len(rest) > 0 {
			return r, cnt, fmt.Errorf("carries user data other than a comment")
		}
	}
	exprs, err := parseExprs(a[unix.NFTA_RULE_EXPRESSIONS])
	if err != nil {
		return r, cnt, err
	}
	if err := d.match(&r, &cnt, exprs); err != nil {
		return r, cnt, err
	}
	r.IRRule = ruleName(r.Comment)
	// Round trip: the model must encode to exactly these expressions.
	e := newEncoder(nil, d.table)
	again, _, err := e.ruleExprs(r)
	if err != nil {
		return r, cnt, err
	}
	if !sameExprs(exprs, again) {
		return r, cnt, fmt.Errorf("does not read back as %q", r.Text())
	}
	return r, cnt, nil
}

// ruleName is the policy rule a generated rule's comment names: rule
// comments are "NAME FILE:LINE" (NAME holds no space).
func ruleName(comment string) string {
	name, src, ok := strings.Cut(comment, " ")
	if !ok || (!strings.Contains(src, ":") && src != "generated") {
		return ""
	}
	return name
}

func sameExprs(a, b []expr.Any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, err1 := expr.Marshal(unix.NFPROTO_INET, normalize(a[i]))
		y, err2 := expr.Marshal(unix.NFPROTO_INET, normalize(b[i]))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// normalize drops what legitimately differs between the kernel's view and
// a freshly encoded rule: counter values, set ids, anonymous set names, and
// the log level the kernel reports when none was given.
func normalize(x expr.Any) expr.Any {
	switch v := x.(type) {
	case *expr.Counter:
		return &expr.Counter{}
	case *expr.Lookup:
		c := *v
		c.SetID = 0
		if strings.HasPrefix(c.SetName, "__set") {
			c.SetName = "__set"
		}
		return &c
	case *expr.Log:
		c := *v
		if c.Key&(1<<unix.NFTA_LOG_LEVEL) != 0 && c.Level == expr.LogLevelWarning {
			c.Key &^= 1 << unix.NFTA_LOG_LEVEL
			c.Level = 0
		}
		return &c
	}
	return x
}

// match reads the expressions in the order the encoder writes them. A
// protocol matched after the interfaces or addresses is the order of earlier
// versions (Rule.AddrsFirst).
func (d *decoder) match(r *nftables.Rule, cnt *RuleCounter, ex []expr.Any) error {
	i := 0
	before := false // an interface or address match came first
	peek := func() expr.Any {
		if i < len(ex) {
			return ex[i]
		}
		return nil
	}
	cmp := func(op expr.CmpOp, n int) ([]byte, error) {
		c, ok := peek().(*expr.Cmp)
		if !ok || c.Op != op || c.Register != 1 || (n > 0 && len(c.Data) != n) {
			return nil, fmt.Errorf("has an unexpected comparison")
		}
		i++
		return c.Data, nil
	}
	for i < len(ex) {
		switch x := ex[i].(type) {
		case *expr.Meta:
			i++
			if x.Register != 1 || x.SourceRegister {
				return fmt.Errorf("sets meta data")
			}
			switch x.Key {
			case expr.MetaKeyIIFNAME, expr.MetaKeyOIFNAME:
				before = true
				names, err := d.ifnames(peek())
				if err != nil {
					return err
				}
				i++
				if x.Key == expr.MetaKeyIIFNAME {
					r.IIF = names
				} else {
					r.OIF = names
				}
			case expr.MetaKeyNFPROTO:
				before = true
				data, err := cmp(expr.CmpOpEq, 1)
				if err != nil {
					return err
				}
				switch data[0] {
				case unix.NFPROTO_IPV4:
					r.Family = 4
				case unix.NFPROTO_IPV6:
					r.Family = 6
				default:
					return fmt.Errorf("matches protocol family %d", data[0])
				}
				for k := 0; k < 2; k++ {
					p, ok := peek().(*expr.Payload)
					if !ok || p.Base != expr.PayloadBaseNetworkHeader {
						break
					}
					i++
					l, ok := peek().(*expr.Lookup)
					if !ok || l.SourceRegister != 1 || l.IsDestRegSet || l.Invert {
						return fmt.Errorf("matches an address without a set")
					}
					i++
					ls, ok := d.sets[l.SetName]
					if !ok || ls.flags&unix.NFT_SET_ANONYMOUS != 0 {
						return fmt.Errorf("matches an address against an anonymous set")
					}
					switch {
					case p.Offset == 12 && r.Family == 4 || p.Offset == 8 && r.Family == 6:
						r.SrcSet = l.SetName
					case p.Offset == 16 && r.Family == 4 || p.Offset == 24 && r.Family == 6:
						r.DstSet = l.SetName
					default:
						return fmt.Errorf("matches network header offset %d", p.Offset)
					}
				}
			case expr.MetaKeyL4PROTO:
				r.AddrsFirst = before
				data, err := cmp(expr.CmpOpEq, 1)
				if err != nil {
					return err
				}
				for p, n := range protos {
					if n == data[0] {
						r.Proto = p
					}
				}
				if r.Proto == "" {
					return fmt.Errorf("matches protocol %d", data[0])
				}
				for k := 0; k < 2; k++ {
					p, ok := peek().(*expr.Payload)
					if !ok || p.Base != expr.PayloadBaseTransportHeader {
						break
					}
					i++
					ports, err := d.ports(ex, &i)
					if err != nil {
						return err
					}
					switch p.Offset {
					case 0:
						r.SPorts = ports
					case 2:
						r.DPorts = ports
					default:
						return fmt.Errorf("matches transport header offset %d", p.Offset)
					}
				}
			default:
				return fmt.Errorf("matches meta key %d", x.Key)
			}
		case *expr.Ct:
			i++
			if x.Key == expr.CtKeyDIRECTION {
				data, err := cmp(expr.CmpOpEq, 1)
				if err != nil {
					return err
				}
				if r.CtDir, err = ctDirName(data[0]); err != nil {
					return err
				}
				continue
			}
			if x.Key != expr.CtKeySTATE {
				return fmt.Errorf("matches ct key %d", x.Key)
			}
			bw, ok := peek().(*expr.Bitwise)
			if !ok || len(bw.Mask) != 4 {
				return fmt.Errorf("has an unexpected ct state match")
			}
			i++
			if _, err := cmp(expr.CmpOpNeq, 4); err != nil {
				return err
			}
			mask := binary.NativeEndian.Uint32(bw.Mask)
			for _, c := range ctStates {
				if mask&c.bit != 0 {
					r.CtState = append(r.CtState, c.name)
				}
			}
		case *expr.Payload:
			// The only payload outside a match: a DSCP write (qos.go).
			if err := d.dscp(r, ex, &i); err != nil {
				return err
			}
		case *expr.Limit:
			i++
			text, ok := limitText(x.Rate, x.Unit)
			if !x.Over || x.Type != expr.LimitTypePkts || !ok {
				return fmt.Errorf("has a limit turnwall does not write")
			}
			r.LimitOver, r.LimitBurst = text, int(x.Burst)
		case *expr.Counter:
			i++
			r.Counter = true
			cnt.Counter, cnt.Packets, cnt.Bytes = true, x.Packets, x.Bytes
		case *expr.Log:
			i++
			r.Log = string(x.Data)
		case *expr.Verdict:
			i++
			switch x.Kind {
			case expr.VerdictAccept:
				r.Verdict = "accept"
			case expr.VerdictDrop:
				r.Verdict = "drop"
			case expr.VerdictReturn:
				r.Verdict = "return"
			case expr.VerdictJump:
				r.Verdict = "jump " + x.Chain
			case expr.VerdictGoto:
				r.Verdict = "goto " + x.Chain
			default:
				return fmt.Errorf("has verdict %d", x.Kind)
			}
		default:
			return fmt.Errorf("has an unexpected %T", x)
		}
	}
	if r.Verdict == "" {
		return fmt.Errorf("has no verdict")
	}
	return nil
}

func (d *decoder) anonElements(name string, keyType, keyLen uint32) ([]element, liveSet, error) {
	ls, ok := d.sets[name]
	if !ok || ls.flags&unix.NFT_SET_ANONYMOUS == 0 || ls.keyType != keyType || ls.keyLen != keyLen {
		return nil, ls, fmt.Errorf("looks up set %s of an unexpected kind", name)
	}
	if e, ok := d.anon[name]; ok {
		return e, ls, nil
	}
	e, err := readElements(d.s, d.table, name)
	if err != nil {
		return nil, ls, err
	}
	d.anon[name] = e
	return e, ls, nil
}

func (d *decoder) ifnames(x expr.Any) ([]string, error) {
	switch v := x.(type) {
	case *expr.Cmp:
		if v.Op != expr.CmpOpEq || v.Register != 1 || len(v.Data) > ifnameLen || len(v.Data) == 0 {
			return nil, fmt.Errorf("has an unexpected interface match")
		}
		if len(v.Data) < ifnameLen {
			return []string{string(v.Data) + "*"}, nil
		}
		return []string{cstr(v.Data)}, nil
	case *expr.Lookup:
		if v.SourceRegister != 1 || v.IsDestRegSet || v.Invert {
			return nil, fmt.Errorf("has an unexpected interface lookup")
		}
		elems, ls, err := d.anonElements(v.SetName, typeIfname, ifnameLen)
		if err != nil {
			return nil, err
		}
		if ls.flags&unix.NFT_SET_INTERVAL != 0 {
			return nil, fmt.Errorf("matches interface wildcards in a set")
		}
		// The kernel lists a set's elements in its own order; nft writes
		// and turnwall keeps them sorted.
		var names []string
		for _, e := range elems {
			names = append(names, cstr(e.key))
		}
		sort.Strings(names)
		return names, nil
	}
	return nil, fmt.Errorf("has an unexpected interface match")
}

func (d *decoder) ports(ex []expr.Any, i *int) ([]ir.PortRange, error) {
	if *i >= len(ex) {
		return nil, fmt.Errorf("loads a port without matching it")
	}
	u16 := func(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
	switch v := ex[*i].(type) {
	case *expr.Cmp:
		if v.Register != 1 || len(v.Data) != 2 {
			return nil, fmt.Errorf("has an unexpected port match")
		}
		*i++
		switch v.Op {
		case expr.CmpOpEq:
			return []ir.PortRange{{First: u16(v.Data), Last: u16(v.Data)}}, nil
		case expr.CmpOpGte:
			if *i >= len(ex) {
				return nil, fmt.Errorf("has an unexpected port range")
			}
			hi, ok := ex[*i].(*expr.Cmp)
			if !ok || hi.Op != expr.CmpOpLte || hi.Register != 1 || len(hi.Data) != 2 {
				return nil, fmt.Errorf("has an unexpected port range")
			}
			*i++
			return []ir.PortRange{{First: u16(v.Data), Last: u16(hi.Data)}}, nil
		}
	case *expr.Lookup:
		if v.SourceRegister != 1 || v.IsDestRegSet || v.Invert {
			return nil, fmt.Errorf("has an unexpected port lookup")
		}
		*i++
		elems, ls, err := d.anonElements(v.SetName, typeInetService, 2)
		if err != nil {
			return nil, err
		}
		var out []ir.PortRange
		if ls.flags&unix.NFT_SET_INTERVAL == 0 {
			for _, e := range elems {
				out = append(out, ir.PortRange{First: u16(e.key), Last: u16(e.key)})
			}
			sort.Slice(out, func(a, b int) bool { return out[a].First < out[b].First })
			return out, nil
		}
		ranges, _, err := elemRanges(elems, 2)
		if err != nil {
			return nil, err
		}
		for _, r := range ranges {
			out = append(out, ir.PortRange{First: u16(r.from), Last: u16(r.to)})
		}
		return out, nil
	}
	return nil, fmt.Errorf("has an unexpected port match")
}
