package apply

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay/netns"
)

// fwdFlow is one UDP flow a ruleset allows: addresses, ports and the
// gateway's interfaces it crosses.
type fwdFlow struct {
	iif, oif     string
	src, dst     netip.Addr
	sports       ir.PortRange // source ports the rule allows
	dport, block uint16       // an allowed destination port, and one the policy drops
}

// devName is an interface the name matches (a wildcard "eth*" matches eth0).
func devName(match string) string {
	if n, ok := strings.CutSuffix(match, "*"); ok {
		return n + "0"
	}
	return match
}

// allowedFlow picks an IPv4 UDP accept rule of a ruleset that names the
// interfaces each way and two address sets with addresses (the first
// interface of each), from agents to a provider where there is one.
func allowedFlow(rs *nftables.Ruleset) (fwdFlow, error) {
	sets := map[string]nftables.Set{}
	for _, s := range rs.Sets {
		sets[s.Name] = s
	}
	first := func(name string) (netip.Addr, bool) {
		s, ok := sets[name]
		if !ok || len(s.Prefixes) == 0 {
			return netip.Addr{}, false
		}
		p := s.Prefixes[0]
		if p.Bits() == 32 {
			return p.Addr(), true
		}
		return p.Addr().Next(), true
	}
	var best *fwdFlow
	bestScore := 0
	for _, c := range rs.Chains {
		for _, r := range c.Rules {
			if r.Verdict != "accept" || r.Proto != ir.UDP || r.Family != 4 || len(r.IIF) == 0 || len(r.OIF) == 0 || len(r.DPorts) == 0 {
				continue
			}
			src, ok1 := first(r.SrcSet)
			dst, ok2 := first(r.DstSet)
			if !ok1 || !ok2 || src == dst {
				continue
			}
			f := fwdFlow{iif: devName(r.IIF[0]), oif: devName(r.OIF[0]), src: src, dst: dst, sports: ir.PortRange{First: 1024, Last: 65535}, dport: r.DPorts[0].First, block: 9}
			if len(r.SPorts) > 0 {
				f.sports = r.SPorts[0]
			}
			// Prefer agents to a provider, then a rule that takes any
			// source port (one-way floods vary it so that every packet is
			// new to conntrack).
			score := 0
			if strings.HasPrefix(r.SrcSet, "agents.") && strings.HasPrefix(r.DstSet, "provider.") {
				score += 2
			}
			if len(r.SPorts) == 0 {
				score++
			}
			if best == nil || score > bestScore {
				best, bestScore = &f, score
			}
		}
	}
	if best == nil {
		return fwdFlow{}, fmt.Errorf("no IPv4 UDP accept rule with interfaces each way")
	}
	return *best, nil
}

// fwdLab is an agent namespace, a gateway namespace holding a ruleset, and a
// far namespace, wired for one flow. The gateway answers ARP for both ends
// (proxy ARP) and routes the two host addresses.
type fwdLab struct {
	name           string
	flow           fwdFlow
	policy         bool // the gateway holds a policy's ruleset
	agent, gw, far *netns.NS
	sock           int // raw IPv4 socket in the agent namespace
	reply          int // UDP socket of the far end, bound to the flow's destination
}

func newFwdLab(b *testing.B, name string, f fwdFlow) *fwdLab {
	b.Helper()
	l := &fwdLab{name: name, flow: f, agent: newNS(b, "fw-agent"), gw: newNS(b, "fw-gw"), far: newNS(b, "fw-far"), sock: -1, reply: -1}
	b.Cleanup(func() {
		if l.sock >= 0 {
			unix.Close(l.sock)
		}
		if l.reply >= 0 {
			unix.Close(l.reply)
		}
	})
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	must(l.gw.Router())
	must(netns.Link(l.gw, f.iif, l.agent, "eth0"))
	must(netns.Link(l.gw, f.oif, l.far, "eth0"))
	must(l.agent.Addr("eth0", f.src.String()+"/32"))
	must(l.far.Addr("eth0", f.dst.String()+"/32"))
	must(l.agent.IP("route", "add", "default", "dev", "eth0"))
	must(l.far.IP("route", "add", "default", "dev", "eth0"))
	must(l.gw.IP("route", "add", f.src.String()+"/32", "dev", f.iif))
	must(l.gw.IP("route", "add", f.dst.String()+"/32", "dev", f.oif))
	for _, dev := range []string{f.iif, f.oif} {
		must(l.gw.Sysctl("net/ipv4/conf/"+dev+"/proxy_arp", "1"))
		must(l.gw.Sysctl("net/ipv4/conf/"+dev+"/rp_filter", "0"))
	}
	must(l.gw.Sysctl("net.ipv4.conf.all.rp_filter", "0"))
	must(l.agent.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		l.sock = fd
		return err
	}))
	must(l.far.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		l.reply = fd
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: f.dst.As4(), Port: int(f.dport)})
	}))
	return l
}

// conntrackOnly is a table that only sends forwarded packets through
// conntrack: the baseline every ruleset is compared with.
const conntrackOnly = `table inet turnwall {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		ct state invalid drop
	}
}
`

// packet is a 96-byte IPv4 UDP packet (the kernel fills in the IP length
// and checksum; a zero UDP checksum means none).
func packet(src, dst netip.Addr, sport, dport uint16) []byte {
	p := make([]byte, 96)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	binary.BigEndian.PutUint16(p[24:], 96-20)
	return p
}

// traffic kinds: every packet a new flow to an allowed port; every packet a
// new flow to a port the policy drops; and one established flow (the far
// end has answered) carrying media.
const (
	oneWayAllowed = "one-way-new-allowed"
	oneWayDropped = "one-way-new-dropped"
	twoWayMedia   = "two-way-established"
)

// fwdPackets bounds each measurement in count and time; fwdRounds is the
// number of rounds per benchmark iteration.
const (
	fwdPackets = 40_000
	fwdMaxTime = 3 * time.Second
	fwdRounds  = 5
)

// run sends one bounded burst from a thread pinned to one CPU and returns
// packets per second of that thread's CPU time and of wall time: counted at
// the far end when the traffic is allowed, as sent when it is dropped. The
// veth pair forwards in the sender's soft interrupt, in the sending thread's
// context, so its CPU time is the gateway's work plus the sending, and is
// not inflated when other programs take the CPU. Source ports continue from
// *port so that no flow repeats within the conntrack timeout.
func (l *fwdLab) run(b *testing.B, kind string, port *uint16) (perCPU, perWall float64) {
	b.Helper()
	f := l.flow
	dport, sport := f.dport, f.sports.First
	if kind == oneWayDropped {
		dport = f.block
	}
	if kind == twoWayMedia {
		// One packet out, one answer back: the flow is established.
		p := packet(f.src, f.dst, sport, dport)
		if err := unix.Sendto(l.sock, p, 0, &unix.SockaddrInet4{Addr: f.dst.As4()}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if err := unix.Sendto(l.reply, []byte("answer"), 0, &unix.SockaddrInet4{Addr: f.src.As4(), Port: int(sport)}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := rxPackets(b, l.far)
	span := int(f.sports.Last) - int(f.sports.First) + 1
	to := &unix.SockaddrInet4{Addr: f.dst.As4()}
	buf := packet(f.src, f.dst, sport, dport)
	done := make(chan struct{})
	var sent int
	var elapsed, cpuTime time.Duration
	var serr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var cpu unix.CPUSet
		cpu.Set(runtime.NumCPU() - 1)
		unix.SchedSetaffinity(0, &cpu)
		var c0, c1 unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c0)
		start := time.Now()
		deadline := start.Add(fwdMaxTime)
		for sent < fwdPackets {
			if kind != twoWayMedia {
				*port++
				binary.BigEndian.PutUint16(buf[20:], uint16(int(f.sports.First)+int(*port)%span))
			}
			if err := unix.Sendto(l.sock, buf, 0, to); err != nil {
				if err == unix.ENOBUFS || err == unix.EAGAIN {
					continue
				}
				serr = err
				return
			}
			sent++
			if sent%1024 == 0 && time.Now().After(deadline) {
				break
			}
		}
		elapsed = time.Since(start)
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c1)
		cpuTime = time.Duration(c1.Nano() - c0.Nano())
	}()
	<-done
	if serr != nil {
		b.Fatal(serr)
	}
	time.Sleep(10 * time.Millisecond)
	got := rxPackets(b, l.far) - before
	if kind == oneWayDropped {
		if l.policy && got > uint64(sent)/100 {
			b.Fatalf("%s: %d of %d packets to dropped port %d arrived", l.name, got, sent, dport)
		}
		return float64(sent) / cpuTime.Seconds(), float64(sent) / elapsed.Seconds()
	}
	if got < uint64(sent)/2 {
		b.Fatalf("%s %s: only %d of %d packets arrived", l.name, kind, got, sent)
	}
	return float64(got) / cpuTime.Seconds(), float64(got) / elapsed.Seconds()
}

// rxPackets is how many packets the far end's interface received.
func rxPackets(b *testing.B, ns *netns.NS) uint64 {
	b.Helper()
	out, err := exec.Command("ip", "-n", ns.Name, "-s", "-j", "link", "show", "dev", "eth0").Output()
	if err != nil {
		b.Fatal(err)
	}
	var links []struct {
		Stats struct {
			RX struct {
				Packets uint64 `json:"packets"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal(out, &links); err != nil || len(links) != 1 {
		b.Fatalf("ip -s -j link: %v: %s", err, out)
	}
	return links[0].Stats.RX.Packets
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkForward measures packets per second forwarded through a gateway
// namespace holding: no ruleset, a conntrack-only ruleset, every shipped
// example's ruleset and the 100,000-prefix ruleset, for one-way floods of new
// flows (allowed, and to a port the policy drops) and an established two-way
// flow. Each round measures every ruleset in turn, so load on the machine
// hits all alike; the reported figure per ruleset is the median over rounds
// of its rate divided by the conntrack-only rate of the same round. Rates
// are per CPU second of the sending thread, which carries the gateway's
// forwarding (see run); "none" has no conntrack at all, and with it nothing
// is dropped.
func BenchmarkForward(b *testing.B) {
	needKernel(b)
	type entry struct {
		name string
		rs   *nftables.Ruleset
		text string
	}
	var entries []entry
	all := cases(b)
	var names []string
	for n := range all {
		if strings.HasPrefix(n, "policies-") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		entries = append(entries, entry{name: strings.TrimPrefix(n, "policies-"), rs: all[n]})
	}
	large := largePolicy(b)
	entries = append(entries, entry{name: "100k-prefixes", rs: large})
	// Its rules with only the first prefix of each set (the one the flow
	// uses): what the lookups in its large interval sets cost.
	entries = append(entries, entry{name: "100k-rules-small-sets", rs: firstPrefixes(large)})
	// The same policy with its rules in one chain per interface pair, chosen
	// by one verdict map lookup (loaded by nft: the model has no maps).
	entries = append(entries, entry{name: "100k-pair-vmap", rs: large, text: pairVmap(b, large)})
	// The private-relay example in the structure of earlier versions, for a
	// before/after comparison in the same run.
	if rs, ok := all["policies-private-relay"]; ok {
		entries = append(entries, entry{name: "private-relay-earlier", rs: earlierStructure(rs)})
	}
	// The baselines use the first example's addresses and interfaces.
	base, err := allowedFlow(entries[0].rs)
	if err != nil {
		b.Fatal(err)
	}
	// TURNWALL_BENCH_FORWARD=NAME[,NAME...] keeps only those rulesets (and
	// conntrack-only, the baseline) and TURNWALL_BENCH_FORWARD_KIND one kind
	// of traffic: to profile one ruleset's forwarding (perf record -a).
	if only := os.Getenv("TURNWALL_BENCH_FORWARD"); only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			keep[n] = true
		}
		kept := entries[:0]
		for _, e := range entries {
			if keep[e.name] {
				kept = append(kept, e)
			}
		}
		entries = kept
	}
	var labs []*fwdLab
	for _, name := range []string{"none", "conntrack-only"} {
		if os.Getenv("TURNWALL_BENCH_FORWARD") != "" && name == "none" {
			continue
		}
		l := newFwdLab(b, name, base)
		if name == "conntrack-only" {
			nftFile(b, l.gw, []byte(conntrackOnly))
		}
		labs = append(labs, l)
	}
	for _, e := range entries {
		f, err := allowedFlow(e.rs)
		if err != nil {
			b.Fatalf("%s: %v", e.name, err)
		}
		l := newFwdLab(b, e.name, f)
		l.policy = true
		if e.text != "" {
			nftFile(b, l.gw, []byte(e.text))
		} else {
			mustApply(b, l.gw, e.rs)
		}
		labs = append(labs, l)
	}
	for _, l := range labs {
		// New flows expire within a second, so that source ports can be
		// used again in the next round.
		if l.name != "none" {
			for _, k := range []string{"nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"} {
				if err := l.gw.Sysctl("net.netfilter."+k, "1"); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	kinds := []string{oneWayAllowed, oneWayDropped, twoWayMedia}
	if k := os.Getenv("TURNWALL_BENCH_FORWARD_KIND"); k != "" {
		if !slices.Contains(kinds, k) {
			b.Fatalf("TURNWALL_BENCH_FORWARD_KIND=%q: one of %v", k, kinds)
		}
		kinds = []string{k}
	}
	ratios := map[string]map[string][]float64{}
	ports := map[*fwdLab]*uint16{}
	for _, l := range labs {
		ports[l] = new(uint16)
	}
	b.ResetTimer()
	// At least fwdRounds rounds, so a plain `make bench` (b.N = 1) gives a
	// median too.
	for round := 0; round < fwdRounds*b.N; round++ {
		for _, kind := range kinds {
			rates, wall := map[string]float64{}, map[string]float64{}
			// Rotate the order each round so no ruleset always goes first.
			for i := range labs {
				l := labs[(i+round)%len(labs)]
				if kind == oneWayDropped && l.name == "none" {
					continue // without a ruleset nothing is dropped
				}
				rates[l.name], wall[l.name] = l.run(b, kind, ports[l])
			}
			baseRate := rates["conntrack-only"]
			for name, r := range rates {
				if ratios[kind] == nil {
					ratios[kind] = map[string][]float64{}
				}
				ratios[kind][name] = append(ratios[kind][name], r/baseRate)
			}
			if round == 0 {
				b.Logf("%s conntrack-only: %.0f packets per CPU second, %.0f per second", kind, baseRate, wall["conntrack-only"])
			}
		}
	}
	b.StopTimer()
	for _, kind := range kinds {
		var keys []string
		for name := range ratios[kind] {
			keys = append(keys, name)
		}
		sort.Strings(keys)
		for _, name := range keys {
			m := median(ratios[kind][name])
			b.Logf("%-22s %-16s %.3f of conntrack-only (median of %d rounds)", kind, name, m, len(ratios[kind][name]))
			b.ReportMetric(m, kind+"/"+name)
		}
	}
}

// earlierStructure is a ruleset in the chain structure of earlier versions:
// each rule matches interfaces and addresses before protocol and ports, and
// established packets are accepted in the policy chain, after the jump.
func earlierStructure(rs *nftables.Ruleset) *nftables.Ruleset {
	out := clone(rs)
	var est []nftables.Rule
	for ci := range out.Chains {
		c := &out.Chains[ci]
		kept := c.Rules[:0]
		for _, r := range c.Rules {
			if c.Hook != "" && len(r.CtState) > 0 {
				est = append(est, r)
				continue
			}
			r.AddrsFirst = r.Proto != ""
			kept = append(kept, r)
		}
		c.Rules = kept
	}
	for ci := range out.Chains {
		if out.Chains[ci].Hook == "" {
			out.Chains[ci].Rules = append(append([]nftables.Rule(nil), est...), out.Chains[ci].Rules...)
		}
	}
	return out
}

// firstPrefixes is a ruleset with only the first prefix of each set.
func firstPrefixes(rs *nftables.Ruleset) *nftables.Ruleset {
	out := clone(rs)
	for i := range out.Sets {
		if len(out.Sets[i].Prefixes) > 1 {
			out.Sets[i].Prefixes = out.Sets[i].Prefixes[:1]
		}
	}
	return out
}

// pairVmap renders a ruleset whose policy chain holds, after its ct state
// rules, only rules naming one input and one output interface each (and
// rules naming none after them), with those rules moved to one chain per
// interface pair, without the interface tests, and the policy chain jumping
// to the packet's pair through an `iifname . oifname` verdict map. A rule
// is evaluated only for packets of its pair, in the same order, and the
// rules after the map are reached when the pair's chain returns, so every
// decision is the same.
func pairVmap(b testing.TB, rs *nftables.Ruleset) string {
	b.Helper()
	out := clone(rs)
	const mark = "PAIR VERDICT MAP"
	var pairs []string
	pairChain := map[string]int{}
	for ci := range out.Chains {
		c := &out.Chains[ci]
		if c.Hook != "" {
			continue
		}
		var head, tail []nftables.Rule
		for _, r := range c.Rules {
			switch {
			case len(r.CtState) > 0 && len(tail) == 0 && len(pairs) == 0:
				head = append(head, r)
			case len(r.IIF) == 1 && len(r.OIF) == 1 && len(tail) == 0:
				pair := r.IIF[0] + "|" + r.OIF[0]
				if _, ok := pairChain[pair]; !ok {
					pairChain[pair] = len(out.Chains)
					pairs = append(pairs, pair)
					out.Chains = append(out.Chains, nftables.Chain{Name: fmt.Sprintf("pair_%d", len(pairs))})
				}
				r.IIF, r.OIF = nil, nil
				i := pairChain[pair]
				out.Chains[i].Rules = append(out.Chains[i].Rules, r)
				c = &out.Chains[ci]
			case len(r.IIF) == 0 && len(r.OIF) == 0:
				tail = append(tail, r)
			default:
				b.Fatalf("pairVmap: rule %q does not fit", r.Comment)
			}
		}
		c.Rules = append(append(head, nftables.Rule{Verdict: "accept", Comment: mark}), tail...)
	}
	var elems []string
	for _, p := range pairs {
		in, o, _ := strings.Cut(p, "|")
		elems = append(elems, fmt.Sprintf("%q . %q : jump %s", in, o, out.Chains[pairChain[p]].Name))
	}
	vmap := "iifname . oifname vmap { " + strings.Join(elems, ", ") + " }"
	var lines []string
	for _, line := range strings.Split(string(out.Text()), "\n") {
		if strings.Contains(line, mark) {
			line = "\t\t" + vmap
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
