package irtarget

import (
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

// TestIRTarget runs the shared property and injection tests on the JSON round
// trip (the IR's golden files belong to the compiler's tests).
func TestIRTarget(t *testing.T) {
	opts := backends.Options{Format: "json"}
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			files := backendtest.Emit(t, Backend{}, c.Program, opts)
			cfg, err := Backend{}.Reader().Read(files)
			if err != nil {
				t.Fatal(err)
			}
			backendtest.CheckEquivalent(t, c.Program, cfg, backendtest.EquivOptions{CheckSource: true}, 4000)
			backendtest.CheckHostile(t, Backend{}, opts, backendtest.EquivOptions{}, c.Program)
		})
	}
}
