package backendtest

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/turnwall/turnwall/compiler/ir"
)

// hostileText is what an attacker (or a careless copy-paste) might put in a
// name or a description: line breaks, quotes, statement separators, block
// ends, comment starters, keywords that end a config context, unicode line
// separators, bidi controls and non-ASCII letters.
var hostileText = []string{
	"x\ny",
	"a\"; drop\n}",
	"end\nconfig system admin",
	"q' or '1'='1",
	"#comment\r\nexit",
	"}\ntable inet evil {",
	"\u2028line\u2029sep",
	"</entry><entry name=\"evil\">",
	"ünïcödé名前",
	"exit\nend\nexecute factoryreset",
	"access-list x permit ip any any",
	"$(reboot)`id`",
	"rtl\u202eexe.txt\u2066iso\u2069\u200bzw\ufeff",
}

// BidiFree reports the first Unicode format character (category Cf: bidi
// overrides and isolates, zero widths, BOM) in out, if any: no target may
// pass one from the policy into its output, where it would reorder or hide
// text in a reviewer's view.
func BidiFree(out []byte) (rune, bool) {
	for _, r := range string(out) {
		if unicode.Is(unicode.Cf, r) {
			return r, false
		}
	}
	return 0, true
}

// HostilePair returns a program whose every name and free-text field is
// hostile, and its benign twin: the same structure with plain names. A target
// that escapes or replaces user text correctly emits the same number of lines
// for both; one that lets a newline through emits more for the hostile one.
func HostilePair(base *ir.Program) (hostile, benign *ir.Program) {
	return rename(base, hostileName, false), rename(base, plainName, false)
}

// HostilePairPlainInterfaces is HostilePair with the interface names kept as
// they are: for targets that rightly refuse an interface name the device
// cannot have, instead of rewriting a name that must match a real interface.
func HostilePairPlainInterfaces(base *ir.Program) (hostile, benign *ir.Program) {
	return rename(base, hostileName, true), rename(base, plainName, true)
}

func hostileName(i int, orig string) string { return hostileText[i%len(hostileText)] + orig }

func plainName(i int, _ string) string { return fmt.Sprintf("n%d", i) }

// rename copies p with every name and text field replaced by f(i, old),
// keeping references consistent.
func rename(base *ir.Program, f func(int, string) string, keepInterfaces bool) *ir.Program {
	counter := 0
	names := map[string]string{}
	name := func(s string) string {
		if s == "" {
			return ""
		}
		if n, ok := names[s]; ok {
			return n
		}
		counter++
		n := f(counter, s)
		names[s] = n
		return n
	}
	text := func(s string) string {
		counter++
		return f(counter, s)
	}
	src := func(s ir.Source) ir.Source {
		s.File = text(s.File)
		return s
	}
	origin := func(o ir.Origin) ir.Origin {
		return ir.Origin{Kind: o.Kind, Name: text(o.Name), Source: src(o.Source)}
	}
	p := &ir.Program{
		Policy: ir.Policy{Name: text(base.Policy.Name), Description: text(base.Policy.Description),
			DefaultAction: base.Policy.DefaultAction, LogDefault: base.Policy.LogDefault, Source: src(base.Policy.Source)},
	}
	for _, z := range base.Zones {
		var ifs []string
		for _, i := range z.Interfaces {
			if keepInterfaces {
				ifs = append(ifs, i)
			} else {
				ifs = append(ifs, name("if:"+i))
			}
		}
		p.Zones = append(p.Zones, ir.Zone{Name: name("zone:" + z.Name), Interfaces: ifs, Source: src(z.Source)})
	}
	zone := func(z string) string {
		if z == "" {
			return ""
		}
		return name("zone:" + z)
	}
	for _, s := range base.AddressSets {
		c := s
		c.Name = name("set:" + s.Name)
		c.Origin = origin(s.Origin)
		p.AddressSets = append(p.AddressSets, c)
	}
	for _, s := range base.Services {
		p.Services = append(p.Services, ir.ServiceSet{Name: name("svc:" + s.Name), Entries: s.Entries})
	}
	for _, r := range base.Rules {
		c := r
		c.Name = name("rule:" + r.Name)
		c.FromZone, c.ToZone = zone(r.FromZone), zone(r.ToZone)
		c.Src, c.Dst, c.Service = name("set:"+r.Src), name("set:"+r.Dst), name("svc:"+r.Service)
		c.Comment = text(r.Comment)
		c.Origin = origin(r.Origin)
		p.Rules = append(p.Rules, c)
	}
	for _, a := range base.Agents {
		p.Agents = append(p.Agents, ir.AgentGroup{Name: name("agents:" + a.Name), Zone: zone(a.Zone),
			Addresses: name("set:" + a.Addresses), WebRTCOnly: a.WebRTCOnly, Origin: origin(a.Origin)})
	}
	for _, pr := range base.Providers {
		c := ir.Provider{Name: name("provider:" + pr.Name), Zone: zone(pr.Zone), Origin: origin(pr.Origin)}
		if pr.Addresses != "" {
			c.Addresses = name("set:" + pr.Addresses)
		}
		if pr.STUN != "" {
			c.STUN = name("set:" + pr.STUN)
		}
		p.Providers = append(p.Providers, c)
	}
	for _, r := range base.Relays {
		c := r
		c.Name = name("relay:" + r.Name)
		c.Zone = zone(r.Zone)
		c.Addresses = name("set:" + r.Addresses)
		if r.Peers != "" {
			c.Peers = name("set:" + r.Peers)
		}
		c.Realm = text(r.Realm)
		c.FQDN = text(r.FQDN)
		c.TLS.Cert, c.TLS.Key = text(r.TLS.Cert), text(r.TLS.Key)
		c.Clients = nil
		for _, cl := range r.Clients {
			c.Clients = append(c.Clients, name("agents:"+cl))
		}
		c.Origin = origin(r.Origin)
		p.Relays = append(p.Relays, c)
	}
	for _, pl := range base.Platforms {
		c := pl
		c.Name = text(pl.Name)
		c.TURNServerOverride = text(pl.TURNServerOverride)
		c.TenantRealm = text(pl.TenantRealm)
		c.Origin = origin(pl.Origin)
		p.Platforms = append(p.Platforms, c)
	}
	for _, c := range base.QoS {
		q := c
		q.Name = name("qos:" + c.Name)
		q.Description = text(c.Description)
		q.Rules = nil
		for _, r := range c.Rules {
			q.Rules = append(q.Rules, name("rule:"+r))
		}
		q.Origin = origin(c.Origin)
		p.QoS = append(p.QoS, q)
	}
	p.Index()
	return p
}

// CountLines counts non-empty lines over all files.
func CountLines(data []byte) int {
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}
