package coturn_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/coturn"
	"github.com/turnwall/turnwall/compiler"
	"github.com/turnwall/turnwall/compiler/diag"
)

const poolPolicy = `
policy "pool" {}
zone "agents" { interface = "vlan30" }
zone "dmz" { interface = "dmz0" }
agents "floor" {
  zone    = zone.agents
  subnets = ["10.30.0.0/24"]
}
relay "dmz" {
  zone       = zone.dmz
  addresses  = ["192.0.2.10", "192.0.2.20"]
  realm      = "example.com"
  peers      = [agents.floor]
  lab_only   = true
  STORE
  alternates = ALTS
  listen {
    udp = 3478
    tls = 5349
  }
}
`

func compilePool(t *testing.T, store, alts string) (*compiler.Result, string) {
	t.Helper()
	dir := t.TempDir()
	src := strings.NewReplacer("STORE", store, "ALTS", alts).Replace(poolPolicy)
	if err := os.WriteFile(filepath.Join(dir, "policy.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return compiler.Compile(dir, compiler.Options{}), dir
}

// A relay pool: the coturn configuration reads secrets and users from the
// shared store (coturn's own schema) and sends clients to the other nodes
// with 300 Try Alternate; the store's password is never in the policy or
// the file.
func TestPoolLines(t *testing.T) {
	for _, tt := range []struct {
		store string
		want  string
	}{
		{`store = "redis://redis.internal:6380/2"`, `redis-userdb="ip=redis.internal port=6380 dbname=2 connect_timeout=30"`},
		{`store = "postgres://turn@db.internal/coturn"`, `psql-userdb="host=db.internal port=5432 dbname=coturn user=turn connect_timeout=30"`},
	} {
		res, _ := compilePool(t, tt.store, `["192.0.2.20:3478"]`)
		if res.HasErrors() {
			t.Fatalf("%s: %v", tt.store, res.Diags)
		}
		files, err := coturn.Backend{}.Emit(res.Program, backends.Options{})
		if err != nil {
			t.Fatal(err)
		}
		conf := string(files[0].Data)
		for _, want := range []string{tt.want, "alternate-server=192.0.2.20:3478", "tls-alternate-server=192.0.2.20:5349", "use-auth-secret"} {
			if !strings.Contains(conf, "\n"+want+"\n") {
				t.Errorf("%s: no line %q in\n%s", tt.store, want, conf)
			}
		}
		if strings.Contains(conf, "password=") && !strings.Contains(conf, "add password=... inside") {
			t.Errorf("a password in the file:\n%s", conf)
		}
	}
}

func TestPoolRefused(t *testing.T) {
	for _, tt := range []struct {
		store, alts, want string
	}{
		{`store = "redis://:hunter2@redis.internal:6379/0"`, `[]`, "a password in the policy"},
		{`store = "mysql://db/x"`, `[]`, "use redis://"},
		{`store = "redis://redis.internal/0"`, `["nowhere"]`, "is not ADDRESS:PORT"},
		{`store = "redis://redis.internal/0"`, `["192.0.2.99:3478"]`, "not one of its addresses"},
	} {
		res, _ := compilePool(t, tt.store, tt.alts)
		found := false
		for _, d := range res.Diags {
			if diag.CodeOf(d) == diag.InvalidValue && d.Subject != nil && d.Subject.Start.Line > 0 && strings.Contains(d.Detail, tt.want) {
				found = true
			}
			if strings.Contains(d.Detail, "hunter2") {
				t.Errorf("the password is echoed: %s", d.Detail)
			}
		}
		if !found {
			t.Errorf("%s %s: want a positioned TW111 saying %q, got %v", tt.store, tt.alts, tt.want, res.Diags)
		}
	}
}
