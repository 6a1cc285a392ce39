package verify

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/probe"
)

// coturnProc is Debian's turnserver running in a relay host's namespace
// with the configuration the coturn target emits for that relay.
type coturnProc struct {
	name string
	cmd  *exec.Cmd
	dir  string
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil // bounded: the start of the log explains failures
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// coturnConfs emits the coturn target's turnserver.conf for every relay of
// the program, by relay name.
func coturnConfs(p *ir.Program) (map[string][]byte, error) {
	files, err := coturn.Backend{}.Emit(p, backends.Options{Format: "conf"})
	if err != nil {
		return nil, err
	}
	if len(files) != len(p.Relays) {
		return nil, fmt.Errorf("coturn target emitted %d files for %d relays", len(files), len(p.Relays))
	}
	out := map[string][]byte{}
	for i, r := range p.Relays {
		out[r.Name] = files[i].Data
	}
	return out, nil
}

// labConf adapts an emitted turnserver.conf to the lab, changing only what
// the lab must: the certificate and key become the lab CA's (the policy's key
// lives on the real relay) and listening-ip/relay-ip keep the addresses the
// lab host has. Everything else (ports, realm, relay range, REST auth, peer filter,
// quotas, TLS versions) is used exactly as emitted.
func labConf(conf []byte, ips []netip.Addr, certFile, keyFile string) []byte {
	have := map[string]bool{}
	for _, a := range ips {
		have[a.String()] = true
	}
	var out bytes.Buffer
	hasCert := false
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		line := sc.Text()
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "cert":
			line, hasCert = "cert="+certFile, true
		case "pkey":
			line = "pkey=" + keyFile
		case "listening-ip", "relay-ip":
			if a, err := netip.ParseAddr(v); err == nil && !have[a.Unmap().String()] {
				continue
			}
		}
		out.WriteString(line + "\n")
	}
	out.WriteString("\n# Lab only: the lab CA's certificate where the policy gives none; logs\n# to stdout.\n")
	if !hasCert && certFile != "" {
		fmt.Fprintf(&out, "cert=%s\npkey=%s\n", certFile, keyFile)
	}
	out.WriteString("log-file=stdout\nsimple-log\nno-software-attribute\n")
	return out.Bytes()
}

// startCoturn runs turnserver for relay r on host h and waits until it
// answers a STUN Binding (or accepts a TCP connection) on its first
// listener.
func (s *Services) startCoturn(ctx context.Context, r *ir.Relay, h *Host, conf []byte, leaf *tls.Certificate) (*coturnProc, []relay.Listener, error) {
	if _, err := exec.LookPath("turnserver"); err != nil {
		return nil, nil, errors.New("turnserver (Debian package coturn) is missing; install it or use the bundled relay")
	}
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", coturnDirPrefix, os.Getpid()))
	if err != nil {
		return nil, nil, err
	}
	p := &coturnProc{name: r.Name, dir: dir, log: &lockedBuffer{}, done: make(chan struct{})}
	fail := func(err error) (*coturnProc, []relay.Listener, error) {
		p.stop()
		return nil, nil, err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if leaf != nil {
		if err := writeLeaf(leaf, certFile, keyFile); err != nil {
			return fail(err)
		}
	}
	ips := h.addrs()
	file := filepath.Join(dir, "turnserver.conf")
	if leaf == nil {
		certFile, keyFile = "", ""
	}
	if err := os.WriteFile(file, labConf(conf, ips, certFile, keyFile), 0o600); err != nil {
		return fail(err)
	}
	p.cmd = exec.Command("ip", "netns", "exec", h.NS.Name, "turnserver", "-c", file,
		"--static-auth-secret", s.Secret, "--pidfile", filepath.Join(dir, "turnserver.pid"))
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return fail(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	listeners := relay.Listen(ips, r.Listen)
	if len(listeners) == 0 {
		return fail(fmt.Errorf("relay %q has no listener", r.Name))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ready(h, listeners[0]); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("turnserver for relay %q did not answer on %s: %v\nturnserver log:\n%s", r.Name, listeners[0], err, tail(p.log.String(), 20)))
		}
		select {
		case <-p.done:
			return fail(fmt.Errorf("turnserver for relay %q exited: %v\nturnserver log:\n%s", r.Name, p.cmd.ProcessState, tail(p.log.String(), 20)))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return p, listeners, nil
}

// ready sends a STUN Binding over UDP (or opens a TCP connection) to ln from
// inside h's namespace.
func ready(h *Host, ln relay.Listener) error {
	return h.NS.Do(func() error {
		if ln.Transport != relay.UDP {
			c, err := net.DialTimeout("tcp", ln.Addr.String(), 300*time.Millisecond)
			if err != nil {
				return err
			}
			return c.Close()
		}
		pc, err := net.ListenPacket("udp", ":0")
		if err != nil {
			return err
		}
		defer pc.Close()
		_, _, _, err = probe.Binding(context.Background(), pc, ln.Addr, 300*time.Millisecond)
		return err
	})
}

// stop ends turnserver (SIGTERM, then SIGKILL) and removes its files.
func (p *coturnProc) stop() error {
	if p == nil {
		return nil
	}
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	return os.RemoveAll(p.dir)
}

func writeLeaf(c *tls.Certificate, certFile, keyFile string) error {
	var certs bytes.Buffer
	for _, der := range c.Certificate {
		pem.Encode(&certs, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certFile, certs.Bytes(), 0o600); err != nil {
		return err
	}
	return os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
