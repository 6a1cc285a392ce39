package asa

import (
	"os"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
)

// The reader refuses QoS statements turnwall does not write, naming the
// line: each case edits the qos golden output once.
func TestReaderRejectsQoS(t *testing.T) {
	data, err := os.ReadFile("../../testdata/golden/asa/case-qos/asa.cfg")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "asa.cfg", Data: data}}); err != nil {
		t.Fatalf("the golden output does not read: %v", err)
	}
	for _, c := range []struct{ old, new string }{
		{"priority-queue wan0\n", ""},
		{" match access-list TW-qos-audio-agents", " match access-list TW-nope"},
		{"  priority\n", "  police output 1000\n"},
	} {
		if !strings.Contains(text, c.old) {
			t.Fatalf("golden output lacks %q", c.old)
		}
		bad := strings.Replace(text, c.old, c.new, 1)
		if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "asa.cfg", Data: []byte(bad)}}); err == nil {
			t.Errorf("%q -> %q: accepted", c.old, c.new)
		}
	}
}
