package probe

import (
	"math"
	"testing"
)

func TestEModel(t *testing.T) {
	for _, tc := range []struct {
		delay, loss, mosMin, mosMax float64
	}{
		{0, 0, 4.40, 4.42},  // R = 93.2
		{40, 0, 4.35, 4.40}, // LAN-like
		{150, 1, 3.9, 4.2},  // good WAN with a little loss
		{300, 0, 3.2, 3.8},  // long delay hurts
		{50, 10, 2.0, 2.6},  // 10% loss
		{50, 100, 1, 1.6},   // nothing arrives
		{1000, 50, 1, 1.01}, // clamps
	} {
		r, mos := EModel(tc.delay, tc.loss)
		if mos < tc.mosMin || mos > tc.mosMax || math.IsNaN(r) {
			t.Errorf("EModel(%v, %v) = R %.1f MOS %.2f, want %.2f..%.2f", tc.delay, tc.loss, r, mos, tc.mosMin, tc.mosMax)
		}
	}
}
