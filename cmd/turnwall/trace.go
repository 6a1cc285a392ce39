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
			want := prog.Allows(pkt)
			fmt.Fprintf(a.stdout, "%-9s %s %s:%d -> %s:%d, zone %s -> %s\n", "packet", pkt.Proto, pkt.Src, pkt.SrcPort, pkt.Dst, pkt.DstPort, pkt.FromZone, pkt.ToZone)
			fmt.Fprintf(a.stdout, "%-9s %s\n", "ir", describeVerdict(want.Action, ruleName(want.Rule), ruleSource(want.Rule)))
			if target == "ir" {
				return nil
			}
			files, err := tb.Emit(prog, backends.Options{Params: byTarget[target]})
			if err != nil {
				return fmt.Errorf("target %s: %w", target, err)
			}
			cfg, err := tb.Reader().Read(files)
			if err != nil {
				return fmt.Errorf("reading back the %s rules: %w", target, err)
			}
			got := cfg.Decide(pkt)
			fmt.Fprintf(a.stdout, "%-9s %s\n", target, describeVerdict(got.Action, got.Rule, got.Source))
			if got.Action != want.Action {
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
