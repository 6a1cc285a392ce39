package fortios

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var (
	paramModel = backends.Param{
		Name:    "model",
		Default: "",
		Help: "FortiGate model whose table sizes bound the output (" + strings.Join(modelNames(), ", ") +
			"); empty checks no size. Exceeding one is an error naming the limit and the numbers.",
	}
	paramLimits = backends.Param{
		Name:    "limits",
		Default: "",
		Help: "addresses=N,members=N,policies=N,feed-entries=N,feed-total=N: table sizes that override the model's " +
			"(read them on the box with `print tablesize`).",
	}
)

// limits are the table sizes turnwall's part must fit in. turnwall counts
// only what it adds: the box's own entries share the same tables, so leave
// room for them (or give exact figures with limits=).
type limits struct {
	addresses   int // firewall.address + address6 entries (subnet and FQDN objects), per VDOM
	members     int // members of one address group
	policies    int // firewall.policy entries, per VDOM
	feedEntries int // lines of one external threat feed (IP address list)
	feedTotal   int // IP address entries over all threat feeds of the box
	source      string
}

// Fortinet documents each model's table sizes in the FortiOS Maximum
// Values Table (https://docs.fortinet.com/max-value-table; the same table
// for FortiProxy, https://docs.fortinet.com/document/fortiproxy/7.2.0/maximum-values,
// explains per-instance, per-VDOM and global limits) and on the box with
// `print tablesize`. The figures below are approximate, from that table
// for FortiOS 7.2/7.4; they differ between releases, so a change window
// should confirm them with `print tablesize` (and give them with limits=).
// The threat feed size: "The file size limit is 10 MB or 128 × 1024
// (131072) lines, whichever is reached first" (FortiOS 7.x administration
// guide, External blocklist (threat feed), approximate).
const maxValuesURL = "https://docs.fortinet.com/max-value-table (approximate; confirm with print tablesize)"

// feedTotalIPs: from FortiOS 7.4.4 the entry limit of external resources is
// global, counted over all feeds (and VDOMs), and for IP address entries it
// is 300,000 on every model range, entry-level to data center ("External
// resource entry limit enhancements 7.4.4", FortiOS 7.4 New Features,
// feedTotalURL). Older releases limit each feed alone (feedEntries), so
// turnwall checks both.
const (
	feedTotalIPs = 300_000
	feedTotalURL = "https://docs.fortinet.com/document/fortigate/7.4.0/new-features/677896/external-resource-entry-limit-enhancements-7-4-4"
)

var models = map[string]limits{
	"FG-40F":  {addresses: 5000, members: 600, policies: 5000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-60F":  {addresses: 5000, members: 600, policies: 5000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-100F": {addresses: 10000, members: 1500, policies: 10000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-200F": {addresses: 10000, members: 1500, policies: 10000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-400F": {addresses: 20000, members: 2500, policies: 20000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-600F": {addresses: 20000, members: 2500, policies: 20000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
	"FG-1000F": {addresses: 40000, members: 2500, policies: 100000, feedEntries: 131072, feedTotal: feedTotalIPs,
		source: maxValuesURL},
	"FG-VM04": {addresses: 20000, members: 2500, policies: 20000, feedEntries: 131072, feedTotal: feedTotalIPs, source: maxValuesURL},
}

func modelNames() []string {
	out := make([]string, 0, len(models))
	for m := range models {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// parseLimits reads model= and limits=; nil when neither is given.
func parseLimits(opts backends.Options) (*limits, error) {
	m, l := strings.TrimSpace(opts.Get(paramModel)), strings.TrimSpace(opts.Get(paramLimits))
	if m == "" && l == "" {
		return nil, nil
	}
	out := limits{source: "--param fortios.limits"}
	if m != "" {
		var ok bool
		for name, v := range models {
			if strings.EqualFold(name, m) {
				out, ok = v, true
			}
		}
		if !ok {
			return nil, fmt.Errorf("model %q: unknown FortiGate model; known models are %s (or give limits=addresses=N,members=N,policies=N,feed-entries=N,feed-total=N)", m, strings.Join(modelNames(), ", "))
		}
	}
	if l != "" {
		for _, item := range strings.Split(l, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if !ok || err != nil || n < 1 {
				return nil, fmt.Errorf("limits %q: expected NAME=N with N >= 1 (addresses, members, policies, feed-entries, feed-total)", l)
			}
			switch strings.TrimSpace(k) {
			case "addresses":
				out.addresses = n
			case "members":
				out.members = n
			case "policies":
				out.policies = n
			case "feed-entries":
				out.feedEntries = n
			case "feed-total":
				out.feedTotal = n
			default:
				return nil, fmt.Errorf("limits: unknown limit %q (addresses, members, policies, feed-entries, feed-total)", k)
			}
		}
		out.source = "--param fortios.limits"
	}
	return &out, nil
}

// limitConstraints checks the plan against the model's table sizes.
func limitConstraints(p *ir.Program, pl *plan, lim *limits) []backends.Constraint {
	if lim == nil {
		return nil
	}
	var out []backends.Constraint
	if n := len(pl.addr4) + len(pl.addr6); lim.addresses > 0 && n > lim.addresses {
		out = append(out, backends.Constraint{At: p.Policy.Source, Summary: "too many address objects",
			Detail: fmt.Sprintf("The policy needs %d address objects but the model holds %d (firewall.address, %s). Emit the largest providers as threat feeds (--param fortios.feed-above=N and fortios.feed-url=https://...), or choose a larger model.", n, lim.addresses, lim.source)})
	}
	if n := len(pl.policies); lim.policies > 0 && n > lim.policies {
		out = append(out, backends.Constraint{At: p.Policy.Source, Summary: "too many policies",
			Detail: fmt.Sprintf("The policy needs %d firewall policies but the model holds %d (firewall.policy, %s).", n, lim.policies, lim.source)})
	}
	sets := map[string]*ir.AddressSet{}
	for i := range p.AddressSets {
		sets[p.AddressSets[i].Name] = &p.AddressSets[i]
	}
	for _, gs := range [][]group{pl.groups4, pl.groups6} {
		for _, g := range gs {
			if lim.members > 0 && len(g.members) > lim.members {
				at := p.Policy.Source
				if s := sets[g.set]; s != nil {
					at = s.Origin.Source
				}
				out = append(out, backends.Constraint{At: at, Summary: "address group too large",
					Detail: fmt.Sprintf("Address group %s needs %d members but the model holds %d per group (firewall.addrgrp:member, %s). Emit it as a threat feed (--param fortios.feed-above=N and fortios.feed-url=https://...).", g.name, len(g.members), lim.members, lim.source)})
			}
		}
	}
	total := 0
	for _, f := range pl.feeds {
		total += len(f.prefixes)
	}
	if lim.feedTotal > 0 && total > lim.feedTotal {
		src := lim.source
		if src == maxValuesURL {
			src = "FortiOS 7.4.4 and later, " + feedTotalURL
		}
		out = append(out, backends.Constraint{At: p.Policy.Source, Summary: "threat feeds too large in total",
			Detail: fmt.Sprintf("The threat feeds hold %d aggregated prefixes together but the box holds %d IP address entries over all external resources (%s). Feed fewer sets (a higher fortios.feed-above), or narrow the providers' ranges.", total, lim.feedTotal, src)})
	}
	for _, f := range pl.feeds {
		if lim.feedEntries > 0 && len(f.prefixes) > lim.feedEntries {
			at := p.Policy.Source
			if s := sets[f.set]; s != nil {
				at = s.Origin.Source
			}
			out = append(out, backends.Constraint{At: at, Summary: "threat feed too large",
				Detail: fmt.Sprintf("Threat feed %s holds %d aggregated prefixes but a feed holds %d lines (%s).", f.name, len(f.prefixes), lim.feedEntries, lim.source)})
		}
	}
	return out
}
