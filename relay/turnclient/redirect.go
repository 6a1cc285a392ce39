package turnclient

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Redirect is a 300 Try Alternate that was followed.
type Redirect struct {
	From, To netip.AddrPort
	Domain   string // ALTERNATE-DOMAIN (TLS), or ""
}

func (r *Redirect) String() string {
	s := fmt.Sprintf("redirected by %s to %s (300 Try Alternate)", r.From, r.To)
	if r.Domain != "" {
		s += ", certificate name " + r.Domain
	}
	return s
}

// RedirectError is a second 300 Try Alternate, which is not followed: one
// redirect per Allocate, so two relays sending clients to each other cannot
// loop them.
type RedirectError struct {
	First  Redirect       // the redirect that was followed
	Next   netip.AddrPort // where the alternate sent the client next
	Reason *Error         // the alternate's 300
}

func (e *RedirectError) Error() string {
	if !e.Next.IsValid() {
		return fmt.Sprintf("%s, then %s answered 300 Try Alternate without a usable ALTERNATE-SERVER", e.First.String(), e.First.To)
	}
	what := "redirected again"
	if e.Loop() {
		what = "redirect loop"
	}
	return fmt.Sprintf("%s: %s, then by %s to %s (300 Try Alternate): only one redirect is followed", what, e.First.String(), e.First.To, e.Next)
}

func (e *RedirectError) Unwrap() error { return e.Reason }

// Loop reports whether the second redirect pointed back to the first relay.
func (e *RedirectError) Loop() bool { return e.Next == e.First.From }

// AllocateFollow allocates on c, following one 300 Try Alternate: on an
// authenticated 300 with ALTERNATE-SERVER it closes c, dials the alternate
// with c's configuration (over TLS checking the ALTERNATE-DOMAIN name when
// the relay gave one) and allocates there. It returns the client that holds
// the allocation (c, or the new client), and the redirect that was followed,
// if any, also on failure. A second 300 is not followed: the error is a
// *RedirectError. pion/turn's client does not follow 300; this is for
// probes and tests.
func (c *Client) AllocateFollow(ctx context.Context, o AllocateOptions) (*Client, netip.AddrPort, time.Duration, *Redirect, error) {
	relayed, life, err := c.Allocate(ctx, o)
	var e *Error
	if err == nil || !errors.As(err, &e) || e.Code != 300 || !e.Alternate.IsValid() {
		return c, relayed, life, nil, err
	}
	r := &Redirect{From: c.cfg.Server, To: e.Alternate, Domain: e.AlternateDomain}
	cfg := c.cfg
	cfg.Server = e.Alternate
	if cfg.TLS != nil && r.Domain != "" {
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = r.Domain
	}
	n, err := Dial(cfg)
	if err != nil {
		return c, netip.AddrPort{}, 0, r, fmt.Errorf("%s: %w", r, err)
	}
	c.Close()
	relayed, life, err = n.Allocate(ctx, o)
	if errors.As(err, &e) && e.Code == 300 {
		return n, netip.AddrPort{}, 0, r, &RedirectError{First: *r, Next: e.Alternate, Reason: e}
	}
	return n, relayed, life, r, err
}
