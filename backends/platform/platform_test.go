package platform

import (
	"encoding/json"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

func TestGolden(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			files := backendtest.Emit(t, Backend{}, c.Program, backends.Options{})
			backendtest.Golden(t, "platform", c.Name, files)
			for i, f := range files {
				var doc Payload
				if err := json.Unmarshal(f.Data, &doc); err != nil {
					t.Fatalf("%s is not JSON: %v", f.Name, err)
				}
				pl := c.Program.Platforms[i]
				if doc.Settings.ICECheckPriority != pl.ICECheckPriority || doc.Settings.TURNServerOverride != pl.TURNServerOverride ||
					doc.Settings.UseTURN != pl.UseTURN || doc.Settings.TCPFallbackEnabled != pl.TCPFallback {
					t.Errorf("%s does not carry the platform's settings: %+v", f.Name, doc.Settings)
				}
			}
		})
	}
}

// TestHostile: JSON strings escape everything; the payload round-trips.
func TestHostile(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		hostile, _ := backendtest.HostilePair(c.Program)
		files := backendtest.Emit(t, Backend{}, hostile, backends.Options{})
		for i, f := range files {
			if r, ok := backendtest.BidiFree(f.Data); !ok {
				t.Errorf("%s: %U in the output", f.Name, r)
			}
			var doc Payload
			if err := json.Unmarshal(f.Data, &doc); err != nil {
				t.Fatalf("%s: %v", f.Name, err)
			}
			if doc.Settings.TURNServerOverride != hostile.Platforms[i].TURNServerOverride {
				t.Errorf("override changed in transit: %q", doc.Settings.TURNServerOverride)
			}
		}
	}
}
