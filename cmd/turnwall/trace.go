package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

func (a *app) traceCmd() *cobra.Command {
	var f policyFlags
	var target, src, dst, proto, fromZone, toZone, dstHost string
	var sport, dport int
	var reply bool
	var params []string
	reg := registry()
	cmd := &cobra.Command{
		Use:   "trace [POLICY] --src IP --dst IP --proto udp|tcp --dport PORT",
		Short: "Show which rule decides a packet, as a target's rule set does",
		Long: `Trace compiles POLICY, emits --target, reads the emitted rules back with an
independent parser and decides one packet with them, like ASA packet-tracer or
PAN-OS test security-policy-match. It prints the verdict, the deciding rule and
the policy line it came from, and checks that the IR decides the same.

Zones are found from the addresses (the agents, provider or relay block that
holds them) unless --from-zone/--to-zone are given. --dst-host names the FQDN
a client resolved, for rules that allow a destination by name.

--reply decides the reply packet of the connection the flags describe (from
--dst:--dport back to --src:--sport). Every traceable target is stateful: a
reply of an allowed connection passes (nftables: ct state established; PAN-OS
and FortiOS: the session; ASA: the connection), and trace names the rule that
allowed the original direction. A reply of a denied connection has no
connection to belong to and is decided as a new connection of its own.

Exit status: 0 traced (whatever the verdict), 1 policy errors or the target
disagrees with the IR, 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pkt, err := tracePacket(src, dst, proto, sport, dport, dstHost)
			if err != nil {
				return usageError{err}
			}
			byTarget, err := reg.SplitParams(params)
			if err != nil {
				return usageError{err}
			}
			b, ok := reg.Get(target)
			if !ok {
				return usageError{fmt.Errorf("unknown target %q; targets are %s", target, strings.Join(reg.Names(), ", "))}
			}
			tb, ok := b.(backends.Traceable)
			if !ok && target != "ir" {
				return usageError{fmt.Errorf("target %s has no firewall rules to trace; traceable targets: %s", target, strings.Join(traceable(reg), ", "))}
			}
			if _, stateful := replyMechanism[target]; reply && !stateful {
				return usageError{fmt.Errorf("--reply: turnwall has no connection-tracking model of target %s", target)}
			}
			diagFlags := f
			diagFlags.format = "text"
			diagFlags.errorsOnly = true
			res, err := a.compilePolicy(policyArg(args), &diagFlags)
			if err != nil {
				return err
			}
			if res.HasErrors() {
				return exitError{exitPolicy}
			}
			prog := res.Program
			pkt.FromZone, pkt.ToZone = fromZone, toZone
			if pkt.FromZone == "" {
				pkt.FromZone = prog.ZoneOf(pkt.Src)
			}
			if pkt.ToZone == "" {
				pkt.ToZone = prog.ZoneOf(pkt.Dst)
			}
			if pkt.FromZone == "" || pkt.ToZone == "" {
				return usageError{fmt.Errorf("cannot tell the zones of %s -> %s from the policy; give --from-zone and --to-zone (zones: %s)", pkt.Src, pkt.Dst, zoneNames(prog))}
			}
			if reply {
				back := replyPacket(pkt)
				fmt.Fprintf(a.stdout, "%-9s %s (reply of %s)\n", "packet", describePacket(back), describePacket(pkt))
			} else {
				fmt.Fprintf(a.stdout, "%-9s %s\n", "packet", describePacket(pkt))
			}
			want := prog.Allows(pkt)
			wantAction := want.Action
			if reply {
				var line string
				wantAction, line = decideReply("ir", backends.Decision{Action: want.Action, Rule: ruleName(want.Rule), Source: ruleSource(want.Rule)}, func() backends.Decision {
					v := prog.Allows(replyPacket(pkt))
					return backends.Decision{Action: v.Action, Rule: ruleName(v.Rule), Source: ruleSource(v.Rule)}
				})
				fmt.Fprintf(a.stdout, "%-9s %s\n", "ir", line)
			} else {
				fmt.Fprintf(a.stdout, "%-9s %s\n", "ir", describeVerdict(want.Action, ruleName(want.Rule), ruleSource(want.Rule)))
			}
			if target == "ir" {
				return nil
			}
			opts, _ := backends.DeviceOptions(prog, tb, backends.Options{Params: byTarget[target]})
			files, err := tb.Emit(prog, opts)
			if err != nil {
				return fmt.Errorf("target %s: %w", target, err)
			}
			cfg, err := tb.Reader().Read(files)
			if err != nil {
				return fmt.Errorf("reading back the %s rules: %w", target, err)
			}
			got := cfg.Decide(pkt)
			gotAction := got.Action
			if reply {
				var line string
				gotAction, line = decideReply(target, got, func() backends.Decision { return cfg.Decide(replyPacket(pkt)) })
				fmt.Fprintf(a.stdout, "%-9s %s\n", target, line)
			} else {
				fmt.Fprintf(a.stdout, "%-9s %s\n", target, describeVerdict(got.Action, got.Rule, got.Source))
			}
			if gotAction != wantAction {
				fmt.Fprintf(a.stderr, "turnwall: the %s rules decide differently from the policy; please report this\n", target)
				return exitError{exitPolicy}
			}
			return nil
		},
	}
	f.add(cmd, "unused")
	cmd.Flags().MarkHidden("format")
	cmd.Flags().StringVarP(&target, "target", "t", "ir", "target whose rules decide: "+strings.Join(traceable(reg), ", "))
	cmd.Flags().StringVar(&src, "src", "", "source address (required)")
	cmd.Flags().StringVar(&dst, "dst", "", "destination address (required)")
	cmd.Flags().StringVar(&proto, "proto", "udp", "udp or tcp")
	cmd.Flags().IntVar(&sport, "sport", 50000, "source port")
	cmd.Flags().IntVar(&dport, "dport", 0, "destination port (required)")
	cmd.Flags().StringVar(&fromZone, "from-zone", "", "ingress zone (default: from the source address)")
	cmd.Flags().StringVar(&toZone, "to-zone", "", "egress zone (default: from the destination address)")
	cmd.Flags().StringVar(&dstHost, "dst-host", "", "FQDN the client resolved to reach --dst")
	cmd.Flags().StringArrayVar(&params, "param", nil, "set a target parameter, TARGET.NAME=VALUE (repeatable)")
	cmd.Flags().BoolVar(&reply, "reply", false, "decide the reply packet of the connection (--dst:--dport back to --src:--sport)")
	return cmd
}

func tracePacket(src, dst, proto string, sport, dport int, host string) (ir.Packet, error) {
	var pkt ir.Packet
	s, err := netip.ParseAddr(src)
	if err != nil {
		return pkt, fmt.Errorf("--src %q: not an IP address", src)
	}
	d, err := netip.ParseAddr(dst)
	if err != nil {
		return pkt, fmt.Errorf("--dst %q: not an IP address", dst)
	}
	if s.Is4() != d.Is4() {
		return pkt, fmt.Errorf("--src and --dst are of different address families")
	}
	if proto != "udp" && proto != "tcp" {
		return pkt, fmt.Errorf("--proto %q: use udp or tcp", proto)
	}
	if dport < 1 || dport > 65535 || sport < 1 || sport > 65535 {
		return pkt, fmt.Errorf("--dport and --sport must be ports 1-65535 (--dport is required)")
	}
	return ir.Packet{Src: s.Unmap(), Dst: d.Unmap(), Proto: ir.Proto(proto), SrcPort: uint16(sport), DstPort: uint16(dport), DstHost: host}, nil
}

func traceable(reg *backends.Registry) []string {
	out := []string{"ir"}
	for _, n := range reg.Names() {
		if b, _ := reg.Get(n); b != nil {
			if _, ok := b.(backends.Traceable); ok && n != "ir" {
				out = append(out, n)
			}
		}
	}
	return out
}

func zoneNames(p *ir.Program) string {
	var names []string
	for _, z := range p.Zones {
		names = append(names, z.Name)
	}
	return strings.Join(names, ", ")
}

func ruleName(r *ir.Rule) string {
	if r == nil {
		return ""
	}
	return r.Name
}

func ruleSource(r *ir.Rule) string {
	if r == nil {
		return ""
	}
	return r.Origin.Source.String()
}

func describeVerdict(action ir.Action, rule, source string) string {
	verdict := "ALLOW"
	if action == ir.Deny {
		verdict = "DENY"
	}
	if rule == "" {
		return verdict + " by the policy's default action"
	}
	return fmt.Sprintf("%s by rule %s (%s)", verdict, rule, source)
}

// replyMechanism names what lets a reply of an allowed connection through,
// per traceable target: all of them track connections.
var replyMechanism = map[string]string{
	"ir":       "the policy allows connections, and their replies with them",
	"nftables": "ct state established,related accept",
	"panos":    "the session of the connection",
	"fortios":  "the session of the connection",
	"asa":      "the connection entry",
}

// replyPacket is the reply direction of a connection's first packet.
func replyPacket(p ir.Packet) ir.Packet {
	return ir.Packet{FromZone: p.ToZone, ToZone: p.FromZone, Src: p.Dst, Dst: p.Src, Proto: p.Proto, SrcPort: p.DstPort, DstPort: p.SrcPort}
}

// decideReply decides the reply of a connection whose first packet got
// orig: it passes when the connection was allowed; otherwise there is no
// connection and the reply is a new connection of its own (asNew).
func decideReply(target string, orig backends.Decision, asNew func() backends.Decision) (ir.Action, string) {
	if orig.Action == ir.Allow {
		by := "the policy's default action"
		if orig.Rule != "" {
			by = fmt.Sprintf("rule %s (%s)", orig.Rule, orig.Source)
		}
		return ir.Allow, fmt.Sprintf("ALLOW as a reply (%s); the connection was allowed by %s", replyMechanism[target], by)
	}
	d := asNew()
	word, _, _ := strings.Cut(describeVerdict(d.Action, "", ""), " ")
	return d.Action, fmt.Sprintf("%s: no allowed connection to reply to (the original direction: %s); as a new connection: %s",
		word, describeVerdict(orig.Action, orig.Rule, orig.Source), describeVerdict(d.Action, d.Rule, d.Source))
}

// describePacket renders a packet with its endpoints as address:port
// ([address]:port for IPv6) and its zones.
func describePacket(p ir.Packet) string {
	return fmt.Sprintf("%s %s -> %s, zone %s -> %s", p.Proto, netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort), p.FromZone, p.ToZone)
}
