package storetest

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// Coturn is a turnserver on 127.0.0.1: a coturn node of the fleet.
type Coturn struct {
	Addr netip.AddrPort // UDP and TCP listener
	p    *proc
}

// Output is what turnserver printed.
func (c *Coturn) Output() string { return c.p.output() }

// StartCoturn starts Debian's turnserver for realm on a free loopback port
// with args added (--redis-userdb, --psql-userdb, --lt-cred-mech or
// --use-auth-secret ...), and waits until it answers an Allocate (with 401).
func StartCoturn(tb testing.TB, realm string, args ...string) *Coturn {
	tb.Helper()
	bin := Need(tb, "turnserver")
	dir := tb.TempDir()
	port := FreePort(tb)
	minPort := 40000 + rand.IntN(200)*100
	all := append([]string{"-n", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
		"--listening-port", strconv.Itoa(port), "--min-port", strconv.Itoa(minPort), "--max-port", strconv.Itoa(minPort + 99),
		"--realm", realm, "--no-tls", "--no-dtls", "--no-cli", "--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(dir, "pid"), "--no-software-attribute"}, args...)
	p, err := start(bin, all, nil, dir)
	if err != nil {
		tb.Fatalf("turnserver: %v", err)
	}
	c := &Coturn{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), p: p}
	tb.Cleanup(func() {
		if p.running() {
			p.stop(syscall.SIGTERM)
		}
	})
	err = waitFor(p, "turnserver", func() error {
		cl, err := turnclient.Dial(turnclient.Config{Server: c.Addr, Timeout: 500 * time.Millisecond})
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _, err = cl.Allocate(ctx, turnclient.AllocateOptions{})
		if turnclient.Code(err) == 401 {
			return nil
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
