// Package storetest starts real Redis and PostgreSQL servers for tests, on
// loopback, from Debian's redis-server and postgresql packages, each in its
// own temporary directory, and stops them when the test ends, even when it
// fails (the whole process group is killed, and the kernel kills them if
// the test binary dies).
//
// A test skips when a server binary is missing, except under CI=true, where
// it fails: `make deps` installs them.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Need skips tb, or fails it under CI=true, when bin is not installed. It
// returns bin's path.
func Need(tb testing.TB, bin string) string {
	tb.Helper()
	p, err := exec.LookPath(bin)
	if err == nil {
		return p
	}
	if filepath.IsAbs(bin) {
		if _, serr := os.Stat(bin); serr == nil {
			return bin
		}
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed (make deps installs it): %v", bin, err)
	}
	tb.Skipf("%s is not installed (make deps installs it)", bin)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a server process in its own process group.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
	mu     *sync.Mutex
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func start(name string, args []string, cred *syscall.Credential, dir string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
	p := &proc{cmd: cmd, exited: make(chan struct{}), log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	out := lockedBuffer{p.mu, p.log}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends sig to the group, waits up to 10 s, then kills the group.
func (p *proc) stop(sig syscall.Signal) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, sig)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.exited
}

// waitFor polls ready until it returns nil, the process exits, or 30 s pass.
func waitFor(p *proc, what string, ready func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if !p.running() {
			return fmt.Errorf("%s exited:\n%s", what, p.output())
		}
		if err = ready(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 30s: %v\n%s", what, err, p.output())
}

// Redis is a redis-server on 127.0.0.1 with a password, keyspace
// notifications on and an append-only file, so a restart keeps the data.
type Redis struct {
	Port     int
	Password string
	Dir      string

	bin string
	p   *proc
}

// StartRedis starts a Redis server for tb.
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin := Need(tb, "redis-server")
	r := &Redis{Port: FreePort(tb), Password: "turnwall-test-redis", Dir: tb.TempDir(), bin: bin}
	tb.Cleanup(r.Stop)
	r.Start(tb)
	return r
}

// Start starts the server (again, after Stop) on the same port and data;
// tb fails when it cannot.
func (r *Redis) Start(tb testing.TB) {
	tb.Helper()
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
		"--requirepass", r.Password, "--save", "", "--appendonly", "yes", "--appendfsync", "no",
		"--notify-keyspace-events", "Kg$s", "--daemonize", "no", "--databases", "16"}
	p, err := start(r.bin, args, nil, r.Dir)
	if err != nil {
		tb.Fatalf("redis-server: %v", err)
	}
	r.p = p
	if err := waitFor(p, "redis-server", func() error { return r.ping() }); err != nil {
		r.Stop()
		tb.Fatal(err)
	}
}

// ping sends AUTH and PING over a plain connection.
func (r *Redis) ping() error {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "AUTH %s\r\nPING\r\n", r.Password)
	buf := make([]byte, 64)
	var got []byte
	for !bytes.Contains(got, []byte("PONG")) {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("%v (read %q)", err, got)
		}
		got = append(got, buf[:n]...)
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL). It may be called again.
func (r *Redis) Stop() {
	if r.p != nil && r.p.running() {
		r.p.stop(syscall.SIGTERM)
	}
}

// Addr is host:port.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// URL is the store URL of database db.
func (r *Redis) URL(db int) string {
	return fmt.Sprintf("redis://:%s@%s/%d", r.Password, r.Addr(), db)
}

// CoturnConn is coturn's connection string for database db
// (turnserver --redis-userdb, turnadmin -N).
func (r *Redis) CoturnConn(db int) string {
	return fmt.Sprintf("ip=127.0.0.1 port=%d dbname=%d password=%s connect_timeout=5", r.Port, db, r.Password)
}

// Postgres is a PostgreSQL cluster on 127.0.0.1, run as a non-root user,
// with password (SCRAM) authentication.
type Postgres struct {
	Port          int
	SuperUser     string
	SuperPassword string
	Dir           string // data directory's parent: data/, socket/

	bin  string // the directory of initdb and postgres
	cred *syscall.Credential
	p    *proc
	mu   sync.Mutex
	dbs  int
}

// PostgresBin returns the newest installed PostgreSQL's bin directory.
func PostgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var ok []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			ok = append(ok, d)
		}
	}
	if len(ok) == 0 {
		return "", errors.New("no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
	}
	sort.Slice(ok, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(ok[j])))
		return vi < vj
	})
	return ok[len(ok)-1], nil
}

// runAs is the user PostgreSQL runs as: it refuses root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("no postgres or nobody user to run PostgreSQL as (it refuses root)")
}

// StartPostgres initialises and starts a PostgreSQL cluster for tb.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	bin, err := PostgresBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	cred, err := runAs()
	if err != nil {
		tb.Fatal(err)
	}
	// Not t.TempDir: its parents are root's, closed to the server's user.
	base := ""
	if cred != nil {
		base = "/tmp" // $TMPDIR may be closed to the server's user
	}
	dir, err := os.MkdirTemp(base, "turnwall-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	pg := &Postgres{Port: FreePort(tb), SuperUser: "postgres", SuperPassword: "turnwall-test-pg", Dir: dir,
		bin: bin, cred: cred}
	tb.Cleanup(pg.Stop)
	for _, d := range []string{dir, filepath.Join(dir, "socket")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			tb.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				tb.Fatal(err)
			}
		}
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(pg.SuperPassword+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if cred != nil {
		os.Chown(pw, int(cred.Uid), int(cred.Gid))
	}
	initdb, err := start(filepath.Join(bin, "initdb"), []string{"-D", filepath.Join(dir, "data"), "-U", pg.SuperUser,
		"--pwfile", pw, "-A", "scram-sha-256", "-E", "UTF8", "--no-sync", "--locale", "C"}, cred, dir)
	if err != nil {
		tb.Fatalf("initdb: %v", err)
	}
	select {
	case <-initdb.exited:
	case <-time.After(2 * time.Minute):
		initdb.stop(syscall.SIGKILL)
	}
	if initdb.cmd.ProcessState == nil || !initdb.cmd.ProcessState.Success() {
		tb.Fatalf("initdb failed:\n%s", initdb.output())
	}
	pg.Start(tb)
	return pg
}

// Start starts the server (again, after Stop) on the same port and data;
// tb fails when it cannot.
func (pg *Postgres) Start(tb testing.TB) {
	tb.Helper()
	args := []string{"-D", filepath.Join(pg.Dir, "data"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port),
		"-k", filepath.Join(pg.Dir, "socket"), "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=50", "-c", "shared_buffers=16MB"}
	p, err := start(filepath.Join(pg.bin, "postgres"), args, pg.cred, pg.Dir)
	if err != nil {
		tb.Fatalf("postgres: %v", err)
	}
	pg.p = p
	if err := waitFor(p, "postgres", func() error { return pg.exec("postgres", "SELECT 1") }); err != nil {
		pg.Stop()
		tb.Fatal(err)
	}
}

// Stop stops the server (fast shutdown, then SIGKILL). It may be called
// again.
func (pg *Postgres) Stop() {
	if pg.p != nil && pg.p.running() {
		pg.p.stop(syscall.SIGINT)
	}
}

// URL is the store URL of database db as user with password.
func (pg *Postgres) URL(db, user, password string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", user, password, pg.Port, db)
}

// CoturnConn is coturn's connection string for database db as user
// (turnserver --psql-userdb, turnadmin -e).
func (pg *Postgres) CoturnConn(db, user, password string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=%s password=%s connect_timeout=5", pg.Port, db, user, password)
}

// Exec runs sql (several statements allowed) in database db as the
// superuser.
func (pg *Postgres) Exec(tb testing.TB, db, sql string) {
	tb.Helper()
	if err := pg.exec(db, sql); err != nil {
		tb.Fatalf("postgres %s: %v\n%s", db, err, sql)
	}
}

func (pg *Postgres) exec(db, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return execSQL(ctx, pg.URL(db, pg.SuperUser, pg.SuperPassword), sql)
}

// Database is a new database, owned by a new login role of the same name.
type Database struct {
	Name, User, Password string
	pg                   *Postgres
}

// NewDatabase creates a database and its owner; with coturnSchema it loads
// the coturn package's schema.sql into it, as its owner.
func (pg *Postgres) NewDatabase(tb testing.TB, coturnSchema bool) *Database {
	tb.Helper()
	pg.mu.Lock()
	pg.dbs++
	n := pg.dbs
	pg.mu.Unlock()
	d := &Database{Name: fmt.Sprintf("turn%d", n), Password: fmt.Sprintf("pw-%d-secret", n), pg: pg}
	d.User = d.Name
	pg.Exec(tb, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", d.User, d.Password))
	pg.Exec(tb, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", d.Name, d.User))
	if coturnSchema {
		schema, err := os.ReadFile(CoturnSchemaSQL)
		if err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("coturn's schema: %v (make deps installs coturn)", err)
			}
			tb.Skipf("coturn's schema: %v", err)
		}
		d.Exec(tb, string(schema))
	}
	return d
}

// CoturnSchemaSQL is the SQL schema Debian's coturn package ships.
const CoturnSchemaSQL = "/usr/share/coturn/schema.sql"

// URL is the database's store URL.
func (d *Database) URL() string { return d.pg.URL(d.Name, d.User, d.Password) }

// CoturnConn is the database's coturn connection string.
func (d *Database) CoturnConn() string { return d.pg.CoturnConn(d.Name, d.User, d.Password) }

// Exec runs sql in the database as its owner.
func (d *Database) Exec(tb testing.TB, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := execSQL(ctx, d.URL(), sql); err != nil {
		tb.Fatalf("postgres %s: %v\n%s", d.Name, err, sql)
	}
}
