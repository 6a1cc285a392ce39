// Package netns builds throwaway network namespaces for end-to-end tests and
// labs: hosts joined by veth pairs, addresses, routes, and a way to run Go
// code (sockets included) or commands inside a namespace. Every namespace is
// named with this process's id and a counter, so concurrent runs never clash,
// and Close removes it with everything in it.
package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

var counter atomic.Int64

// NS is one network namespace.
type NS struct {
	Name string
}

// Available reports why namespaces cannot be used here (not root, no ip
// command, no namespace support), or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("the ip command (Debian package iproute2) is missing")
	}
	ns, err := New("probe")
	if err != nil {
		return err
	}
	return ns.Close()
}

// New creates a namespace named tw-PID-N-role with loopback up.
func New(role string) (*NS, error) {
	name := fmt.Sprintf("tw-%d-%d-%s", os.Getpid(), counter.Add(1), role)
	if len(name) > 40 {
		name = name[:40]
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	ns := &NS{Name: name}
	if err := ns.IP("link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, err
	}
	// Interfaces created later take the defaults: no duplicate address
	// detection, so IPv6 link-local and global addresses work at once instead
	// of after a second of tentative state that silently loses packets.
	for _, key := range []string{"net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.dad_transmits"} {
		if err := ns.Sysctl(key, "0"); err != nil {
			ns.Close()
			return nil, err
		}
	}
	return ns, nil
}

// Close deletes the namespace; its interfaces go with it.
func (n *NS) Close() error {
	out, err := exec.Command("ip", "netns", "del", n.Name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("ip netns del %s: %v: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// IP runs `ip -n NAME ARGS...`.
func (n *NS) IP(args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exec runs a command inside the namespace and returns its combined output.
func (n *NS) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %v: %s", name, strings.Join(args, " "), n.Name, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Sysctl sets a sysctl inside the namespace.
func (n *NS) Sysctl(key, value string) error {
	_, err := n.Exec(context.Background(), "sysctl", "-qw", key+"="+value)
	return err
}

// Do runs f on an OS thread switched into the namespace. Sockets f opens
// belong to the namespace and stay usable from any goroutine afterwards.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: if switching back fails it must die
		// with the goroutine rather than serve other goroutines in the
		// wrong namespace.
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/var/run/netns/" + n.Name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", n.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Link joins two namespaces with a veth pair: aDev in a, bDev in b, both up.
func Link(a *NS, aDev string, b *NS, bDev string) error {
	if err := a.IP("link", "add", aDev, "type", "veth", "peer", "name", bDev, "netns", b.Name); err != nil {
		return err
	}
	if err := a.IP("link", "set", aDev, "up"); err != nil {
		return err
	}
	return b.IP("link", "set", bDev, "up")
}

// Addr adds an address (CIDR form) to a device; IPv6 addresses skip duplicate
// address detection so they are usable at once.
func (n *NS) Addr(dev, cidr string) error {
	args := []string{"addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	return n.IP(args...)
}

// DefaultRoute routes everything of one family via gw on dev.
func (n *NS) DefaultRoute(dev, gw string) error {
	fam := "-4"
	if strings.Contains(gw, ":") {
		fam = "-6"
	}
	return n.IP(fam, "route", "add", "default", "via", gw, "dev", dev)
}

// DefaultRouteFrom adds a default route via gw whose preferred source is src:
// sockets that do not bind an address send from src.
func (n *NS) DefaultRouteFrom(dev, gw, src string) error {
	fam := "-4"
	if strings.Contains(gw, ":") {
		fam = "-6"
	}
	return n.IP(fam, "route", "add", "default", "via", gw, "dev", dev, "src", src)
}

// Router enables forwarding for IPv4 and IPv6.
func (n *NS) Router() error {
	if err := n.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	return n.Sysctl("net.ipv6.conf.all.forwarding", "1")
}

// WaitGone waits until no namespace of this process remains (for tests that
// assert cleanup), up to the timeout.
func WaitGone(timeout time.Duration) error { return WaitGoneOf(os.Getpid(), timeout) }

// WaitGoneOf waits until no namespace of process pid remains.
func WaitGoneOf(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	prefix := fmt.Sprintf("tw-%d-", pid)
	for {
		entries, _ := os.ReadDir("/var/run/netns")
		left := 0
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d namespaces of process %d are left", left, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
