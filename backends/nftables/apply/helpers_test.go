package apply

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends/backendtest"
	"github.com/turnwall/turnwall/backends/diff"
	"github.com/turnwall/turnwall/backends/nftables"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// childEnv makes the test binary run a child role instead of the tests.
const childEnv = "TURNWALL_APPLY_TEST_CHILD"

// needKernel: kernel tests need namespaces and Debian's nft.
func needKernel(t testing.TB) { nstest.NeedKernel(t, "nft") }

func newNS(t testing.TB, role string) *netns.NS { return nstest.NewNS(t, role) }

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
		b, _ := json.Marshal(nstest.StripHandles(obj))
		lines = append(lines, string(b))
	}
	return strings.Join(lines, "\n") + "\n"
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
