package call

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Opus: the codec softphones use; RTP clock 48 kHz.
const (
	opusPayloadType = 111
	opusClock       = 48000
)

// receiver counts one direction's packets by sequence number and keeps the
// RFC 3550 interarrival jitter.
type receiver struct {
	mu       sync.Mutex
	seen     map[int64]struct{} // extended sequence numbers
	started  bool
	maxExt   int64
	clock    float64
	lastTS   uint32
	lastSeen time.Time
	jitter   float64 // RTP clock units
}

// maxTracked bounds the memory one direction's sequence numbers take.
const maxTracked = 1 << 20

func newReceiver() *receiver { return &receiver{seen: map[int64]struct{}{}, clock: opusClock} }

// extend places a 16-bit sequence number next to the highest seen so far.
func (r *receiver) extend(seq uint16) int64 {
	if !r.started {
		return int64(seq)
	}
	delta := int64(int16(seq - uint16(r.maxExt)))
	return r.maxExt + delta
}

func (r *receiver) add(h *rtp.Header, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ext := r.extend(h.SequenceNumber)
	if _, dup := r.seen[ext]; dup {
		return
	}
	if len(r.seen) < maxTracked {
		r.seen[ext] = struct{}{}
	}
	if r.started {
		// D(i,j) = (Rj - Ri) - (Sj - Si), in RTP clock units.
		d := at.Sub(r.lastSeen).Seconds()*r.clock - float64(int32(h.Timestamp-r.lastTS))
		r.jitter += (math.Abs(d) - r.jitter) / 16
	}
	if !r.started || ext > r.maxExt {
		r.maxExt = ext
	}
	r.started = true
	r.lastTS, r.lastSeen = h.Timestamp, at
}

func (r *receiver) snapshot() (received int, jitterMs float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), r.jitter / r.clock * 1000
}

// direction combines a sender's count with the far side's receiver.
func direction(sent int, r *receiver) Direction {
	d := Direction{Sent: sent}
	d.Received, d.JitterMs = r.snapshot()
	if sent > 0 {
		d.LossPct = math.Max(0, float64(sent-d.Received)/float64(sent)*100)
	}
	return d
}

// send writes packets RTP packets of size bytes, one every interval, from a
// random sequence number and timestamp; it returns how many were written.
func send(ctx context.Context, track *webrtc.TrackLocalStaticRTP, packets, size int, interval time.Duration) int {
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rand.IntN(256))
	}
	step := uint32(float64(opusClock) * interval.Seconds())
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: opusPayloadType,
		SequenceNumber: uint16(rand.IntN(1 << 16)), Timestamp: rand.Uint32()}, Payload: payload}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	sent := 0
	for i := range packets {
		if i > 0 {
			select {
			case <-ctx.Done():
				return sent
			case <-ticker.C:
			}
		}
		if err := track.WriteRTP(pkt); err == nil {
			sent++
		}
		pkt.SequenceNumber++
		pkt.Timestamp += step
		pkt.Marker = false
	}
	return sent
}
