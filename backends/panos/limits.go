package panos

import (
	"fmt"
	"sort"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
)

var paramModel = backends.Param{Name: "model", Default: "",
	Help: "firewall model whose limits the output must fit (" + strings.Join(modelNames(), ", ") + "; empty: no check)"}

// modelLimits are the per-model capacities turnwall checks. A zero field is
// not checked.
type modelLimits struct {
	name           string
	addressObjects int // address objects (ip-netmask and fqdn) per firewall
	groupMembers   int // members of one static address group
	rules          int // security rules per firewall
	fqdnObjects    int // fqdn address objects
	edlIPs         int // IP addresses over all External Dynamic Lists
	edlSources     int // External Dynamic List sources (URLs)
	source         string
}

// Per-model limits. The External Dynamic List figures are documented: "On
// each firewall platform, you can configure a maximum of 30 unique sources
// for external dynamic lists ... IP address—The PA-5000 Series and the
// PA-7000 Series firewalls support a maximum of 150,000 total IP addresses;
// all other platforms support a maximum of 50,000 total IP addresses"
// (PAN-OS 7.1 web interface help, Objects > External Dynamic Lists,
// https://docs.paloaltonetworks.com/pan-os/7-1/pan-os-web-interface-help/objects/objects-external-dynamic-lists.html;
// later releases raise the IP figure on some models, so 50,000 is the safe
// floor). The object, group and rule figures are APPROXIMATE: they are the
// per-model capacities Palo Alto Networks publishes in its product
// comparison tool and datasheets (https://www.paloaltonetworks.com/products/product-comparison),
// which turnwall could not re-check against a stored vendor page; confirm
// on the box with `show system state | match cfg.general` before relying on
// a figure near the limit.
var models = []modelLimits{
	{name: "pa-220", addressObjects: 2500, groupMembers: 2500, rules: 500, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
	{name: "pa-440", addressObjects: 4000, groupMembers: 2500, rules: 1500, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
	{name: "pa-850", addressObjects: 10000, groupMembers: 2500, rules: 2000, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
	{name: "pa-3220", addressObjects: 10000, groupMembers: 2500, rules: 2500, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
	{name: "pa-5220", addressObjects: 40000, groupMembers: 2500, rules: 20000, fqdnObjects: 10000, edlIPs: 150000, edlSources: 30, source: "approximate (product comparison); EDL figures (PA-5000 series) from PAN-OS 7.1 web help"},
	{name: "vm-50", addressObjects: 2500, groupMembers: 2500, rules: 500, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
	{name: "vm-100", addressObjects: 10000, groupMembers: 2500, rules: 1500, fqdnObjects: 2000, edlIPs: 50000, edlSources: 30, source: "approximate (product comparison); EDL figures from PAN-OS 7.1 web help"},
}

func modelNames() []string {
	var out []string
	for _, m := range models {
		out = append(out, m.name)
	}
	sort.Strings(out)
	return out
}

func parseModel(opts backends.Options) (*modelLimits, error) {
	name := strings.ToLower(opts.Get(paramModel))
	if name == "" {
		return nil, nil
	}
	for i := range models {
		if models[i].name == name {
			return &models[i], nil
		}
	}
	return nil, fmt.Errorf("--param panos.model=%q: unknown model; turnwall knows %s (or leave it empty for no limit check)", opts.Get(paramModel), strings.Join(modelNames(), ", "))
}

// checkLimits compares what the program needs on the box with the model's
// limits; every excess is a constraint naming the limit and both numbers.
// Only turnwall's part is counted: the box's own objects and rules share
// the same limits.
func checkLimits(p *ir.Program, opts backends.Options) []backends.Constraint {
	where, err := parsePlace(opts)
	if err != nil || where.model == nil {
		return nil
	}
	pl, err := buildPlan(p, where)
	if err != nil {
		return nil // Emit reports it
	}
	m := where.model
	var out []backends.Constraint
	hint := "Emit the set as an External Dynamic List instead (--param panos.feed-above=N or panos.feed-sets=SET with panos.feed-url=https://...), or choose a larger model."
	over := func(at ir.Source, what string, need, limit int, fix string) {
		if limit > 0 && need > limit {
			out = append(out, backends.Constraint{At: at, Summary: fmt.Sprintf("%s over the %s limit", what, m.name),
				Detail: fmt.Sprintf("turnwall's part needs %d %s; a %s holds %d (%s). %s", need, what, m.name, limit, m.source, fix)})
		}
	}
	fqdns := 0
	for _, a := range pl.addresses {
		if a.kind == "fqdn" {
			fqdns++
		}
	}
	over(p.Policy.Source, "address objects", len(pl.addresses), m.addressObjects, hint)
	over(p.Policy.Source, "fqdn address objects", fqdns, m.fqdnObjects, "Use fewer domain names.")
	over(p.Policy.Source, "security rules", len(pl.rules), m.rules, "Merge rules in the policy, or choose a larger model.")
	for _, g := range pl.groups {
		if s := p.AddressSet(g.set); s != nil {
			over(s.Origin.Source, "members in the address group of set "+s.Name, len(g.members), m.groupMembers, hint)
		}
	}
	ips := 0
	for _, f := range pl.feeds {
		ips += strings.Count(string(f.data), "\n")
	}
	over(p.Policy.Source, "IP entries in External Dynamic Lists", ips, m.edlIPs, "Split the provider's ranges or choose a model with a larger list capacity.")
	over(p.Policy.Source, "External Dynamic List sources", len(pl.feeds), m.edlSources, "Feed fewer sets.")
	return out
}
