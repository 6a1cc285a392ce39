package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
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

	"github.com/redis/go-redis/v9"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/netns/nstest"
	"github.com/turnwall/turnwall/relay/store/storetest"
	"github.com/turnwall/turnwall/relay/turnclient"
)

func runCLIStdin(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeTemp(t *testing.T, name, content string) string {
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// redisURLNoPassword is the Redis store URL without its password, which
// goes in a file.
func redisURLNoPassword(r *storetest.Redis) string { return "redis://" + r.Addr() + "/0" }

// TestCredsStore: `creds --store` writes secrets and users where relays and
// coturn read them, never takes them from argv, and lists names only.
func TestCredsStore(t *testing.T) {
	r := storetest.StartRedis(t)
	pwFile := writeTemp(t, "redis-pw", r.Password+"\n")
	base := []string{"creds", "--store", redisURLNoPassword(r), "--store-password-file", pwFile, "--realm", "lab.example.com"}
	cl := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password})
	defer cl.Close()
	ctx := context.Background()
	cli := func(stdin string, args ...string) (int, string, string) {
		return runCLIStdin(stdin, append(append([]string(nil), base...), args...)...)
	}

	secretFile := writeTemp(t, "secret", "store-secret-0123456789\n")
	if code, out, errOut := cli("", "--add-secret", secretFile); code != 0 || !strings.Contains(out, "added 1 secret(s) to realm lab.example.com in redis://:xxxxx@") {
		t.Fatalf("--add-secret: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli("second-secret-0123456789\n", "--add-secret", "-"); code != 0 {
		t.Fatalf("--add-secret -: exit %d %s", code, errOut)
	}
	got, _ := cl.SMembers(ctx, "turn/realm/lab.example.com/secret").Result()
	if len(got) != 2 {
		t.Errorf("secrets in Redis: %q", got)
	}
	if code, _, errOut := cli("alice-password\n", "--add-user", "alice", "--password-file", "-"); code != 0 {
		t.Fatalf("--add-user: exit %d %s", code, errOut)
	}
	key, _ := cl.Get(ctx, "turn/realm/lab.example.com/user/alice/key").Result()
	if want := hex.EncodeToString(creds.Key("alice", "lab.example.com", "alice-password")); key != want {
		t.Errorf("alice's key %q, want MD5(alice:lab.example.com:alice-password) %q", key, want)
	}
	// The realm from the policy's relay.
	code, out, errOut := runCLIStdin("", "creds", labPolicy, "--store", r.URL(0), "--list")
	if code != 0 || out != "realm lab.example.com in redis://:xxxxx@"+r.Addr()+"/0\nsecrets: 2\nusers: 1\n  alice\n" {
		t.Errorf("--list: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "secret-0123456789") || strings.Contains(out+errOut, r.Password) {
		t.Error("--list printed a secret or the store's password")
	}
	if code, _, errOut := cli("", "--delete-secret", secretFile); code != 0 {
		t.Fatalf("--delete-secret: exit %d %s", code, errOut)
	}
	if code, _, errOut := cli("", "--delete-user", "alice"); code != 0 {
		t.Fatalf("--delete-user: exit %d %s", code, errOut)
	}
	got, _ = cl.SMembers(ctx, "turn/realm/lab.example.com/secret").Result()
	if n, _ := cl.Exists(ctx, "turn/realm/lab.example.com/user/alice/key").Result(); len(got) != 1 || got[0] != "second-secret-0123456789" || n != 0 {
		t.Errorf("after deleting: secrets %q, alice's key exists %d", got, n)
	}

	wrongPW := writeTemp(t, "wrong", "not-the-password\n")
	for _, tc := range []struct {
		args  []string
		stdin string
		code  int
		msg   string
	}{
		{[]string{"creds", "--list"}, "", 2, "--list needs --store or $TURNWALL_RELAY_STORE"},
		{[]string{"creds", "--store", r.URL(0), "--realm", "x"}, "", 2, "give one of --add-secret"},
		{[]string{"creds", "--store", r.URL(0), "--list"}, "", 2, "give --realm, or POLICY"},
		{append(base, "--list", "--delete-user", "bob"), "", 2, "one store action at a time, not --delete-user, --list"},
		{append(base, "--add-user", "bob"), "", 2, "--add-user needs --password-file"},
		{append(base, "--add-secret", "-"), "short\n", 2, "use at least 16 random bytes"},
		{append(base, "--add-secret", "-"), "", 2, "no secret in it"},
		{append(base, "--add-user", "bo b", "--password-file", "-"), "pw\n", 2, "spaces or control characters"},
		{append(base, "--add-user", "1700000000:x", "--password-file", "-"), "pw\n", 2, "looks like a TURN REST API username"},
		{append(base, "--add-user", "bob", "--password-file", "-"), "a\nb\n", 2, "one password on one line"},
		{[]string{"creds", "--store", redisURLNoPassword(r), "--store-password-file", wrongPW, "--realm", "x", "--list"}, "", 1, "Redis refused the password"},
		{[]string{"creds", "--store", r.URL(0), "--store-password-file", pwFile, "--realm", "x", "--list"}, "", 2, "has a password already"},
		{[]string{"creds", "--store", "mysql://h/db", "--realm", "x", "--list"}, "", 1, `scheme "mysql" is not supported`},
		{[]string{"creds", "--store", "redis://127.0.0.1:1/0", "--realm", "x", "--list"}, "", 1, "cannot reach Redis at 127.0.0.1:1"},
	} {
		code, out, errOut := runCLIStdin(tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.msg, out, errOut)
		}
		if strings.Contains(out+errOut, r.Password) || strings.Contains(out+errOut, "not-the-password") {
			t.Errorf("%v printed a password: %s%s", tc.args, out, errOut)
		}
	}
}

func TestRelayStoreUsage(t *testing.T) {
	t.Setenv("TURNWALL_RELAY_SECRETS", "")
	t.Setenv("TURNWALL_RELAY_USERS", "")
	t.Setenv("TURNWALL_RELAY_STORE", "")
	secret := writeSecrets(t, "a-secret-0123456789")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"relay", labPolicy}, 2, "or --store"},
		{[]string{"relay", labPolicy, "--secret-file", secret, "--fleet-quota", "user=2"}, 2, "--fleet-quota needs --store"},
		{[]string{"relay", labPolicy, "--store", "redis://127.0.0.1:1/0", "--fleet-quota", "user=0"}, 2, `--fleet-quota: "user=0": at least 1`},
		{[]string{"relay", labPolicy, "--store", "redis://127.0.0.1:1/0", "--fleet-quota", "lease=30s"}, 2, "one limit at least"},
		{[]string{"relay", labPolicy, "--store", "redis://127.0.0.1:1/0", "--fleet-quota", "user=2,color=red"}, 2, `"color=red"`},
		{[]string{"relay", labPolicy, "--secret-file", secret, "--store-password-file", secret}, 2, "--store-password-file needs --store"},
		{[]string{"relay", labPolicy, "--secret-file", secret, "--events"}, 2, "--events needs --store"},
		{[]string{"relay", labPolicy, "--store", "redis://127.0.0.1:1/0", "--store-interval", "0s"}, 2, "--store-interval 0s: must be positive"},
		{[]string{"relay", labPolicy, "--store", "redis://127.0.0.1:1/0"}, 1, "cannot reach Redis at 127.0.0.1:1"},
		{[]string{"relay", labPolicy, "--store", "redis//nohost"}, 1, "has no scheme"},
	} {
		code, out, errOut := runCLI(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.msg, out, errOut)
		}
	}
	// The store URL may come from the environment.
	t.Setenv("TURNWALL_RELAY_STORE", "redis://127.0.0.1:1/0")
	if code, _, errOut := runCLI("relay", labPolicy); code != 1 || !strings.Contains(errOut, "cannot reach Redis at 127.0.0.1:1") {
		t.Errorf("$TURNWALL_RELAY_STORE: exit %d %s", code, errOut)
	}
}

// TestRelayStorePostgres: a PostgreSQL store gives credentials; fleet
// quotas need Redis; a database without coturn's schema is refused at start.
func TestRelayStorePostgres(t *testing.T) {
	pg := storetest.StartPostgres(t)
	bare := pg.NewDatabase(t, false)
	code, _, errOut := runCLI("relay", labPolicy, "--store", bare.URL())
	if code != 1 || !strings.Contains(errOut, "load coturn's schema first") {
		t.Errorf("a database without the schema: exit %d %s", code, errOut)
	}
	d := pg.NewDatabase(t, true)
	code, _, errOut = runCLI("relay", labPolicy, "--store", d.URL(), "--fleet-quota", "user=2")
	if code != 2 || !strings.Contains(errOut, "fleet quotas need a Redis store") {
		t.Errorf("--fleet-quota on PostgreSQL: exit %d %s", code, errOut)
	}
	code, _, errOut = runCLI("relay", labPolicy, "--store", d.URL(), "--events")
	if code != 2 || !strings.Contains(errOut, "allocation events need a Redis store") {
		t.Errorf("--events on PostgreSQL: exit %d %s", code, errOut)
	}
	bad := strings.Replace(d.URL(), d.Password, "wrong-password", 1)
	code, out, errOut := runCLI("relay", labPolicy, "--store", bad)
	if code != 1 || !strings.Contains(errOut, "refused the password") || strings.Contains(out+errOut, "wrong-password") {
		t.Errorf("wrong password: exit %d %s", code, errOut)
	}
}

// TestRelayStoreCmd runs `turnwall relay --store` on loopback with a real
// Redis: credentials come from the store and change without a restart, the
// store's deny list narrows the peers, the store's metrics are exported, the
// fleet quota and the node registry are in Redis, a store outage keeps the
// last credentials, and SIGTERM removes the registration.
func TestRelayStoreCmd(t *testing.T) {
	bin, err := exec.LookPath("turnwall") // the test binary, installed by testscript
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	r := storetest.StartRedis(t)
	cl := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const realm = "lab.example.com"
	if code, _, errOut := runCLIStdin("first-secret-0123456789\n", "creds", "--store", r.URL(0), "--realm", realm, "--add-secret", "-"); code != 0 {
		t.Fatal(errOut)
	}
	// A loopback address of its own, so the policy's ports do not meet
	// other tests'.
	ip := netip.AddrFrom4([4]byte{127, 91, byte(os.Getpid() >> 8), byte(os.Getpid())})
	if ip.As4()[3] == 0 || ip.As4()[3] == 255 {
		ip = netip.MustParseAddr("127.91.0.7")
	}
	metricsAddr := net.JoinHostPort(ip.String(), fmt.Sprint(storetest.FreePort(t)))
	pwFile := writeTemp(t, "pw", r.Password+"\n")
	var log nstest.SyncBuffer
	cmd := exec.CommandContext(ctx, bin, "relay", labPolicy, "--listen-ip", ip.String(),
		"--store", redisURLNoPassword(r), "--store-password-file", pwFile, "--store-interval", "500ms",
		"--fleet-quota", "user=1,lease=2s", "--events", "--node-id", "node-a", "--node-lease", "1500ms",
		"--metrics", metricsAddr, "--udp-sockets", "1", "--log-format", "json")
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
	if strings.Contains(strings.Join(cmd.Args, " "), r.Password) {
		t.Fatal("the store password is on the command line")
	}
	server := netip.AddrPortFrom(ip, 3478)
	var clients []*turnclient.Client
	defer func() {
		for _, c := range clients {
			c.Refresh(context.Background(), 0)
			c.Close()
		}
	}()
	allocate := func(secret, user string, keep bool) error {
		u, p := creds.Generate(secret, user, time.Now().Add(time.Hour))
		c, err := turnclient.Dial(turnclient.Config{Server: server, Username: u, Password: p, Timeout: time.Second, RTO: 200 * time.Millisecond})
		if err != nil {
			return err
		}
		if _, _, err = c.Allocate(ctx, turnclient.AllocateOptions{}); err != nil || !keep {
			if err == nil {
				c.Refresh(ctx, 0)
			}
			c.Close()
			return err
		}
		clients = append(clients, c)
		return nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := allocate("first-secret-0123456789", "agent", false)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay does not accept the store's secret: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	metrics := func() string {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for _, want := range []string{"\nturnwall_relay_store_up 1\n", `turnwall_relay_store_entries{kind="secrets"} 1`, "turnwall_relay_fleet_quota_errors_total 0"} {
		if m := metrics(); !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Rotation through the store, no restart.
	if code, _, errOut := runCLIStdin("second-secret-0123456789\n", "creds", "--store", r.URL(0), "--realm", realm, "--add-secret", "-"); code != 0 {
		t.Fatal(errOut)
	}
	start := time.Now()
	for allocate("second-secret-0123456789", "agent", false) != nil {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the new secret is not accepted:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("new secret accepted by the running relay %v after `creds --store --add-secret`", time.Since(start).Round(time.Millisecond))
	runCLIStdin("first-secret-0123456789\n", "creds", "--store", r.URL(0), "--realm", realm, "--delete-secret", "-")
	start = time.Now()
	for turnclient.Code(allocate("first-secret-0123456789", "agent", false)) != 401 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the deleted secret is still accepted")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Fleet quota user=1: a second allocation of the same user is refused,
	// and Redis holds the first.
	if err := allocate("second-secret-0123456789", "carol", true); err != nil {
		t.Fatal(err)
	}
	if err := allocate("second-secret-0123456789", "carol", true); turnclient.Code(err) != 486 {
		t.Errorf("second allocation of carol: %v, want 486", err)
	}
	if n, _ := cl.ZCard(ctx, "turnwall/{"+realm+"}/quota/user/carol").Result(); n != 1 {
		t.Errorf("fleet quota members for carol: %d", n)
	}
	// --events: carol's allocation in coturn's statsdb form.
	if keys, _ := cl.Keys(ctx, "turn/realm/"+realm+"/user/carol/allocation/*/status").Result(); len(keys) != 1 {
		t.Errorf("statsdb status keys for carol: %q", keys)
	} else if v, _ := cl.Get(ctx, keys[0]).Result(); v != "new lifetime=600" {
		t.Errorf("carol's allocation status %q", v)
	}
	// The node registry holds this relay, its listeners and its load.
	var node struct {
		ID        string
		Listeners []struct{ Transport, Addr, Domain string }
		Load      struct{ Allocations int }
	}
	if until := time.Now().Add(3 * time.Second); true {
		for {
			v, err := cl.Get(ctx, "turnwall/{"+realm+"}/nodes/node-a").Result()
			if err == nil && json.Unmarshal([]byte(v), &node) == nil && node.Load.Allocations >= 1 {
				break
			}
			if time.Now().After(until) {
				t.Fatalf("registration: %q %v", v, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(node.Listeners) != 4 || node.Listeners[0].Addr != server.String() || node.Listeners[2].Domain != "turn.lab.example.com" {
		t.Errorf("registered listeners %+v", node.Listeners)
	}
	if ttl, _ := cl.PTTL(ctx, "turnwall/{"+realm+"}/nodes/node-a").Result(); ttl <= 0 || ttl > 1500*time.Millisecond {
		t.Errorf("registration TTL %v, want the 1.5 s lease", ttl)
	}

	// The store's deny list narrows the policy's peers.
	if err := cl.SAdd(ctx, "turn/realm/"+realm+"/denied-peer-ip", "198.51.100.0-198.51.100.255").Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	c := clients[0]
	if err := c.CreatePermission(ctx, netip.MustParseAddr("198.51.100.7")); turnclient.Code(err) != 403 {
		t.Errorf("permission to a peer the store denies: %v, want 403", err)
	}
	if err := c.CreatePermission(ctx, netip.MustParseAddr("203.0.113.9")); err != nil {
		t.Errorf("permission to a policy peer the store does not deny: %v", err)
	}

	// Store outage: the last credentials stay, the metric says so.
	r.Stop()
	start = time.Now()
	for !strings.Contains(metrics(), "\nturnwall_relay_store_up 0\n") {
		if time.Since(start) > 5*time.Second {
			t.Fatal("store_up stays 1 with Redis stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := allocate("second-secret-0123456789", "agent", false); err != nil {
		t.Errorf("allocation during the store outage: %v", err)
	}
	if !strings.Contains(log.String(), "store unreachable: keeping the last credentials read") {
		t.Error("the outage is not logged")
	}
	r.Start(t)
	start = time.Now()
	for !strings.Contains(metrics(), "\nturnwall_relay_store_up 1\n") {
		if time.Since(start) > 10*time.Second {
			t.Fatal("store_up stays 0 with Redis back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("store recovered %v after Redis restarted", time.Since(start).Round(time.Millisecond))
	for !strings.Contains(log.String(), "node registry: registered again") {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the node registry does not recover:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not stop on SIGTERM")
	}
	if n, _ := cl.Exists(ctx, "turnwall/{"+realm+"}/nodes/node-a").Result(); n != 0 {
		t.Errorf("the registration outlives a clean stop:\n%s", log.String())
	}
	if strings.Contains(log.String(), r.Password) {
		t.Error("the log holds the store password")
	}
}
