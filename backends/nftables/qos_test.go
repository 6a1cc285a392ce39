package nftables

import (
	"os"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
)

// The reader refuses QoS statements turnwall does not write, naming the
// line: each case edits the qos golden output once.
func TestReaderRejectsQoS(t *testing.T) {
	data, err := os.ReadFile("../../testdata/golden/nftables/case-qos/nftables.nft")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "nftables.nft", Data: data}}); err != nil {
		t.Fatalf("the golden output does not read: %v", err)
	}
	for _, c := range []struct{ old, new string }{
		{"ip dscp set ef accept", "ip dscp set 99 accept"},
		{"ip dscp set ef accept", "ip6 dscp set ef accept"},
		{"ct direction original", "ct direction sideways"},
		{"priority mangle; policy accept;", "priority raw; policy accept;"},
	} {
		if !strings.Contains(text, c.old) {
			t.Fatalf("golden output lacks %q", c.old)
		}
		bad := strings.Replace(text, c.old, c.new, 1)
		if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "nftables.nft", Data: []byte(bad)}}); err == nil {
			t.Errorf("%q -> %q: accepted", c.old, c.new)
		}
	}
}
