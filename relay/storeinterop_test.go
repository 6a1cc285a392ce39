package relay

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
	"github.com/turnwall/turnwall/relay/store/storetest"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// interopWait bounds how long a server may take to follow a change
// turnadmin made: coturn reads the database on every Allocate, a turnwall
// relay within its store interval (sooner on Redis, through keyspace
// notifications); the rest is room for a loaded machine.
const interopWait = store.DefaultInterval + 3*time.Second

// TestStoreInterop: coturn's turnserver and a turnwall relay on the same
// Redis and on the same PostgreSQL database accept a long-term user and a
// REST API secret written with coturn's turnadmin, refuse a wrong password
// and a user of another realm, and refuse the user and the secret once
// turnadmin deletes them, without a restart.
func TestStoreInterop(t *testing.T) {
	for _, tc := range []struct {
		name string
		// db starts the database and returns the store URL, turnserver's
		// and turnadmin's arguments for it.
		db func(t *testing.T) (url, serverArg string, adminArgs []string)
	}{
		{"redis", func(t *testing.T) (string, string, []string) {
			r := storetest.StartRedis(t)
			return r.URL(0), "--redis-userdb=" + r.CoturnConn(0), []string{"-N", r.CoturnConn(0)}
		}},
		{"postgres", func(t *testing.T) (string, string, []string) {
			d := storetest.StartPostgres(t).NewDatabase(t, true)
			return d.URL(), "--psql-userdb=" + d.CoturnConn(), []string{"-e", d.CoturnConn()}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Need(t, "turnadmin")
			url, serverArg, adminArgs := tc.db(t)
			turnadmin := func(args ...string) {
				t.Helper()
				storetest.Turnadmin(t, append(append(args, "-r", testRealm), adminArgs...)...)
			}

			type server struct {
				name        string
				addr        netip.AddrPort
				users, rest bool // accepts long-term users, REST credentials
			}
			coturnUsers := storetest.StartCoturn(t, testRealm, serverArg, "--lt-cred-mech")
			coturnREST := storetest.StartCoturn(t, testRealm, serverArg, "--use-auth-secret")
			node := startStoreNode(t, url, "interop.test", loopback, storeNodeOptions{interval: store.DefaultInterval})
			relayAddr, _ := node.Listener(UDP)
			servers := []server{
				{"coturn --lt-cred-mech", coturnUsers.Addr, true, false},
				{"coturn --use-auth-secret", coturnREST.Addr, false, true},
				{"turnwall relay", relayAddr, true, true},
			}
			defer func() {
				if t.Failed() {
					t.Logf("coturn --lt-cred-mech:\n%s\ncoturn --use-auth-secret:\n%s\nturnwall relay:\n%s",
						coturnUsers.Output(), coturnREST.Output(), node.log.String())
				}
			}()

			// allocate asks s for an allocation over UDP and deletes it
			// when it is granted.
			allocate := func(s server, user, pass string) error {
				c, err := turnclient.Dial(turnclient.Config{Transport: UDP, Server: s.addr, Username: user, Password: pass,
					RTO: 200 * time.Millisecond, Timeout: 2 * time.Second})
				if err != nil {
					return err
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, _, err = c.Allocate(ctx, turnclient.AllocateOptions{})
				if err == nil {
					c.Refresh(ctx, 0)
				}
				return err
			}
			// follow polls until s gives want (0: an allocation, or an
			// error code) or interopWait passes, and logs how long after
			// the change it did.
			var changed time.Time
			follow := func(s server, what, user, pass string, want int) {
				t.Helper()
				var err error
				took := until(interopWait, func() bool {
					err = allocate(s, user, pass)
					if want == 0 {
						return err == nil
					}
					return turnclient.Code(err) == want
				})
				verb := fmt.Sprintf("refuses (%d)", want)
				if want == 0 {
					verb = "accepts"
				}
				if took == 0 {
					t.Errorf("%s: after %v, %s: %v; want it %s", s.name, interopWait, what, err, verb)
					return
				}
				t.Logf("%s %s %s %v after the change", s.name, verb, what, time.Since(changed).Round(time.Millisecond))
			}

			const (
				name, pass = "agent-interop", "interop-password"
				secret     = "interop-shared-secret-0001"
			)
			restUser, restPass := creds.Generate(secret, "agent-rest", time.Now().Add(time.Hour))
			otherUser, otherPass := creds.Generate("not-the-shared-secret-01", "agent-rest", time.Now().Add(time.Hour))

			// Nothing is in the store yet: everyone refuses.
			for _, s := range servers {
				if s.users {
					if err := allocate(s, name, pass); turnclient.Code(err) != 401 {
						t.Fatalf("%s: a user not yet written: %v; want 401", s.name, err)
					}
				}
				if s.rest {
					if err := allocate(s, restUser, restPass); turnclient.Code(err) != 401 {
						t.Fatalf("%s: a secret not yet written: %v; want 401", s.name, err)
					}
				}
			}

			turnadmin("-a", "-u", name, "-p", pass)
			// The same name and password in another realm: a user of
			// another fleet on the same database.
			storetest.Turnadmin(t, append([]string{"-a", "-u", "agent-other", "-p", pass, "-r", "other.example"}, adminArgs...)...)
			turnadmin("-s", secret)
			changed = time.Now()
			for _, s := range servers {
				if s.users {
					follow(s, "the user turnadmin -a wrote", name, pass, 0)
					if err := allocate(s, name, "wrong-password"); turnclient.Code(err) != 401 {
						t.Errorf("%s: the user with a wrong password: %v; want 401", s.name, err)
					}
					if err := allocate(s, "agent-other", pass); turnclient.Code(err) != 401 {
						t.Errorf("%s: a user of another realm: %v; want 401", s.name, err)
					}
				}
				if s.rest {
					follow(s, "REST credentials from the secret turnadmin -s wrote", restUser, restPass, 0)
					if err := allocate(s, restUser, "wrong-password"); turnclient.Code(err) != 401 {
						t.Errorf("%s: REST credentials with a wrong password: %v; want 401", s.name, err)
					}
					if err := allocate(s, otherUser, otherPass); turnclient.Code(err) != 401 {
						t.Errorf("%s: REST credentials from another secret: %v; want 401", s.name, err)
					}
				}
			}
			if t.Failed() {
				t.FailNow()
			}

			turnadmin("-d", "-u", name)
			turnadmin("-X", secret)
			changed = time.Now()
			for _, s := range servers {
				if s.users {
					follow(s, "the user turnadmin -d deleted", name, pass, 401)
				}
				if s.rest {
					follow(s, "REST credentials from the secret turnadmin -X deleted", restUser, restPass, 401)
				}
			}
		})
	}
}
