package fortios

import (
	"os"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
)

// The reader refuses QoS statements turnwall does not write, naming the
// line: each case edits the qos golden output once.
func TestReaderRejectsQoS(t *testing.T) {
	data, err := os.ReadFile("../../testdata/golden/fortios/case-qos/fortios.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "fortios.conf", Data: data}}); err != nil {
		t.Fatalf("the golden output does not read: %v", err)
	}
	for _, c := range []struct{ old, new string }{
		{"set diffservcode-forward 101110", "set diffservcode-forward 46"},
		{"set traffic-shaper \"tw-qos-audio\"", "set traffic-shaper \"tw-qos-nope\""},
		{"        set priority high\n", "        set priority urgent\n"},
		{"turnwall qos qos.hcl:52 audio:", "qos.hcl:52 audio:"},
	} {
		if !strings.Contains(text, c.old) {
			t.Fatalf("golden output lacks %q", c.old)
		}
		bad := strings.Replace(text, c.old, c.new, 1)
		if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "fortios.conf", Data: []byte(bad)}}); err == nil {
			t.Errorf("%q -> %q: accepted", c.old, c.new)
		}
	}
}
