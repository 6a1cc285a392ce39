package nftables

import (
	"slices"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

func TestTarget(t *testing.T) {
	backendtest.CheckTarget(t, Backend{}, backends.Options{}, backendtest.EquivOptions{})
}

func TestReaderRejects(t *testing.T) {
	for _, bad := range []string{
		"table inet t {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tip saddr @missing accept\n\t}\n}\n",
		"flush ruleset\n",
		"table inet t {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tudp dport 70000 accept\n\t}\n}\n",
		"table inet t {\n\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname \"a\" reject\n\t}\n}\n",
	} {
		if _, err := (reader{}).Read([]backends.File{{Name: "x", Data: []byte(bad)}}); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("accepted or no line in error (%v):\n%s", err, bad)
		}
	}
}

func TestTableParam(t *testing.T) {
	p := backendtest.Cases(t)[0].Program
	files, err := Backend{}.Emit(p, backends.Options{Params: map[string]string{"table": "webrtc"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files[0].Data), "\ndelete table inet webrtc\n") {
		t.Fatal("table parameter not used")
	}
	for _, bad := range []string{"1x", "a b", "tcp", "x;y", ""} {
		if _, err := (Backend{}).Emit(p, backends.Options{Params: map[string]string{"table": bad}}); err == nil && bad != "" {
			t.Errorf("table %q accepted", bad)
		}
	}
}

// Every rendered set names the IR set it renders, and holds exactly that
// set's prefixes (or FQDNs) of its family.
func TestSetsRecordIRSet(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		rs, err := Build(c.Program, "turnwall")
		if err != nil {
			t.Fatal(err)
		}
		fqdnSets := 0
		for _, set := range rs.Sets {
			src := c.Program.AddressSet(set.IRSet)
			if src == nil {
				t.Fatalf("%s: set %s names IR set %q, which does not exist", c.Name, set.Name, set.IRSet)
			}
			want := src.V4
			if set.V6 {
				want = src.V6
			}
			if len(set.FQDNs) > 0 {
				fqdnSets++
				if !slices.Equal(set.FQDNs, src.FQDNs) || len(set.Prefixes) != 0 {
					t.Errorf("%s: set %s: FQDNs %v, IR set %q has %v", c.Name, set.Name, set.FQDNs, set.IRSet, src.FQDNs)
				}
			} else if !slices.Equal(set.Prefixes, want) {
				t.Errorf("%s: set %s: %v, IR set %q has %v", c.Name, set.Name, set.Prefixes, set.IRSet, want)
			}
		}
		for _, s := range c.Program.AddressSets {
			if len(s.FQDNs) > 0 {
				fqdnSets -= 2
			}
		}
		if fqdnSets != 0 {
			t.Errorf("%s: FQDN sets do not match the IR's sets with names (%d left)", c.Name, fqdnSets)
		}
	}
}

// The default rule's log is rate-limited, never its verdict: packets over
// the rate take the same verdict unlogged in the rule before it.
func TestDefaultLogRateLimited(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		for _, logDefault := range []bool{false, true} {
			p := *c.Program
			p.Policy.LogDefault = logDefault
			rs, err := Build(&p, "turnwall")
			if err != nil {
				t.Fatal(err)
			}
			pc := rs.Chains[1] // the base chain, then the policy's rules (then QoS marking)
			n := len(pc.Rules)
			last := pc.Rules[n-1]
			if !logDefault {
				if last.Log != "" || last.LimitOver != "" {
					t.Errorf("%s: default rule without log_default: %s", c.Name, last.Text())
				}
				continue
			}
			over := pc.Rules[n-2]
			if last.Log == "" || last.LimitOver != "" || over.LimitOver != DefaultLogRate || over.Log != "" || over.Verdict != last.Verdict || over.Comment != last.Comment {
				t.Errorf("%s: want a limited unlogged rule then the logged default, got\n%s\n%s", c.Name, over.Text(), last.Text())
			}
			if !strings.Contains(over.Text(), "limit rate over 10/second burst 20 packets counter "+last.Verdict) {
				t.Errorf("%s: %s", c.Name, over.Text())
			}
		}
	}
}
