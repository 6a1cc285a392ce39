package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store/storetest"
	"github.com/turnwall/turnwall/relay/turnclient"
)

// TestCoturnFleet: a running coturn reads what the store writes, live, from
// Redis and from PostgreSQL: long-term users and REST API secrets, added and
// removed without restarting it. This is what lets turnwall relays and a
// coturn fleet share one database.
func TestCoturnFleet(t *testing.T) {
	r := storetest.StartRedis(t)
	pg := storetest.StartPostgres(t)
	d := pg.NewDatabase(t, true)
	for _, tc := range []struct{ name, url, dbArg string }{
		{"redis", r.URL(3), "--redis-userdb=" + r.CoturnConn(3)},
		{"postgres", d.URL(), "--psql-userdb=" + d.CoturnConn()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t, tc.url)
			ctx := ctxT(t)
			users := storetest.StartCoturn(t, realm, tc.dbArg, "--lt-cred-mech")
			rest := storetest.StartCoturn(t, realm, tc.dbArg, "--use-auth-secret")
			allocate := func(c *storetest.Coturn, user, pass string) error {
				cl, err := turnclient.Dial(turnclient.Config{Server: c.Addr, Username: user, Password: pass, Timeout: 3 * time.Second})
				if err != nil {
					return err
				}
				defer cl.Close()
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				_, _, err = cl.Allocate(actx, turnclient.AllocateOptions{})
				if err == nil {
					cl.Refresh(actx, 0)
				}
				return err
			}
			defer func() {
				if t.Failed() {
					t.Logf("coturn (users):\n%s\ncoturn (REST):\n%s", users.Output(), rest.Output())
				}
			}()

			if err := allocate(users, "agent-7", "pw-7"); turnclient.Code(err) != 401 {
				t.Fatalf("unknown user: %v; want 401", err)
			}
			must(t, s.PutUser(ctx, "agent-7", creds.Key("agent-7", realm, "pw-7")))
			if err := allocate(users, "agent-7", "pw-7"); err != nil {
				t.Fatalf("coturn refuses a user the store wrote: %v", err)
			}
			if err := allocate(users, "agent-7", "wrong"); turnclient.Code(err) != 401 {
				t.Errorf("wrong password: %v; want 401", err)
			}
			must(t, s.DeleteUser(ctx, "agent-7"))
			if err := allocate(users, "agent-7", "pw-7"); turnclient.Code(err) != 401 {
				t.Errorf("deleted user: %v; want 401", err)
			}

			const secret = "fleet-shared-secret-0001"
			user, pass := creds.Generate(secret, "agent-8", time.Now().Add(time.Hour))
			if err := allocate(rest, user, pass); turnclient.Code(err) != 401 {
				t.Fatalf("no secret yet: %v; want 401", err)
			}
			must(t, s.PutSecret(ctx, secret))
			if err := allocate(rest, user, pass); err != nil {
				t.Fatalf("coturn refuses credentials minted with a secret the store wrote: %v", err)
			}
			// Rotation: a second secret is accepted beside the first.
			must(t, s.PutSecret(ctx, "fleet-shared-secret-0002"))
			u2, p2 := creds.Generate("fleet-shared-secret-0002", "agent-8", time.Now().Add(time.Hour))
			if err := allocate(rest, u2, p2); err != nil {
				t.Errorf("second secret: %v", err)
			}
			if err := allocate(rest, user, pass); err != nil {
				t.Errorf("first secret during rotation: %v", err)
			}
			must(t, s.DeleteSecret(ctx, secret))
			if err := allocate(rest, user, pass); turnclient.Code(err) != 401 {
				t.Errorf("deleted secret: %v; want 401", err)
			}
			st, _, err := s.Reload(ctx)
			must(t, err)
			if len(st.Secrets) != 1 || st.Secrets[0] != "fleet-shared-secret-0002" {
				t.Errorf("store reads %q", st.Secrets)
			}
		})
	}
}
