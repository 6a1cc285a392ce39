package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
)

// childEnv makes the test binary run a child role instead of the tests.
const childEnv = "TURNWALL_APPLY_TEST_CHILD"

// needKernel skips when namespaces are truly unavailable; in CI (CI=true) that
// is a failure, never a skip.
func needKernel(t testing.TB) {
	t.Helper()
	err := netns.Available()
	if err == nil {
		if _, err = exec.LookPath("nft"); err != nil {
			err = fmt.Errorf("nft (Debian package nftables) is missing: %v", err)
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("kernel test cannot run in CI: %v", err)
		}
		t.Skipf("kernel test needs root, iproute2 and nftables: %v", err)
	}
}

func newNS(t testing.TB, role string) *netns.NS {
	t.Helper()
	ns, err := netns.New(role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	})
	return ns
}

func nft(t testing.TB, ns *netns.NS, args ...string) []byte {
	t.Helper()
	out, err := ns.Exec(context.Background(), "nft", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func nftFile(t testing.TB, ns *netns.NS, text []byte) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ruleset.nft")
	if err := os.WriteFile(file, text, 0o644); err != nil {
		t.Fatal(err)
	}
	nft(t, ns, "-f", file)
}

// listing is `nft -j list table inet NAME` without handles (which change on
// every load), one JSON object per line, for comparison and diffs.
func listing(t testing.TB, ns *netns.NS, table string) string {
	t.Helper()
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(nft(t, ns, "-j", "list", "table", "inet", table), &doc); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, obj := range doc.Nftables {
		if _, meta := obj["metainfo"]; meta {
			continue
		}
		b, _ := json.Marshal(stripHandles(obj))
		lines = append(lines, string(b))
	}
	return strings.Join(lines, "\n") + "\n"
}

func stripHandles(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, val := range x {
			if k != "handle" {
				m[k] = stripHandles(val)
			}
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = stripHandles(val)
		}
		return out
	}
	return v
}

func sameListing(t testing.TB, what, want, got string) {
	t.Helper()
	if want != got {
		t.Fatalf("%s differ:\n%s", what, diff.Unified("nft -f", "netlink", want, got, 2))
	}
}

// cases builds every shipped policy and golden case into the model.
func cases(t testing.TB) map[string]*nftables.Ruleset {
	out := map[string]*nftables.Ruleset{}
	for _, c := range backendtest.Cases(t) {
		rs, err := nftables.Build(c.Program, "turnwall")
		if err != nil {
			t.Fatal(err)
		}
		out[c.Name] = rs
	}
	return out
}

func caseRuleset(t testing.TB, name string) *nftables.Ruleset {
	t.Helper()
	rs, ok := cases(t)[name]
	if !ok {
		t.Fatalf("case %s not found", name)
	}
	return rs
}

func mustApply(t testing.TB, ns *netns.NS, rs *nftables.Ruleset) *Result {
	t.Helper()
	res, err := Apply(Target{Table: rs.Table, NetNS: ns.Name}, rs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var _ = reflect.DeepEqual
