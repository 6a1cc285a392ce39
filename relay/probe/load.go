package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"time"
)

// Bounds of load mode.
const (
	MaxStreams  = 2000
	MaxDuration = 10 * time.Minute
	MaxRate     = 1000
)

// LoadConfig is a capacity test: Streams concurrent Opus-like streams (Rate
// packets a second of Size bytes each way) through one TURN URI for
// Duration; with Ramp, the count steps up in quarters and the report says
// where quality falls below MOSThreshold.
type LoadConfig struct {
	Config
	Target       URI
	Streams      int
	Duration     time.Duration
	Ramp         bool
	MOSThreshold float64 // default 3.6
	// Progress, when set, is called about twice a second and at each step's end.
	Progress func(step, steps, streams int, elapsed, total time.Duration)
}

// LoadStep is the quality at one stream count.
type LoadStep struct {
	Streams int `json:"streams"`
	Opened  int `json:"opened"` // streams whose allocations succeeded
	// QuotaRefused counts streams the relay refused with 486 (allocation
	// quota): its limit, not a quality limit.
	QuotaRefused int         `json:"quota_refused,omitempty"`
	FirstError   string      `json:"first_error,omitempty"`
	LossPct      float64     `json:"loss_pct"`        // all packets, both directions
	StreamLoss   Percentiles `json:"stream_loss_pct"` // per stream, worse direction
	Jitter       Percentiles `json:"jitter_ms"`       // per stream, worse direction
	RTT          Percentiles `json:"rtt_ms"`
	R            float64     `json:"r_factor"`
	MOS          float64     `json:"mos"`
}

// What limited a load test (LoadReport.Limit).
const (
	LimitNone    = ""        // quality held at every tested count
	LimitQuality = "quality" // the MOS fell below the threshold
	LimitStreams = "streams" // streams could not be opened (not for quota)
	LimitQuota   = "quota"   // the relay refused allocations with 486
)

// LoadReport is the result of load mode.
type LoadReport struct {
	Target    string     `json:"target"`
	Threshold float64    `json:"mos_threshold"`
	Steps     []LoadStep `json:"steps"`
	// PerStreamUsers: each stream authenticated as its own user (REST
	// credentials), so the relay's per-user quota does not count them
	// together.
	PerStreamUsers bool `json:"per_stream_users"`
	// Capacity is the largest tested count meeting the threshold with every
	// stream opened (0: none); FallsAt the first count where quality fell or
	// streams failed (0: none); QuotaAt the first count the relay's quota
	// refused (0: none).
	Capacity int    `json:"capacity"`
	FallsAt  int    `json:"falls_below_at,omitempty"`
	QuotaAt  int    `json:"quota_limited_at,omitempty"`
	Limit    string `json:"limit"` // LimitNone, LimitQuality, LimitStreams or LimitQuota
}

// Summary says in one sentence what the load test found.
func (r *LoadReport) Summary() string {
	held := "no tested count"
	if r.Capacity > 0 {
		held = fmt.Sprintf("%d streams", r.Capacity)
	}
	var last LoadStep
	if len(r.Steps) > 0 {
		last = r.Steps[len(r.Steps)-1]
	}
	switch r.Limit {
	case LimitQuota:
		s := fmt.Sprintf("Capacity limited by relay quota at %d streams: the relay refused %d of them with 486 (allocation quota reached); this is the relay's allocation limit, not a quality limit. Quality held at %s.",
			r.QuotaAt, last.QuotaRefused, held)
		if !r.PerStreamUsers {
			s += " Every stream authenticated as the same user (2 allocations a stream): give a TURN REST shared secret (--secret-file) so each stream is its own user, or raise the relay's per-user quota."
		}
		return s
	case LimitStreams:
		return fmt.Sprintf("At %d streams, %d could not be opened (first failure: %s). Quality held at %s.", r.FallsAt, last.Streams-last.Opened, last.FirstError, held)
	case LimitQuality:
		return fmt.Sprintf("Quality falls below MOS %.1f at %d streams (MOS %.2f). It held at %s.", r.Threshold, r.FallsAt, last.MOS, held)
	}
	return fmt.Sprintf("Quality held at every tested count (up to %d streams).", r.Capacity)
}

// EModel is a simplified ITU-T G.107 E-model (Cole and Rosenbluth): R = 93.2
// - Id - Ie,eff with one-way delay d in ms (Id = 0.024 d + 0.11 (d - 177.3)
// above 177.3 ms) and packet loss in percent (Ie,eff = Ie + (95 - Ie) Ppl /
// (Ppl + Bpl), with Ie = 0 and Bpl = 10 for a codec with packet loss
// concealment such as Opus or G.711 with PLC); MOS from R as in G.107
// Annex B.
func EModel(delayMs, lossPct float64) (r, mos float64) {
	id := 0.024 * delayMs
	if delayMs > 177.3 {
		id += 0.11 * (delayMs - 177.3)
	}
	const ie, bpl = 0.0, 10.0
	ieEff := ie + (95-ie)*lossPct/(lossPct+bpl)
	r = math.Max(0, math.Min(100, 93.2-id-ieEff))
	switch {
	case r <= 0:
		mos = 1
	case r >= 100:
		mos = 4.5
	default:
		mos = math.Max(1, math.Min(4.5, 1+0.035*r+r*(r-60)*(100-r)*7e-6))
	}
	return r, mos
}

// MouthToEar estimates the one-way delay a listener hears: half the RTT, a
// jitter buffer of twice the jitter, and 20 ms of packetisation.
func MouthToEar(rttMs, jitterMs float64) float64 { return rttMs/2 + 2*jitterMs + 20 }

// Load runs the capacity test. Bounded by MaxStreams, MaxDuration and ctx.
func Load(ctx context.Context, lc LoadConfig) (*LoadReport, error) {
	lc.Config.defaults()
	switch {
	case lc.Streams < 1 || lc.Streams > MaxStreams:
		return nil, fmt.Errorf("streams %d: give 1 to %d", lc.Streams, MaxStreams)
	case lc.Duration <= 0 || lc.Duration > MaxDuration:
		return nil, fmt.Errorf("duration %s: give up to %s", lc.Duration, MaxDuration)
	case lc.Rate > MaxRate:
		return nil, fmt.Errorf("rate %d: at most %d packets a second", lc.Rate, MaxRate)
	case lc.Target.Scheme != "turn" && lc.Target.Scheme != "turns":
		return nil, errors.New("load mode needs a TURN URI")
	}
	if lc.MOSThreshold == 0 {
		lc.MOSThreshold = 3.6
	}
	ip, err := resolve(ctx, &lc.Config, lc.Target.Host)
	if err != nil {
		return nil, err
	}
	server := netip.AddrPortFrom(ip, lc.Target.Port)
	counts := []int{lc.Streams}
	if lc.Ramp {
		counts = nil
		for q := 1; q <= 4; q++ {
			n := max(1, lc.Streams*q/4)
			if len(counts) == 0 || counts[len(counts)-1] != n {
				counts = append(counts, n)
			}
		}
	}
	stepDur := lc.Duration / time.Duration(len(counts))
	rep := &LoadReport{Target: lc.Target.String(), Threshold: lc.MOSThreshold, PerStreamUsers: lc.Secret != ""}
	for i, n := range counts {
		if ctx.Err() != nil {
			break
		}
		step := runStep(ctx, &lc, server, n, stepDur, func(el time.Duration) {
			if lc.Progress != nil {
				lc.Progress(i+1, len(counts), n, el, stepDur)
			}
		})
		rep.Steps = append(rep.Steps, step)
		switch {
		case step.MOS >= lc.MOSThreshold && step.Opened == n:
			rep.Capacity = n
			continue
		case step.QuotaRefused > 0:
			rep.QuotaAt, rep.Limit = n, LimitQuota
		case step.Opened < n:
			rep.FallsAt, rep.Limit = n, LimitStreams
		default:
			rep.FallsAt, rep.Limit = n, LimitQuality
		}
		break // quality fell or the relay refused: do not push it further
	}
	return rep, nil
}

func runStep(ctx context.Context, lc *LoadConfig, server netip.AddrPort, n int, dur time.Duration, progress func(time.Duration)) LoadStep {
	step := LoadStep{Streams: n}
	pairs := make([]*pair, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32) // allocations in flight
	for i := range pairs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var alloc, perm Check
			cfg := lc.Config
			if cfg.Secret != "" { // one user per stream: the relay's per-user quota counts streams apart
				cfg.RESTUser = fmt.Sprintf("%s-%d", cfg.RESTUser, i+1)
			}
			pairs[i] = openPair(ctx, &cfg, lc.Target, server, &alloc, &perm)
			if pairs[i] == nil {
				failed := alloc
				if alloc.Status != Fail {
					failed = perm
				}
				mu.Lock()
				if failed.Code == 486 {
					step.QuotaRefused++
				}
				if step.FirstError == "" {
					step.FirstError = failed.Reason
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, p := range pairs {
			if p != nil {
				p.close()
			}
		}
	}()
	packets := max(1, int(dur.Seconds()*float64(lc.Rate)))
	results := make([]*streamResult, n)
	start := time.Now()
	done, tickerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(tickerDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				progress(min(time.Since(start), dur))
			}
		}
	}()
	for i, p := range pairs {
		if p == nil {
			continue
		}
		step.Opened++
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runStream(ctx, p.a, p.b, packets, lc.Rate, lc.Size)
		}()
	}
	wg.Wait()
	close(done)
	<-tickerDone // Progress is never called concurrently
	progress(dur)
	var rtts, losses, jitters []float64
	sent, recv := 0, 0
	for _, r := range results {
		if r == nil {
			continue
		}
		st := r.stats()
		sent += st.Up.Sent + st.Up.Sent // pongs lost because pings were lost count too
		recv += st.Up.Received + st.Down.Received
		rtts = append(rtts, r.rtts...)
		// A stream's loss as the agent hears it: pings that made no round trip.
		loss := 100.0
		if st.Up.Sent > 0 {
			loss = 100 * float64(st.Up.Sent-st.Down.Received) / float64(st.Up.Sent)
		}
		losses = append(losses, loss)
		jitters = append(jitters, math.Max(st.Up.JitterMs, st.Down.JitterMs))
	}
	if sent > 0 {
		step.LossPct = 100 * float64(sent-recv) / float64(sent)
	} else {
		step.LossPct = 100
	}
	step.RTT, step.StreamLoss, step.Jitter = percentiles(rtts), percentiles(losses), percentiles(jitters)
	step.R, step.MOS = EModel(MouthToEar(step.RTT.P95, step.Jitter.P95), step.StreamLoss.P95)
	if step.Opened == 0 {
		step.R, step.MOS = 0, 1
	}
	return step
}
