package probe

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// pair is an agent-side allocation and a peer-side allocation on the same
// relay with permissions and channels towards each other.
type pair struct {
	a, b *turnclient.Client
}

func (p *pair) close() {
	for _, c := range []*turnclient.Client{p.a, p.b} {
		if c == nil {
			continue
		}
		if c.Relayed().IsValid() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			c.Refresh(ctx, 0) // delete the allocation; ignore errors
			cancel()
		}
		c.Close()
	}
}

// dialTURN connects to server over u's transport; over TLS with domain as
// the name when given (a redirect's ALTERNATE-DOMAIN).
func dialTURN(cfg *Config, u URI, server netip.AddrPort, domain string) (*turnclient.Client, error) {
	user, pass := cfg.credentials()
	tc := tlsConfig(cfg, u)
	if domain != "" {
		tc.ServerName = domain
	}
	return turnclient.Dial(turnclient.Config{Transport: u.Transport, Server: server, Username: user, Password: pass,
		TLS: tc, Dial: cfg.Dial, RTO: 200 * time.Millisecond, Timeout: cfg.Timeout})
}

// openPair allocates the agent side (check allocate), the peer side, and
// installs permissions (check permission) and channels. A 300 Try Alternate
// to the agent side's Allocate is followed once, as a browser would, and
// reported in the allocate check; the peer side then goes straight to the
// alternate. On failure the returned pair is closed and nil.
func openPair(ctx context.Context, cfg *Config, u URI, server netip.AddrPort, alloc, perm *Check) *pair {
	p := &pair{}
	fail := func(c *Check, err error) *pair {
		c.Status, c.Error, c.Code = Fail, err.Error(), turnclient.Code(err)
		c.Reason = explain(u.Transport, server, err)
		p.close()
		return nil
	}
	start := time.Now()
	var err error
	if p.a, err = dialTURN(cfg, u, server, ""); err != nil {
		alloc.Millis = ms(time.Since(start))
		perm.Status, perm.Reason = Skip, "no allocation"
		return fail(alloc, err)
	}
	if alloc.Local == "" {
		alloc.Local = p.a.LocalAddr().String()
	}
	var relayed netip.AddrPort
	var r *turnclient.Redirect
	p.a, relayed, _, r, err = p.a.AllocateFollow(ctx, turnclient.AllocateOptions{IPv6: server.Addr().Is6()})
	alloc.Millis = ms(time.Since(start))
	if r != nil {
		alloc.Redirect, alloc.Alternate = r.String(), r.To.String()
		server = r.To
		perm.Server = server.String()
	}
	if err != nil {
		perm.Status, perm.Reason = Skip, "no allocation"
		fail(alloc, err)
		if r != nil {
			alloc.Reason = explainRedirect(u.Transport, r, err)
		}
		return nil
	}
	alloc.Status, alloc.Relayed = OK, relayed.String()
	alloc.Reason = fmt.Sprintf("relayed address %s", relayed)
	if r != nil {
		alloc.Reason += "; " + r.String()
	}

	// The peer side: a second allocation on the same relay, over the same
	// transport.
	domain := ""
	if r != nil {
		domain = r.Domain
	}
	for try := 0; try < 2; try++ {
		if p.b, err = dialTURN(cfg, u, server, domain); err == nil {
			_, _, err = p.b.Allocate(ctx, turnclient.AllocateOptions{IPv6: server.Addr().Is6()})
		}
		// 437: the relay still holds an allocation for the local address
		// the system gave the new socket (RFC 8656 section 7.2 says to
		// retry): once more from another port.
		if turnclient.Code(err) != 437 {
			break
		}
		if p.b != nil {
			p.b.Close()
			p.b = nil
		}
	}
	if err != nil {
		perm.Reason = "the probe's peer allocation failed: " + explain(u.Transport, server, err)
		perm.Status, perm.Error, perm.Code = Fail, err.Error(), turnclient.Code(err)
		p.close()
		return nil
	}
	start = time.Now()
	err = p.a.CreatePermission(ctx, p.b.Relayed().Addr())
	perm.Millis = ms(time.Since(start))
	if err != nil {
		return fail(perm, err)
	}
	if err := p.b.CreatePermission(ctx, p.a.Relayed().Addr()); err != nil {
		return fail(perm, err)
	}
	perm.Status, perm.Reason = OK, fmt.Sprintf("permission for peer %s", p.b.Relayed().Addr())
	if err := p.a.ChannelBind(ctx, channel, p.b.Relayed()); err != nil {
		return fail(perm, fmt.Errorf("channel bind: %w", err))
	}
	if err := p.b.ChannelBind(ctx, channel, p.a.Relayed()); err != nil {
		return fail(perm, fmt.Errorf("channel bind: %w", err))
	}
	return p
}

// turnChecks allocates over u, creates a permission and exchanges media.
func turnChecks(ctx context.Context, cfg *Config, u URI) []Check {
	alloc := Check{Kind: KindAllocate, Target: u.String(), Transport: u.Transport}
	perm := Check{Kind: KindPermission, Target: u.String(), Transport: u.Transport}
	media := Check{Kind: KindMedia, Target: u.String(), Transport: u.Transport}
	ip, err := resolve(ctx, cfg, u.Host)
	if err != nil {
		alloc.Status, alloc.Error = Fail, err.Error()
		alloc.Reason = fmt.Sprintf("cannot resolve %s: DNS is blocked or the name is wrong", u.Host)
		perm.Status, perm.Reason = Skip, "no allocation"
		media.Status, media.Reason = Skip, "no allocation"
		return []Check{alloc, perm, media}
	}
	server := netip.AddrPortFrom(ip, u.Port)
	alloc.Server, perm.Server, media.Server = server.String(), server.String(), server.String()
	p := openPair(ctx, cfg, u, server, &alloc, &perm)
	if alloc.Alternate != "" {
		media.Server = alloc.Alternate
	}
	if p == nil {
		media.Status, media.Reason = Skip, "no allocation or permission"
		return []Check{alloc, perm, media}
	}
	defer p.close()
	start := time.Now()
	res := runStream(ctx, p.a, p.b, cfg.Packets, cfg.Rate, cfg.Size)
	media.Millis = ms(time.Since(start))
	st := res.stats()
	media.Media = &st
	media.Status, media.Reason = judgeMedia(st)
	return []Check{alloc, perm, media}
}

// judgeMedia gives the media verdict in the guide's terms.
func judgeMedia(st MediaStats) (string, string) {
	switch {
	case st.Up.Sent == 0:
		return Fail, "no media could be sent to the relay"
	case st.Up.Received == 0:
		return Fail, "no audio: nothing sent through the relay reached the peer (silence both ways)"
	case st.Down.Sent > 0 && st.Down.Received == 0:
		return Fail, "one-way audio: the peer hears the agent, but nothing comes back from the relay (inbound from the TURN server is blocked)"
	case st.Up.LossPct > 5 || st.Down.LossPct > 5:
		return Warn, fmt.Sprintf("media flows but loses packets (up %.1f%%, down %.1f%%): expect choppy audio", st.Up.LossPct, st.Down.LossPct)
	case st.Up.JitterMs > 30 || st.Down.JitterMs > 30:
		return Warn, fmt.Sprintf("media flows with high jitter (up %.1f ms, down %.1f ms)", st.Up.JitterMs, st.Down.JitterMs)
	}
	return OK, fmt.Sprintf("media both ways: RTT p50 %.1f ms, loss up %.1f%% down %.1f%%, jitter up %.1f ms down %.1f ms",
		st.RTT.P50, st.Up.LossPct, st.Down.LossPct, st.Up.JitterMs, st.Down.JitterMs)
}
