package store_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
)

const realm = "north.example"

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logBuf is a slog sink the test can read.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
	t  testing.TB
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	return len(p), nil
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openStore(t testing.TB, url string) (*store.Store, *logBuf) {
	t.Helper()
	lb := &logBuf{t: t}
	s, err := store.Open(ctxT(t), url, realm, store.Options{Logger: slog.New(slog.NewTextHandler(lb, nil)), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Log(lb.String())
		}
	})
	return s, lb
}

// db is one database under test: its URL, turnadmin's arguments for it and
// a way to write what turnadmin cannot (peer lists, bad entries).
type db struct {
	url      string
	turnArgs []string // -N conn or -e conn
	raw      func(t testing.TB, kind, value string)
	users    func(t testing.TB, n int) // adds n users user0..user(n-1)
}

func redisDB(t testing.TB, r *storetest.Redis, n int) db {
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password, DB: n})
	t.Cleanup(func() { c.Close() })
	return db{url: r.URL(n), turnArgs: []string{"-N", r.CoturnConn(n)}, raw: func(t testing.TB, kind, value string) {
		p := "turn/realm/" + realm + "/"
		var err error
		switch kind {
		case "secret":
			err = c.SAdd(context.Background(), p+"secret", value).Err()
		case "allowed", "denied":
			err = c.SAdd(context.Background(), p+kind+"-peer-ip", value).Err()
		default: // user name=hexkey
			name, key, _ := strings.Cut(value, "=")
			err = c.Set(context.Background(), p+"user/"+name+"/key", key, 0).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}, users: func(t testing.TB, n int) {
		pipe := c.Pipeline()
		for i := 0; i < n; i++ {
			pipe.Set(context.Background(), fmt.Sprintf("turn/realm/%s/user/user%d/key", realm, i), "7da2270ccfa49786e0115366d3a3d14d", 0)
		}
		if _, err := pipe.Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
	}}
}

func pgDB(t testing.TB, pg *storetest.Postgres) db {
	d := pg.NewDatabase(t, true)
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	return db{url: d.URL(), turnArgs: []string{"-e", d.CoturnConn()}, raw: func(t testing.TB, kind, value string) {
		switch kind {
		case "secret":
			d.Exec(t, fmt.Sprintf("INSERT INTO turn_secret (realm, value) VALUES (%s, %s)", q(realm), q(value)))
		case "allowed", "denied":
			d.Exec(t, fmt.Sprintf("INSERT INTO %s_peer_ip (realm, ip_range) VALUES (%s, %s)", kind, q(realm), q(value)))
		default:
			name, key, _ := strings.Cut(value, "=")
			d.Exec(t, fmt.Sprintf("INSERT INTO turnusers_lt (realm, name, hmackey) VALUES (%s, %s, %s)", q(realm), q(name), q(key)))
		}
	}, users: func(t testing.TB, n int) {
		d.Exec(t, fmt.Sprintf(`INSERT INTO turnusers_lt (realm, name, hmackey)
			SELECT %s, 'user' || i, '7da2270ccfa49786e0115366d3a3d14d' FROM generate_series(0, %d) AS i`, q(realm), n-1))
	}}
}

// TestRedis and TestPostgres run the same checks on a real server each.
func TestRedis(t *testing.T) {
	r := storetest.StartRedis(t)
	n := 0
	next := func(t testing.TB) db { n++; return redisDB(t, r, n) }
	runCommon(t, next)
	t.Run("wrong-type", func(t *testing.T) {
		d := next(t)
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: r.Password, DB: n})
		defer c.Close()
		c.Set(ctxT(t), "turn/realm/"+realm+"/secret", "not-a-set", 0)
		_, err := store.Open(ctxT(t), d.url, realm, store.Options{})
		wantErr(t, err, `"turn/realm/north.example/secret" is a string`, "set")
	})
	t.Run("keyspace-notifications", func(t *testing.T) {
		d := next(t)
		s, _ := openStore(t, d.url)
		// Polling every 10 s: only a notification can deliver it sooner.
		got := rotation(t, s, d, 10*time.Second, 0)
		t.Logf("rotation seen after %v with keyspace notifications (poll 10 s)", got)
		if got > 3*time.Second {
			t.Errorf("keyspace notification took %v", got)
		}
	})
	t.Run("outage", func(t *testing.T) {
		r2 := storetest.StartRedis(t)
		outage(t, redisDB(t, r2, 0), func() { r2.Stop() }, func() { r2.Start(t) })
	})
	t.Run("coturn-example-database", func(t *testing.T) {
		// coturn's own example database, from the script its package ships.
		script, err := os.ReadFile("/usr/share/coturn/testredisdbsetup.sh")
		if err != nil {
			storetest.Need(t, "/usr/share/coturn/testredisdbsetup.sh")
		}
		_, body, _ := strings.Cut(string(script), "<<!\n")
		body, _, _ = strings.Cut(body, "\n!")
		var cmds []string
		for _, line := range strings.Split(body, "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] != "AUTH" && f[0] != "SELECT" {
				cmds = append(cmds, line)
			}
		}
		cli := exec.Command(storetest.Need(t, "redis-cli"), "-h", "127.0.0.1", "-p", fmt.Sprint(r.Port), "-n", "12", "--no-auth-warning", "-a", r.Password)
		cli.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
		if out, err := cli.CombinedOutput(); err != nil || strings.Contains(string(out), "ERR") {
			t.Fatalf("redis-cli: %v\n%s", err, out)
		}
		for _, tc := range []struct {
			realm, users, peers string
			passwords           map[string]string
		}{
			{"north.gov", "gorst ninefingers", "[172.17.13.200-172.17.13.201] [172.17.13.133-172.17.14.56 172.17.17.133-172.17.19.56 123::45-123::45]",
				map[string]string{"gorst": "hero", "ninefingers": "youhavetoberealistic"}},
			{"crinna.org", "stranger-come-knocking whirrun", "[172.17.13.202-172.17.13.202] [123::77-123::77]",
				map[string]string{"whirrun": "sword", "stranger-come-knocking": "civilization"}},
		} {
			s, err := store.Open(ctxT(t), r.URL(12), tc.realm, store.Options{})
			must(t, err)
			st := s.Snapshot()
			s.Close()
			var names []string
			for n, k := range st.Users {
				names = append(names, n)
				if want := creds.Key(n, tc.realm, tc.passwords[n]); string(k) != string(want) {
					t.Errorf("%s %s: key %x, want MD5(name:realm:password) %x", tc.realm, n, k, want)
				}
			}
			slices.Sort(names)
			if strings.Join(names, " ") != tc.users {
				t.Errorf("%s users %q", tc.realm, names)
			}
			if got := fmt.Sprint(st.AllowedPeers, " ", st.DeniedPeers); got != tc.peers {
				t.Errorf("%s peers %s", tc.realm, got)
			}
			// The example's secrets ("logen", "bloody9", "north", "library")
			// are too short to be used.
			if len(st.Secrets) != 0 || len(st.Invalid) != 2 {
				t.Errorf("%s secrets %q invalid %q", tc.realm, st.Secrets, st.Invalid)
			}
		}
	})
	t.Run("notifications-survive-restart", func(t *testing.T) {
		r3 := storetest.StartRedis(t)
		d := redisDB(t, r3, 0)
		s, _ := openStore(t, d.url)
		states := make(chan store.State, 16)
		ctx, cancel := context.WithCancel(ctxT(t))
		done := make(chan struct{})
		go func() { defer close(done); s.Watch(ctx, time.Minute, func(st store.State) { states <- st }) }()
		defer func() { cancel(); <-done }()
		time.Sleep(100 * time.Millisecond)
		r3.Stop()
		r3.Start(t)
		// The subscription comes back by itself; write until a notification
		// (not the one-minute poll) delivers it.
		start := time.Now()
		for i := 0; ; i++ {
			d.raw(t, "secret", fmt.Sprintf("after-restart-secret-%02d", i))
			select {
			case <-states:
				t.Logf("keyspace notifications back %v after the restart", time.Since(start).Round(time.Millisecond))
				return
			case <-time.After(500 * time.Millisecond):
			}
			if time.Since(start) > 20*time.Second {
				t.Fatal("no notification within 20 s of the restart")
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		good := fmt.Sprintf("redis://:%s@%s/0", r.Password, r.Addr())
		_, err := store.Open(ctxT(t), fmt.Sprintf("redis://:wrong-password@%s/0", r.Addr()), realm, store.Options{})
		wantErr(t, err, "refused the password")
		noPass(t, err, "wrong-password")
		_, err = store.Open(ctxT(t), fmt.Sprintf("redis://%s/0", r.Addr()), realm, store.Options{})
		wantErr(t, err, "requires a password")
		_, err = store.Open(ctxT(t), fmt.Sprintf("redis://:%s@%s/99", r.Password, r.Addr()), realm, store.Options{})
		wantErr(t, err, "no database 99")
		_, err = store.Open(ctxT(t), fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", r.Password, storetest.FreePort(t)), realm, store.Options{})
		wantErr(t, err, "cannot reach Redis")
		noPass(t, err, r.Password)
		_, err = store.Open(ctxT(t), good, "", store.Options{})
		wantErr(t, err, "realm is empty")
		_, err = store.Open(ctxT(t), strings.Replace(good, "/0", "/x", 1), realm, store.Options{})
		wantErr(t, err, "store URL")
		noPass(t, err, r.Password)
	})
}

func TestPostgres(t *testing.T) {
	pg := storetest.StartPostgres(t)
	next := func(t testing.TB) db { return pgDB(t, pg) }
	runCommon(t, next)
	t.Run("schema", func(t *testing.T) {
		bare := pg.NewDatabase(t, false)
		_, err := store.Open(ctxT(t), bare.URL(), realm, store.Options{})
		wantErr(t, err, "lacks coturn's table allowed_peer_ip, table denied_peer_ip, table turn_secret, table turnusers_lt",
			"/usr/share/coturn/schema.sql")
		bare.Exec(t, "CREATE TABLE turn_secret (realm varchar(127), value varchar(256)); CREATE TABLE turnusers_lt (realm varchar(127), name varchar(512))")
		_, err = store.Open(ctxT(t), bare.URL(), realm, store.Options{})
		wantErr(t, err, "column turnusers_lt.hmackey, table allowed_peer_ip, table denied_peer_ip;")
	})
	t.Run("coturn-example-database", func(t *testing.T) {
		// coturn's own example data, from the file its package ships.
		sql, err := os.ReadFile("/usr/share/coturn/testsqldbsetup.sql")
		if err != nil {
			storetest.Need(t, "/usr/share/coturn/testsqldbsetup.sql")
		}
		d := pg.NewDatabase(t, true)
		d.Exec(t, string(sql))
		for _, tc := range []struct {
			realm, users, peers string
			passwords           map[string]string
		}{
			// Entries without a realm apply to both.
			{"north.gov", "gorst ninefingers", "[172.17.13.200-172.17.13.201] [172.17.13.133-172.17.14.56 172.17.17.133-172.17.19.56 123::45-123::45]",
				map[string]string{"gorst": "hero", "ninefingers": "youhavetoberealistic"}},
			{"crinna.org", "stranger-come-knocking whirrun", "[172.17.13.200-172.17.13.200 172.17.13.202-172.17.13.202] [172.17.13.133-172.17.14.56 123::45-123::45 123::77-123::77]",
				map[string]string{"whirrun": "sword", "stranger-come-knocking": "civilization"}},
		} {
			s, err := store.Open(ctxT(t), d.URL(), tc.realm, store.Options{})
			must(t, err)
			st := s.Snapshot()
			s.Close()
			var names []string
			for n, k := range st.Users {
				names = append(names, n)
				if want := creds.Key(n, tc.realm, tc.passwords[n]); string(k) != string(want) {
					t.Errorf("%s %s: key %x, want %x", tc.realm, n, k, want)
				}
			}
			slices.Sort(names)
			if strings.Join(names, " ") != tc.users {
				t.Errorf("%s users %q", tc.realm, names)
			}
			if got := fmt.Sprint(st.AllowedPeers, " ", st.DeniedPeers); got != tc.peers {
				t.Errorf("%s peers %s", tc.realm, got)
			}
			if len(st.Secrets) != 0 || len(st.Invalid) != 2 {
				t.Errorf("%s secrets %q invalid %q", tc.realm, st.Secrets, st.Invalid)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		d := pg.NewDatabase(t, true)
		_, err := store.Open(ctxT(t), pg.URL(d.Name, d.User, "wrong-password"), realm, store.Options{})
		wantErr(t, err, "refused the password of user")
		noPass(t, err, "wrong-password")
		_, err = store.Open(ctxT(t), pg.URL("nosuchdb", pg.SuperUser, pg.SuperPassword), realm, store.Options{})
		wantErr(t, err, `no database "nosuchdb"`, "schema.sql")
		noPass(t, err, pg.SuperPassword)
		_, err = store.Open(ctxT(t), fmt.Sprintf("postgres://u:secretpw@127.0.0.1:%d/x?sslmode=disable", storetest.FreePort(t)), realm, store.Options{})
		wantErr(t, err, "cannot reach PostgreSQL")
		noPass(t, err, "secretpw")
		_, err = store.Open(ctxT(t), d.URL()+"&sslmode=bogus", realm, store.Options{})
		wantErr(t, err, "store URL")
		noPass(t, err, d.Password)
	})
	// Last: it stops the server.
	t.Run("outage", func(t *testing.T) {
		outage(t, pgDB(t, pg), pg.Stop, func() { pg.Start(t) })
	})
}

// outage stops the database under a watching store: the last good state
// stays, the metrics say down; after a restart the store recovers and sees
// a change made meanwhile.
func outage(t *testing.T, d db, stop, start func()) {
	d.raw(t, "secret", "before-the-outage-secret")
	s, lb := openStore(t, d.url)
	reg := prometheus.NewPedanticRegistry()
	must(t, s.Register(reg))
	states := make(chan store.State, 16)
	ctx, cancel := context.WithCancel(ctxT(t))
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, 200*time.Millisecond, func(st store.State) { states <- st }) }()
	defer func() { cancel(); <-done }()

	up := func() float64 { return testutil.ToFloat64(s.Collectors()[0]) }
	errs := func() float64 { return testutil.ToFloat64(s.Collectors()[1]) }
	stopped := time.Now()
	stop()
	deadline := time.Now().Add(15 * time.Second)
	for up() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if up() != 0 {
		t.Fatal("store_up still 1 with the server stopped")
	}
	t.Logf("%s: outage seen (store_up 0) after %v", s.Kind(), time.Since(stopped).Round(time.Millisecond))
	time.Sleep(time.Second) // several failed polls
	if st := s.Snapshot(); !slices.Equal(st.Secrets, []string{"before-the-outage-secret"}) || s.Up() {
		t.Errorf("during the outage: secrets %q up %v", st.Secrets, s.Up())
	}
	if n := errs(); n < 2 {
		t.Errorf("errors_total %v during the outage", n)
	}
	if n := strings.Count(lb.String(), "store unreachable"); n != 1 {
		t.Errorf("%d outage log lines; want 1 (repeats are spaced 30 s)", n)
	}
	select {
	case st := <-states:
		t.Errorf("Watch delivered a state during the outage: %+v", st)
	default:
	}
	restarted := time.Now()
	start()
	d.raw(t, "secret", "after-the-outage-secret")
	select {
	case st := <-states:
		if !slices.Contains(st.Secrets, "after-the-outage-secret") || !slices.Contains(st.Secrets, "before-the-outage-secret") {
			t.Errorf("after the outage: %q", st.Secrets)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no state after the restart")
	}
	t.Logf("%s: recovered %v after the restart", s.Kind(), time.Since(restarted).Round(time.Millisecond))
	if up() != 1 || !strings.Contains(lb.String(), "store reachable again") {
		t.Errorf("after the restart: up %v, log:\n%s", up(), lb.String())
	}
	if ts := testutil.ToFloat64(s.Collectors()[3]); time.Since(time.Unix(int64(ts), 0)) > 5*time.Second {
		t.Errorf("last_success_timestamp_seconds %v", ts)
	}
}

func wantErr(t testing.TB, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one with %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
}

func noPass(t testing.TB, err error, pw string) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), pw) {
		t.Errorf("error shows the password: %v", err)
	}
}

func runCommon(t *testing.T, next func(testing.TB) db) {
	t.Run("turnadmin-writes-we-read", func(t *testing.T) {
		d := next(t)
		s, _ := openStore(t, d.url)
		storetest.Turnadmin(t, append([]string{"-a", "-u", "gorst", "-r", realm, "-p", "hero"}, d.turnArgs...)...)
		storetest.Turnadmin(t, append([]string{"-s", "logen-logen-logen-logen", "-r", realm}, d.turnArgs...)...)
		storetest.Turnadmin(t, append([]string{"-s", "bloody9-bloody9-bloody9", "-r", realm}, d.turnArgs...)...)
		storetest.Turnadmin(t, append([]string{"-a", "-u", "other", "-r", "other.example", "-p", "x"}, d.turnArgs...)...)
		st, changed, err := s.Reload(ctxT(t))
		if err != nil || !changed {
			t.Fatal(err, changed)
		}
		if want := []string{"bloody9-bloody9-bloody9", "logen-logen-logen-logen"}; !slices.Equal(st.Secrets, want) {
			t.Errorf("secrets %q, want %q", st.Secrets, want)
		}
		if len(st.Users) != 1 || hex.EncodeToString(st.Users["gorst"]) != hex.EncodeToString(creds.Key("gorst", realm, "hero")) {
			t.Errorf("users %x, want gorst's MD5(gorst:realm:hero) only", st.Users)
		}
		// The same key turnadmin -k prints.
		k, _, _ := strings.Cut(storetest.Turnadmin(t, "-k", "-u", "gorst", "-r", realm, "-p", "hero"), "\n")
		if k != "0x"+hex.EncodeToString(st.Users["gorst"]) {
			t.Errorf("turnadmin -k %q, store %x", k, st.Users["gorst"])
		}
		storetest.Turnadmin(t, append([]string{"-d", "-u", "gorst", "-r", realm}, d.turnArgs...)...)
		storetest.Turnadmin(t, append([]string{"-X", "logen-logen-logen-logen", "-r", realm}, d.turnArgs...)...)
		st, _, _ = s.Reload(ctxT(t))
		if len(st.Users) != 0 || !slices.Equal(st.Secrets, []string{"bloody9-bloody9-bloody9"}) {
			t.Errorf("after turnadmin -d and -X: users %x, secrets %q", st.Users, st.Secrets)
		}
	})
	t.Run("we-write-turnadmin-reads", func(t *testing.T) {
		d := next(t)
		s, _ := openStore(t, d.url)
		ctx := ctxT(t)
		must(t, s.PutUser(ctx, "ninefingers", creds.Key("ninefingers", realm, "youhavetoberealistic")))
		must(t, s.PutUser(ctx, "gorst", creds.Key("gorst", realm, "old")))
		must(t, s.PutUser(ctx, "gorst", creds.Key("gorst", realm, "hero"))) // replaces
		must(t, s.PutSecret(ctx, "north-north-north-north"))
		must(t, s.PutSecret(ctx, "north-north-north-north")) // twice is once
		must(t, s.PutSecret(ctx, "library-library-library"))
		users := storetest.TurnadminList(t, realm, append([]string{"-l", "-r", realm}, d.turnArgs...)...)
		slices.Sort(users)
		if !slices.Equal(users, []string{"gorst", "ninefingers"}) {
			t.Errorf("turnadmin -l: %q", users)
		}
		secrets := storetest.TurnadminList(t, realm, append([]string{"-S", "-r", realm}, d.turnArgs...)...)
		slices.Sort(secrets)
		if !slices.Equal(secrets, []string{"library-library-library", "north-north-north-north"}) {
			t.Errorf("turnadmin -S: %q", secrets)
		}
		must(t, s.DeleteUser(ctx, "ninefingers"))
		must(t, s.DeleteUser(ctx, "nobody-here"))
		must(t, s.DeleteSecret(ctx, "north-north-north-north"))
		if users := storetest.TurnadminList(t, realm, append([]string{"-l", "-r", realm}, d.turnArgs...)...); !slices.Equal(users, []string{"gorst"}) {
			t.Errorf("turnadmin -l after delete: %q", users)
		}
		if secrets := storetest.TurnadminList(t, realm, append([]string{"-S", "-r", realm}, d.turnArgs...)...); !slices.Equal(secrets, []string{"library-library-library"}) {
			t.Errorf("turnadmin -S after delete: %q", secrets)
		}
		// Writers refuse what the relay could not use.
		wantErr(t, s.PutSecret(ctx, "short"), "at least 16")
		wantErr(t, s.PutSecret(ctx, "sixteen-bytes-and\nmore"), "control")
		wantErr(t, s.PutUser(ctx, "bad name", creds.Key("x", realm, "y")), "spaces")
		wantErr(t, s.PutUser(ctx, "1700000000:alice", creds.Key("x", realm, "y")), "REST API")
		wantErr(t, s.PutUser(ctx, "alice", []byte{1, 2, 3}), "16")
	})
	t.Run("peers-and-invalid-entries", func(t *testing.T) {
		d := next(t)
		// coturn's own example data (testredisdbsetup.sh, schema.userdb.redis).
		for _, v := range []string{"172.17.13.200", "172.17.13.201", "10.30.0.0/17"} {
			d.raw(t, "allowed", v)
		}
		for _, v := range []string{"172.17.13.133-172.17.14.56", "172.17.17.133-172.17.19.56", "123::45", "not-an-ip", "10.0.0.9-10.0.0.1"} {
			d.raw(t, "denied", v)
		}
		d.raw(t, "secret", "logen") // coturn's example: too short for us
		d.raw(t, "secret", "a-long-enough-secret")
		d.raw(t, "user", "gorst=7da2270ccfa49786e0115366d3a3d14d")
		d.raw(t, "user", "sha256user="+strings.Repeat("ab", 32))
		d.raw(t, "user", "nothex=zz2270ccfa49786e0115366d3a3d14d")
		d.raw(t, "user", "1700000000:x=7da2270ccfa49786e0115366d3a3d14d")
		s, lb := openStore(t, d.url)
		st := s.Snapshot()
		if got := fmt.Sprint(st.AllowedPeers); got != "[10.30.0.0-10.30.127.255 172.17.13.200-172.17.13.201]" {
			t.Errorf("allowed %s", got)
		}
		if got := fmt.Sprint(st.DeniedPeers); got != "[172.17.13.133-172.17.14.56 172.17.17.133-172.17.19.56 123::45-123::45]" {
			t.Errorf("denied %s", got)
		}
		if !slices.Equal(st.Secrets, []string{"a-long-enough-secret"}) || len(st.Users) != 1 || st.Users["gorst"] == nil {
			t.Errorf("secrets %q users %x", st.Secrets, st.Users)
		}
		if len(st.Invalid) != 6 {
			t.Errorf("invalid: %q", st.Invalid)
		}
		for _, want := range []string{`denied-peer-ip \"not-an-ip\"`, "secret of 5 bytes", `user \"sha256user\": key of 64 hex digits`} {
			if !strings.Contains(lb.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, lb.String())
			}
		}
		// A name with a line break cannot forge a log line.
		d.raw(t, "user", "evil\nlevel=ERROR msg=forged=7da2270ccfa49786e0115366d3a3d14d")
		s.Reload(ctxT(t))
		for _, line := range strings.Split(lb.String(), "\n") {
			if strings.HasPrefix(line, "level=ERROR msg=forged") {
				t.Errorf("forged log line: %s", line)
			}
		}
	})
	t.Run("rotation", func(t *testing.T) {
		d := next(t)
		s, _ := openStore(t, d.url)
		if s.Kind() == "redis" {
			// Polling alone: switch the server's notifications off.
			c, _ := redis.ParseURL(d.url)
			rc := redis.NewClient(c)
			defer rc.Close()
			rc.ConfigSet(ctxT(t), "notify-keyspace-events", "")
			defer rc.ConfigSet(context.Background(), "notify-keyspace-events", "Kg$s")
		}
		var worst time.Duration
		for i := 0; i < 3; i++ {
			// Write at different points of the poll cycle.
			got := rotation(t, s, d, store.DefaultInterval, time.Duration(i)*700*time.Millisecond)
			worst = max(worst, got)
			t.Logf("%s: rotation %d seen after %v (poll %v)", s.Kind(), i, got, store.DefaultInterval)
		}
		// The poll interval, plus turnadmin's run and a read, with room for
		// a loaded machine.
		if worst > store.DefaultInterval+2*time.Second {
			t.Errorf("a new secret took %v to be seen; poll interval %v", worst, store.DefaultInterval)
		}
	})
	t.Run("ten-thousand-users", func(t *testing.T) {
		// What one poll costs with a large user table.
		d := next(t)
		d.users(t, 10000)
		s, _ := openStore(t, d.url)
		var worst time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			st, _, err := s.Reload(ctxT(t))
			must(t, err)
			worst = max(worst, time.Since(start))
			if len(st.Users) != 10000 {
				t.Fatalf("%d users", len(st.Users))
			}
		}
		t.Logf("%s: one read of 10000 users took at most %v", s.Kind(), worst.Round(time.Millisecond))
		if worst > store.DefaultInterval/2 {
			t.Errorf("a read of 10000 users took %v; the poll interval is %v", worst, store.DefaultInterval)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		d := next(t)
		d.raw(t, "secret", "a-long-enough-secret")
		s, _ := openStore(t, d.url)
		reg := prometheus.NewPedanticRegistry()
		must(t, s.Register(reg))
		n, err := testutil.GatherAndCount(reg)
		if err != nil || n < 6 {
			t.Fatal(n, err)
		}
		if v := testutil.ToFloat64(s.Collectors()[0]); v != 1 {
			t.Errorf("up %v", v)
		}
	})
}

// rotation writes a new secret with turnadmin offset after Watch started,
// and returns how long Watch took to deliver it.
func rotation(t *testing.T, s *store.Store, d db, interval, offset time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	secret := fmt.Sprintf("rotated-secret-%d", time.Now().UnixNano())
	seen := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, interval, func(st store.State) {
			if slices.Contains(st.Secrets, secret) {
				select {
				case seen <- time.Now():
				default:
				}
			}
		})
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(100*time.Millisecond + offset) // Watch subscribed
	start := time.Now()
	storetest.Turnadmin(t, append([]string{"-s", secret, "-r", realm}, d.turnArgs...)...)
	select {
	case at := <-seen:
		return at.Sub(start)
	case <-time.After(interval + 5*time.Second):
		t.Fatalf("new secret not seen within %v", interval+5*time.Second)
	}
	return 0
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
