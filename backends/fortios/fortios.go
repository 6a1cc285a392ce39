// Package fortios emits FortiGate FortiOS 7.x CLI configuration from the IR:
// address and address6 objects, one addrgrp/addrgrp6 per IR address set and
// family, per-protocol custom services grouped into one service group per IR
// service set, and firewall policies with fixed ids from a reserved range, in IR
// order, followed by an explicit default policy and `move` lines that pin the
// order.
//
// The output is meant to be applied again and again: objects are named from the
// IR (stable between runs), `set member` replaces a group's list, every policy
// sets or unsets each field turnwall owns, and policy ids are the first ids of
// the reserved range in IR order, with the default policy always on the last id
// of the range. The first turnwall policy lands where FortiOS puts new policies
// (the bottom of the list) the first time; an administrator may move it once,
// and later runs keep every other turnwall policy right behind it.
//
// The Reader re-reads the text on its own (reader.go shares no code with the
// emitter), so the property tests check what a FortiGate would be given.
package fortios

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/compiler/lazyre"
)

// fileName is the single output file.
const fileName = "fortios.conf"

// Backend is the fortios target.
type Backend struct{}

var (
	paramPolicyIDs = backends.Param{
		Name:    "policy-ids",
		Default: "10000-10999",
		Help: "LOW-HIGH: policy ids reserved for turnwall. Rules take LOW, LOW+1, ... in policy order; " +
			"the default policy always takes HIGH. Emitting fails when the policy needs more ids than the range holds.",
	}
	paramWorkspace = backends.Param{
		Name:    "workspace",
		Default: "false",
		Help: "true wraps the output in execute config-transaction start ... commit (FortiOS workspace mode), " +
			"so that the change applies all at once or not at all.",
	}
	paramSSLProfile = backends.Param{
		Name:    "ssl-ssh-profile",
		Default: "certificate-inspection",
		Help: "SSL/SSH inspection profile set on TURN/TLS and signalling (TCP 443) policies so that " +
			"deep inspection never intercepts TURN over TLS.",
	}
)

// Name implements backends.Backend.
func (Backend) Name() string { return "fortios" }

// Description implements backends.Backend.
func (Backend) Description() string {
	return "FortiGate FortiOS 7.x CLI: addresses, services and firewall policies with fixed ids"
}

// Formats implements backends.Backend.
func (Backend) Formats() []string { return []string{"cli"} }

// Params implements backends.Backend.
func (Backend) Params() []backends.Param {
	return []backends.Param{paramPolicyIDs, paramWorkspace, paramSSLProfile,
		paramInterfaces, paramPosition, paramDefaultRule, paramModel, paramLimits,
		paramFeedAbove, paramFeedURL, paramFeedRefresh}
}

// Emit implements backends.Backend.
func (Backend) Emit(p *ir.Program, opts backends.Options) ([]backends.File, error) {
	if opts.Format != "" && opts.Format != "cli" {
		return nil, fmt.Errorf("fortios target has no format %q (cli)", opts.Format)
	}
	s, err := parseSettings(opts)
	if err != nil {
		return nil, err
	}
	if err := backends.FirstConstraint(Backend{}.Check(p, opts)); err != nil {
		return nil, err
	}
	plan, err := buildPlan(p, s)
	if err != nil {
		return nil, err
	}
	// Sized up front by make, not Grow (which clears the whole buffer at
	// once): measured faster.
	buf := bytes.NewBuffer(make([]byte, 0, plan.sizeHint()))
	if err := plan.write(buf); err != nil {
		return nil, err
	}
	return append([]backends.File{{Name: fileName, Data: buf.Bytes()}}, feedFiles(plan.feeds)...), nil
}

// settings are the parsed target parameters.
type settings struct {
	firstID, lastID uint64
	workspace       bool
	sslProfile      string
	place           placement
	feeds           feedSettings
	limits          *limits
}

// FortiOS policy ids: "policyid ... range[0-4294967294]", 0 meaning "next
// free id" (https://docs.fortinet.com/document/fortigate/6.0.0/cli-reference/11121/firewall-policy46-policy64).
// turnwall never uses 0: `edit 0` is not idempotent.
const maxPolicyID = 4294967294

// Profile names: letters, digits and . _ - (the built-in ones are
// certificate-inspection, deep-inspection, no-inspection); the policy field
// holds at most 47 characters.
var profileName = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9._-]{0,46}$`)

func parseSettings(opts backends.Options) (settings, error) {
	var s settings
	ids := strings.TrimSpace(opts.Get(paramPolicyIDs))
	lo, hi, ok := strings.Cut(ids, "-")
	first, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 32)
	last, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 32)
	if !ok || err1 != nil || err2 != nil || first < 1 || last > maxPolicyID || first > last {
		return s, fmt.Errorf("policy-ids %q: expected LOW-HIGH with 1 <= LOW <= HIGH <= %d, for example 10000-10999", ids, maxPolicyID)
	}
	s.firstID, s.lastID = first, last
	switch w := opts.Get(paramWorkspace); w {
	case "true":
		s.workspace = true
	case "false", "":
	default:
		return s, fmt.Errorf("workspace %q: expected true or false", w)
	}
	s.sslProfile = opts.Get(paramSSLProfile)
	if !profileName.MatchString(s.sslProfile) {
		return s, fmt.Errorf("ssl-ssh-profile %q is not a profile name (letters, digits, '.', '_', '-', at most 47 characters)", s.sslProfile)
	}
	if err := parsePlacement(opts, &s); err != nil {
		return s, err
	}
	if err := parseFeeds(opts, &s); err != nil {
		return s, err
	}
	var err error
	s.limits, err = parseLimits(opts)
	return s, err
}

// Check implements backends.Checker: zones need FortiOS interfaces of their
// own, and every rule and the default policy need an id in the policy-ids
// range. A bad parameter is left to Emit, which
// reports it as a usage error.
func (Backend) Check(p *ir.Program, opts backends.Options) []backends.Constraint {
	s, err := parseSettings(opts)
	if err != nil {
		return append([]backends.Constraint{{At: p.Policy.Source, Summary: "bad parameter", Detail: err.Error() + "."}},
			zoneConstraints(p, nil)...)
	}
	out := append(zoneConstraints(p, s.place.ifmap), placementConstraints(p, s)...)
	size := s.lastID - s.firstID + 1
	if uint64(len(p.Rules))+1 <= size {
		if s.limits != nil && len(out) == 0 {
			if pl, err := buildPlan(p, s); err == nil {
				out = append(out, limitConstraints(p, pl, s.limits)...)
			}
		}
		return out
	}
	// The first rule without an id; the last id stays for the default policy.
	r := p.Rules[size-1]
	return append(out, backends.Constraint{At: r.Origin.Source, Summary: "policy ids exhausted",
		Detail: fmt.Sprintf("The policy needs %d policy ids (%d rules and the default policy's) but FortiOS policy-ids %d-%d holds %d; rule %s is the first without one. Widen --param fortios.policy-ids, or use fewer zones and rules.",
			len(p.Rules)+1, len(p.Rules), s.firstID, s.lastID, size, r.Name)})
}
