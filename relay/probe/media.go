package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// Media packets: kind, sequence number, the ping's send time and the pong's
// send time (Unix nanoseconds; both ends are this process, so one-way delays
// are exact), padded to the configured size.
const (
	headerLen = 21
	kindPing  = 1
	kindPong  = 2
	channel   = 0x4000
)

// Direction is one direction of a media exchange.
type Direction struct {
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	LossPct  float64 `json:"loss_pct"`
	JitterMs float64 `json:"jitter_ms"` // RFC 3550 interarrival jitter
	DelayMs  float64 `json:"delay_ms"`  // mean one-way delay
}

// Percentiles summarise samples in milliseconds.
type Percentiles struct {
	N    int     `json:"n"`
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// MediaStats is the result of media through the relay: Up is agent to peer,
// Down is peer to agent.
type MediaStats struct {
	Up   Direction   `json:"up"`
	Down Direction   `json:"down"`
	RTT  Percentiles `json:"rtt_ms"`
}

// dirAcc accumulates one direction; one goroutine writes it.
type dirAcc struct {
	received    atomic.Int64
	seen        map[uint32]bool
	jitter      float64 // ns
	prevTransit int64
	delaySum    float64 // ns
}

func (d *dirAcc) add(seq uint32, transit int64) bool {
	if d.seen == nil {
		d.seen = map[uint32]bool{}
	}
	if d.seen[seq] {
		return false
	}
	d.seen[seq] = true
	if d.received.Load() > 0 {
		diff := math.Abs(float64(transit - d.prevTransit))
		d.jitter += (diff - d.jitter) / 16
	}
	d.prevTransit = transit
	d.delaySum += float64(transit)
	d.received.Add(1)
	return true
}

func (d *dirAcc) direction(sent int) Direction {
	r := int(d.received.Load())
	out := Direction{Sent: sent, Received: r, JitterMs: d.jitter / 1e6}
	if sent > 0 {
		out.LossPct = 100 * float64(sent-r) / float64(sent)
	}
	if r > 0 {
		out.DelayMs = d.delaySum / float64(r) / 1e6
	}
	return out
}

// streamResult is one stream's raw result.
type streamResult struct {
	sent, pongsSent int
	up, down        dirAcc
	rtts            []float64 // ms
}

func (s *streamResult) stats() MediaStats {
	return MediaStats{Up: s.up.direction(s.sent), Down: s.down.direction(s.pongsSent), RTT: percentiles(s.rtts)}
}

func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(q float64) float64 { return s[int(math.Ceil(q*float64(len(s))))-1] }
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Percentiles{N: len(s), Min: s[0], Mean: sum / float64(len(s)), P50: at(0.5), P95: at(0.95), P99: at(0.99), Max: s[len(s)-1]}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// runStream sends packets pings from a to b's relayed address at rate per
// second; b answers each with a pong. a and b have bound channel to each
// other. It returns after the last pong or a grace period, at most
// packets/rate + 1 s (or when ctx ends).
func runStream(ctx context.Context, a, b *turnclient.Client, packets, rate, size int) *streamResult {
	res := &streamResult{}
	var pongs atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the peer: count pings, answer with pongs
		defer wg.Done()
		buf := make([]byte, size)
		for {
			select {
			case <-done:
				return
			default:
			}
			d, err := b.ReadData(time.Now().Add(50 * time.Millisecond))
			if err != nil {
				if isTimeout(err) {
					continue
				}
				return
			}
			p := d.Payload
			if len(p) < headerLen || p[0] != kindPing || len(p) > len(buf) {
				continue
			}
			now := time.Now().UnixNano()
			seq := binary.BigEndian.Uint32(p[1:5])
			if !res.up.add(seq, now-int64(binary.BigEndian.Uint64(p[5:13]))) {
				continue
			}
			n := copy(buf, p)
			buf[0] = kindPong
			binary.BigEndian.PutUint64(buf[13:21], uint64(time.Now().UnixNano()))
			if b.SendChannel(channel, buf[:n]) == nil {
				pongs.Add(1)
			}
		}
	}()
	go func() { // the agent: receive pongs
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			d, err := a.ReadData(time.Now().Add(50 * time.Millisecond))
			if err != nil {
				if isTimeout(err) {
					continue
				}
				return
			}
			p := d.Payload
			if len(p) < headerLen || p[0] != kindPong {
				continue
			}
			now := time.Now().UnixNano()
			seq := binary.BigEndian.Uint32(p[1:5])
			if res.down.add(seq, now-int64(binary.BigEndian.Uint64(p[13:21]))) {
				res.rtts = append(res.rtts, float64(now-int64(binary.BigEndian.Uint64(p[5:13])))/1e6)
			}
		}
	}()
	interval := time.Second / time.Duration(rate)
	pkt := make([]byte, size)
	start := time.Now()
	for i := 0; i < packets && ctx.Err() == nil; i++ {
		pkt[0] = kindPing
		binary.BigEndian.PutUint32(pkt[1:5], uint32(i))
		binary.BigEndian.PutUint64(pkt[5:13], uint64(time.Now().UnixNano()))
		if a.SendChannel(channel, pkt) != nil {
			break
		}
		res.sent++
		if wait := time.Until(start.Add(time.Duration(i+1) * interval)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	grace := time.Now().Add(time.Second)
	for time.Now().Before(grace) && ctx.Err() == nil && res.down.received.Load() < int64(res.sent) {
		time.Sleep(10 * time.Millisecond)
	}
	// Pongs in flight after a timeout would count as lost: give them a
	// moment once nothing more is expected.
	time.Sleep(20 * time.Millisecond)
	close(done)
	wg.Wait()
	res.pongsSent = int(pongs.Load())
	return res
}
