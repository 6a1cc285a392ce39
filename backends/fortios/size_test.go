package fortios

import (
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/panos"
)

// BenchmarkOutputSize reports the FortiOS output's bytes per prefix for a
// 50,000-prefix policy beside the PAN-OS `set` output's for the same
// program, in the same run (go test -run '^$' -bench OutputSize -benchtime 1x).
func BenchmarkOutputSize(b *testing.B) {
	p := largeProgram(b, 50_000)
	prefixes := 0
	for _, s := range p.AddressSets {
		prefixes += len(s.V4) + len(s.V6)
	}
	size := func(be backends.Backend) int {
		files, err := be.Emit(p, backends.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, f := range files {
			n += len(f.Data)
		}
		return n
	}
	var forti, pan int
	for b.Loop() {
		forti = size(Backend{})
	}
	pan = size(panos.Backend{})
	b.ReportMetric(float64(forti)/float64(prefixes), "fortios-bytes/prefix")
	b.ReportMetric(float64(pan)/float64(prefixes), "panos-bytes/prefix")
	b.Logf("%d prefixes: FortiOS %d bytes, PAN-OS set %d bytes", prefixes, forti, pan)
}

// TestOutputSizeVsPANOS: for a large provider the FortiOS output takes no
// more bytes per prefix than the PAN-OS `set` output of the same program.
func TestOutputSizeVsPANOS(t *testing.T) {
	p := largeProgram(t, 10_000)
	size := func(be backends.Backend) int {
		files, err := be.Emit(p, backends.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range files {
			n += len(f.Data)
		}
		return n
	}
	forti, pan := size(Backend{}), size(panos.Backend{})
	t.Logf("FortiOS %d bytes, PAN-OS set %d bytes", forti, pan)
	if forti > pan {
		t.Errorf("FortiOS output (%d bytes) is larger than PAN-OS set (%d bytes)", forti, pan)
	}
}
