package panos

import (
	"os"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
)

// The reader refuses QoS statements turnwall does not write, naming the
// line: each case edits the qos golden output once.
func TestReaderRejectsQoS(t *testing.T) {
	data, err := os.ReadFile("../../testdata/golden/panos/case-qos/panos.set")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "panos.set", Data: data}}); err != nil {
		t.Fatalf("the golden output does not read: %v", err)
	}
	for _, c := range []struct{ old, new string }{
		{"qos marking ip-dscp ef", "qos marking ip-dscp xx"},
		{"action class 1 ", "action class 9 "},
		{"class class1 priority real-time", "class class1 priority urgent"},
		{"set network qos profile turnwall-qos class class2 priority high\n", ""},
	} {
		if !strings.Contains(text, c.old) {
			t.Fatalf("golden output lacks %q", c.old)
		}
		bad := strings.Replace(text, c.old, c.new, 1)
		if _, err := (Backend{}).Reader().Read([]backends.File{{Name: "panos.set", Data: []byte(bad)}}); err == nil {
			t.Errorf("%q -> %q: accepted", c.old, c.new)
		}
	}
}
