package call

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// closeWait bounds how long closing one PeerConnection may take.
const closeWait = 5 * time.Second

// Run places a call from agent to far: the agent offers, the far end
// answers, the agent's candidates trickle to the far end as they are
// gathered (all in-process), and once both are
// connected each side sends opt.Media of Opus-sized RTP packets while the
// other counts them. Everything is bounded by ctx and opt.ConnectTimeout
// (then opt.Media and a short grace period); both PeerConnections are always
// closed before Run returns.
func Run(ctx context.Context, agent, far Endpoint, opt Options) (res Result) {
	opt = opt.withDefaults()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	var peers []*peer
	defer func() {
		if res.Audio == "" {
			res.Audio = AudioNone
		}
		// Abort dials and handshakes still under way, then close both
		// sides at once.
		cancel()
		var wg sync.WaitGroup
		stuck := make([]bool, len(peers))
		for i, p := range peers {
			wg.Add(1)
			go func() { defer wg.Done(); stuck[i] = !p.close(closeWait) }()
		}
		wg.Wait()
		for i, s := range stuck {
			if s && res.Err == "" {
				res.Err = fmt.Sprintf("the %s's PeerConnection did not close within %s", peers[i].role, closeWait)
			}
		}
	}()
	fail := func(state, format string, args ...any) Result {
		res.State, res.Err = state, fmt.Sprintf(format, args...)
		return res
	}

	a, err := newPeer(runCtx, agent, "agent", opt)
	if err != nil {
		return fail(StateError, "%v", err)
	}
	peers = append(peers, a)
	f, err := newPeer(runCtx, far, "far end", opt)
	if err != nil {
		return fail(StateError, "%v", err)
	}
	peers = append(peers, f)

	connectCtx, cancelConnect := context.WithTimeout(runCtx, opt.ConnectTimeout)
	defer cancelConnect()
	timedOut := func(what string) Result {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(StateError, "canceled while %s", what)
		}
		return fail(StateTimeout, "timeout: %s did not finish within %s", what, time.Since(start).Round(100*time.Millisecond))
	}

	// Trickle ICE, as browsers do: the agent's offer goes out at once and
	// its candidates follow as they are gathered, so a TURN server that never
	// answers (UDP dropped) does not hold up the ones that do. The far end
	// (usually ICE-lite, host candidates only) answers with its candidates.
	offer, err := a.pc.CreateOffer(nil)
	if err != nil {
		return fail(StateError, "agent: creating the offer: %v", err)
	}
	agentGathered := webrtc.GatheringCompletePromise(a.pc)
	if err := a.pc.SetLocalDescription(offer); err != nil {
		return fail(StateError, "agent: setting the offer: %v", err)
	}
	if err := f.pc.SetRemoteDescription(offer); err != nil {
		return fail(StateError, "far end: the agent's offer: %v", err)
	}
	answer, err := f.pc.CreateAnswer(nil)
	if err != nil {
		return fail(StateError, "far end: creating the answer: %v", err)
	}
	farGathered := webrtc.GatheringCompletePromise(f.pc)
	if err := f.pc.SetLocalDescription(answer); err != nil {
		return fail(StateError, "far end: setting the answer: %v", err)
	}
	if err := gather(connectCtx, farGathered); err != nil {
		res.FarGathered = f.candidates()
		return timedOut("gathering the far end's candidates")
	}
	res.FarGathered = f.candidates()
	if r, bad := noCandidates(far, res.FarGathered, f, "far end"); bad {
		res.State, res.Err = r.State, r.Err
		return res
	}
	if err := a.pc.SetRemoteDescription(*f.pc.LocalDescription()); err != nil {
		return fail(StateError, "agent: the far end's answer: %v", err)
	}
	a.trickleTo(f)

	// Both sides connected (ICE and DTLS), or a failure, or the timeout.
	gathered := agentGathered
wait:
	for _, p := range peers {
		for waiting := true; waiting; {
			select {
			case <-p.connected:
				waiting = false
			case <-gathered:
				// Gathering done: a side with nothing usable never connects.
				gathered = nil
				if !isClosed(a.connected) {
					res.Gathered = a.candidates()
					if r, bad := noCandidates(agent, res.Gathered, a, "agent"); bad {
						res.State, res.Err = r.State, r.Err
						return res
					}
				}
			case <-connectCtx.Done():
				break wait
			case <-a.failed:
				break wait
			case <-f.failed:
				break wait
			}
		}
	}
	if why := firstFailure(a, f); why != "" {
		res.Gathered, res.FarGathered = a.candidates(), f.candidates()
		if strings.HasPrefix(why, "ICE failed") && agent.RelayOnly && !hasType(res.Gathered, "relay") {
			reasons := a.relayFailures()
			if reasons == "" {
				reasons = " (no answer from " + serverList(agent) + ")"
			}
			return fail(StateFailed, "no relay candidate: no TURN allocation of the agent succeeded%s", reasons)
		}
		if strings.HasPrefix(why, "ICE failed") {
			return fail(StateFailed, "ICE failed: no candidate pair answered connectivity checks between the agent (%s) and the far end (%s)",
				list(res.Gathered), list(res.FarGathered))
		}
		return fail(StateFailed, "%s", why)
	}
	if !isClosed(a.connected) || !isClosed(f.connected) {
		res.Gathered, res.FarGathered = a.candidates(), f.candidates()
		if agent.RelayOnly && !hasType(res.Gathered, "relay") {
			r := timedOut("gathering the agent's candidates")
			if r.State == StateTimeout {
				why := a.relayFailures()
				if why == "" {
					why = " (no answer from " + serverList(agent) + ")"
				}
				r.Err = fmt.Sprintf("timeout: no relay candidate within %s: the TURN allocations did not finish%s",
					time.Since(start).Round(100*time.Millisecond), why)
			}
			return r
		}
		r := timedOut("connecting")
		if r.State == StateTimeout {
			r.Err = fmt.Sprintf("timeout: not connected within %s (agent: ICE %s, connection %s; far end: ICE %s, connection %s)",
				opt.ConnectTimeout, a.pc.ICEConnectionState(), a.pc.ConnectionState(), f.pc.ICEConnectionState(), f.pc.ConnectionState())
		}
		return r
	}
	res.State = StateConnected
	res.ConnectTime = time.Since(start)
	res.Gathered = a.candidates()
	res.Local, res.Remote = a.selected(res.Gathered)

	if opt.AfterConnect != nil {
		opt.AfterConnect()
	}

	// Media both ways at once, then a grace period for the last packets.
	interval := time.Second / time.Duration(opt.PacketsPerSecond)
	packets := int(math.Round(opt.Media.Seconds() * float64(opt.PacketsPerSecond)))
	if packets < 1 {
		packets = 1
	}
	var sentAF, sentFA int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sentAF = send(runCtx, a.track, packets, opt.PayloadSize, interval) }()
	go func() { defer wg.Done(); sentFA = send(runCtx, f.track, packets, opt.PayloadSize, interval) }()
	wg.Wait()
	grace := 300*time.Millisecond + 2*interval
	t := time.NewTimer(grace)
	select {
	case <-t.C:
	case <-runCtx.Done():
		res.Err = "canceled during media"
	}
	t.Stop()
	res.AgentToFar = direction(sentAF, f.recv)
	res.FarToAgent = direction(sentFA, a.recv)
	res.Audio = verdict(res.AgentToFar, res.FarToAgent)
	// Candidates trickled in during the call count too; the pair may have
	// changed during media (renomination).
	res.Gathered = a.candidates()
	if l, r := a.selected(res.Gathered); l != nil {
		res.Local, res.Remote = l, r
	}
	res.RTTMs = float64(a.rtt().Microseconds()) / 1000
	return res
}

func hasType(cs []Candidate, typ string) bool {
	for _, c := range cs {
		if c.Type == typ {
			return true
		}
	}
	return false
}

// noCandidates explains a side that gathered nothing usable.
func noCandidates(ep Endpoint, cs []Candidate, p *peer, role string) (Result, bool) {
	switch {
	case ep.RelayOnly && !hasType(cs, "relay"):
		if len(ep.Servers) == 0 {
			return Result{State: StateFailed, Err: fmt.Sprintf("no relay candidate: the %s is relay-only but has no TURN server", role)}, true
		}
		return Result{State: StateFailed, Err: fmt.Sprintf("no relay candidate: every TURN allocation of the %s failed%s", role, p.relayFailures())}, true
	case len(cs) == 0:
		return Result{State: StateFailed, Err: fmt.Sprintf("the %s gathered no candidate on %s", role, addrList(ep))}, true
	}
	return Result{}, false
}

func addrList(ep Endpoint) string {
	var s []string
	for _, a := range ep.Addrs {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

func firstFailure(ps ...*peer) string {
	for _, p := range ps {
		if isClosed(p.failed) {
			return p.failureReason()
		}
	}
	return ""
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func list(cs []Candidate) string {
	if len(cs) == 0 {
		return "no candidates"
	}
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

func serverList(ep Endpoint) string {
	var s []string
	for _, sv := range ep.Servers {
		s = append(s, sv.URL)
	}
	if len(s) == 0 {
		return "any TURN server"
	}
	return strings.Join(s, ", ")
}
