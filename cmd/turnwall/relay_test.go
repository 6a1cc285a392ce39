package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/turnclient"
)

const labPolicy = "../../testdata/relay/lab"

func writeSecrets(t *testing.T, secrets ...string) string {
	f := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(f, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCredsCmd(t *testing.T) {
	secrets := writeSecrets(t, "new-secret-0123456789", "old-secret-0123456789")
	code, out, errOut := runCLI("creds", labPolicy, "--user", "agent7", "--ttl", "1h", "--secret-file", secrets, "--uri", "turn:backup.example.com:3478")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r creds.Response
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	exp, user, ok := creds.ParseUsername(r.Username)
	if !ok || user != "agent7" || exp.Sub(time.Now()) < 59*time.Minute || exp.Sub(time.Now()) > time.Hour {
		t.Errorf("username %q", r.Username)
	}
	if r.Password != creds.Password("new-secret-0123456789", r.Username) || r.TTL != 3600 {
		t.Errorf("password %q ttl %d: not minted with the first secret", r.Password, r.TTL)
	}
	want := []string{"turn:turn.lab.example.com:3478?transport=udp", "turn:turn.lab.example.com:3478?transport=tcp",
		"turns:turn.lab.example.com:5349?transport=tcp", "turns:turn.lab.example.com:443?transport=tcp", "turn:backup.example.com:3478"}
	if strings.Join(r.URIs, " ") != strings.Join(want, " ") {
		t.Errorf("uris %v", r.URIs)
	}
	if len(r.ICEServers) != 1 || r.ICEServers[0].Username != r.Username || r.ICEServers[0].Credential != r.Password || len(r.ICEServers[0].URLs) != 5 {
		t.Errorf("iceServers %+v", r.ICEServers)
	}

	// From the environment, without a policy.
	t.Setenv("TURNWALL_RELAY_SECRETS", "env-secret-0123456789,old-secret-0123456789")
	code, out, _ = runCLI("creds")
	if code != 0 || !strings.Contains(out, `"uris": []`) {
		t.Errorf("creds from the environment: exit %d\n%s", code, out)
	}
	json.Unmarshal([]byte(out), &r)
	if r.Password != creds.Password("env-secret-0123456789", r.Username) {
		t.Error("not minted with the environment's first secret")
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"creds", "--ttl", "-1h"}, 2, "--ttl"},
		{[]string{"creds", "--user", "a:b"}, 2, "--user"},
		{[]string{"creds", labPolicy, "--relay", "nope"}, 1, "no relay"},
		{[]string{"creds", "--secret-file", "/nonexistent/secrets"}, 1, "nonexistent"},
	} {
		code, _, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.msg, errOut)
		}
	}
	os.Unsetenv("TURNWALL_RELAY_SECRETS")
	if code, _, errOut := runCLI("creds"); code != 2 || !strings.Contains(errOut, "no shared secret") {
		t.Errorf("no secret: exit %d\n%s", code, errOut)
	}
}

func TestRelayCmdUsage(t *testing.T) {
	t.Setenv("TURNWALL_RELAY_SECRETS", "")
	t.Setenv("TURNWALL_RELAY_USERS", "")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"relay", labPolicy}, 2, "no credentials"},
		{[]string{"relay", labPolicy, "--log-format", "xml"}, 2, "--log-format"},
		{[]string{"relay", labPolicy, "--relay", "nope", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 1, "no relay"},
		{[]string{"relay", labPolicy, "--listen-ip", "nope", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--listen-ip"},
		{[]string{"relay", labPolicy, "--max-tcp-connections-per-source", "-1", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "must not be negative"},
		{[]string{"relay", labPolicy, "--unallocated-timeout", "0s", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--unallocated-timeout must be positive"},
		{[]string{"relay", labPolicy, "--max-queue-delay", "-5ms", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--max-queue-delay -5ms: give a duration, or 0"},
		{[]string{"relay", labPolicy, "--auth-fail-rate", "x", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--auth-fail-rate"},
		{[]string{"relay", labPolicy, "--alternate", "turn.example.com:3478", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--alternate: alternate \"turn.example.com:3478\": give ADDR:PORT"},
		{[]string{"relay", labPolicy, "--alternate", "udp://192.0.2.11:3478?domain=x.example", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "tls:// alternates only"},
		{[]string{"relay", labPolicy, "--capacity-threshold", "1.5", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 2, "--capacity-threshold 1.5"},
		// The private-relay example's key lives on the relay host only.
		{[]string{"relay", "../../policies/private-relay", "--secret-file", writeSecrets(t, "a-secret-0123456789")}, 1, "TLS certificate"},
	} {
		code, _, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.msg, errOut)
		}
	}
}

// TestRelayCmd runs `turnwall relay` on the lab policy in a network
// namespace: clients allocate with REST credentials, metrics are served,
// SIGHUP rotates the secret, SIGTERM stops it cleanly (exit 0).
func TestRelayCmd(t *testing.T) {
	err := netns.Available()
	if err == nil {
		_, err = exec.LookPath("turnwall") // the test binary, installed by testscript
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("relay command test cannot run in CI: %v", err)
		}
		t.Skip(err)
	}
	ns, err := netns.New("cli")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, a := range []string{"192.0.2.10/32", "2001:db8:30::10/128", "203.0.113.5/32"} {
		if err := ns.Addr("lo", a); err != nil {
			t.Fatal(err)
		}
	}
	secrets := writeSecrets(t, "first-secret-0123456789")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var log nstest.SyncBuffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns.Name, "turnwall", "relay", labPolicy, "--secret-file", secrets,
		"--metrics", "127.0.0.1:9641", "--udp-sockets", "2", "--user-quota", "3", "--log-format", "json", "--max-queue-delay", "50ms",
		"--alternate", "udp://192.0.2.11:3478", "--alternate", "tls://192.0.2.11:5349?domain=turn-b.lab.example.com")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()

	dial := func(network, address string) (c net.Conn, err error) {
		ns.Do(func() error {
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err = d.Dial(network, address)
			return nil
		})
		return
	}
	allocate := func(secret string) error {
		u, p := creds.Generate(secret, "agent", time.Now().Add(time.Hour))
		c, err := turnclient.Dial(turnclient.Config{Server: netip.MustParseAddrPort("192.0.2.10:3478"), Username: u, Password: p, Dial: dial, Timeout: time.Second})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, _, err = c.Allocate(ctx, turnclient.AllocateOptions{}); err != nil {
			return err
		}
		_, err = c.Refresh(ctx, 0)
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := allocate("first-secret-0123456789")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay does not answer: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	get := func(path string) (int, string) {
		client := http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, n, a string) (net.Conn, error) { return dial(n, a) }}, Timeout: 2 * time.Second}
		resp, err := client.Get("http://127.0.0.1:9641" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	metrics := func() string { _, b := get("/metrics"); return b }
	m := metrics()
	for _, want := range []string{"turnwall_relay_allocations_created_total 1", `turnwall_relay_auth_failures_total{reason="expired"} 0`,
		`turnwall_relay_auth_throttled_total{reason="source"} 0`, "go_goroutines"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Rotate: a new secret file, SIGHUP; the old secret's credentials stop working.
	os.WriteFile(secrets, []byte("second-secret-0123456789\n"), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "credentials reloaded") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := allocate("second-secret-0123456789"); err != nil {
		t.Errorf("new secret after SIGHUP: %v", err)
	}
	if err := allocate("first-secret-0123456789"); turnclient.Code(err) != 401 {
		t.Errorf("old secret after SIGHUP: %v, want 401", err)
	}
	if m := metrics(); !strings.Contains(m, `turnwall_relay_auth_failures_total{reason="bad-integrity"} 1`) {
		t.Errorf("auth failure not counted:\n%s", m)
	}

	// Health, and drain on SIGUSR1: /readyz 503, new allocations redirected
	// to the --alternate, the draining gauge 1; SIGUSR2 ends it.
	health := func(path string, code int, body string) {
		t.Helper()
		if c, b := get(path); c != code || !strings.Contains(b, body) {
			t.Errorf("%s: %d %q, want %d %q", path, c, b, code, body)
		}
	}
	health("/healthz", 200, "ok")
	health("/readyz", 200, "ready")
	waitLog := func(msg string) {
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(log.String(), msg) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	cmd.Process.Signal(syscall.SIGUSR1)
	waitLog(`"msg":"draining: new allocations are redirected or refused"`)
	health("/readyz", 503, "not ready: draining")
	health("/healthz", 200, "ok")
	var e *turnclient.Error
	if err := allocate("second-secret-0123456789"); !errors.As(err, &e) || e.Code != 300 || e.Alternate != netip.MustParseAddrPort("192.0.2.11:3478") {
		t.Errorf("allocate while draining: %v, want 300 to 192.0.2.11:3478", err)
	}
	if m := metrics(); !strings.Contains(m, "turnwall_relay_draining 1") || !strings.Contains(m, `turnwall_relay_redirects_total{reason="draining"} 1`) {
		t.Errorf("draining metrics:\n%s", m)
	}
	cmd.Process.Signal(syscall.SIGUSR2)
	waitLog(`"msg":"draining ended`)
	health("/readyz", 200, "ready")
	if err := allocate("second-secret-0123456789"); err != nil {
		t.Errorf("allocate after SIGUSR2: %v", err)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
		}
		exited <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not stop on SIGTERM")
	}
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	for _, want := range []string{`"msg":"relay started"`, `"max_tcp_connections_per_source":256`, `"max_tcp_connections_per_user":64`,
		`"unallocated_timeout":"5s"`, `"auth_fail_rate":2`, `"max_queue_delay":"50ms"`, `"msg":"allocation created"`, `"msg":"stopping"`, `"msg":"relay stopped"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
}
