package nftables

import (
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
