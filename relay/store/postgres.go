package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CoturnSchemaFile is where Debian's coturn package ships the SQL schema.
const CoturnSchemaFile = "/usr/share/coturn/schema.sql"

// coturnTables are the tables and columns of coturn's schema.sql the store
// reads and writes.
var coturnTables = map[string][]string{
	"turn_secret":     {"realm", "value"},
	"turnusers_lt":    {"realm", "name", "hmackey"},
	"allowed_peer_ip": {"realm", "ip_range"},
	"denied_peer_ip":  {"realm", "ip_range"},
}

type pgBackend struct {
	pool  *pgxpool.Pool
	realm string
}

func openPostgres(ctx context.Context, u *url.URL, realm string, timeout time.Duration) (backend, error) {
	where := u.Redacted()
	cfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		// pgx's parse errors may quote the URL; say only what to use.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) && pe.Unwrap() != nil {
			return nil, fmt.Errorf("store URL %q: %v; use postgres://user:password@host:port/database?sslmode=disable", where, pe.Unwrap())
		}
		return nil, fmt.Errorf("store URL %q is not a PostgreSQL URL; use postgres://user:password@host:port/database?sslmode=disable", where)
	}
	cfg.ConnConfig.ConnectTimeout = timeout
	cfg.MaxConns = 4
	cfg.MinConns = 0
	cfg.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, pgOpenError(where, cfg, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, pgOpenError(where, cfg, err)
	}
	b := &pgBackend{pool: pool, realm: realm}
	if err := b.checkSchema(ctx, where, cfg.ConnConfig.Database); err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

// pgOpenError says what went wrong connecting, and what to do.
func pgOpenError(where string, cfg *pgxpool.Config, err error) error {
	var pe *pgconn.PgError
	c := cfg.ConnConfig
	if errors.As(err, &pe) {
		switch pe.Code {
		case "28P01":
			return fmt.Errorf("store %s: PostgreSQL refused the password of user %q; check the URL's password", where, c.User)
		case "28000":
			return fmt.Errorf("store %s: PostgreSQL does not let user %q in (%s); check the user and pg_hba.conf", where, c.User, pe.Message)
		case "3D000":
			return fmt.Errorf("store %s: PostgreSQL has no database %q; create it (createdb %s) and load coturn's schema (psql -f %s)",
				where, c.Database, c.Database, CoturnSchemaFile)
		}
		return fmt.Errorf("store %s: PostgreSQL: %s (%s)", where, pe.Message, pe.Code)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("store %s: cannot reach PostgreSQL at %s:%d: %v", where, c.Host, c.Port, err)
	}
	return fmt.Errorf("store %s: PostgreSQL: %v", where, err)
}

// checkSchema finds coturn's tables and columns, and names what is missing.
func (b *pgBackend) checkSchema(ctx context.Context, where, database string) error {
	names := make([]string, 0, len(coturnTables))
	for t := range coturnTables {
		names = append(names, t)
	}
	rows, err := b.pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = ANY (current_schemas(false)) AND table_name = ANY ($1)`, names)
	if err != nil {
		return fmt.Errorf("store %s: reading the schema: %v", where, err)
	}
	have := map[string]bool{}
	var t, c string
	_, err = pgx.ForEachRow(rows, []any{&t, &c}, func() error { have[t+"."+c] = true; have[t] = true; return nil })
	if err != nil {
		return fmt.Errorf("store %s: reading the schema: %v", where, err)
	}
	var missing []string
	for table, cols := range coturnTables {
		if !have[table] {
			missing = append(missing, "table "+table)
			continue
		}
		for _, col := range cols {
			if !have[table+"."+col] {
				missing = append(missing, "column "+table+"."+col)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return fmt.Errorf("store %s: database %q lacks coturn's %s; load coturn's schema first: psql 'postgres://...' -f %s (Debian's coturn package ships it)",
		where, database, strings.Join(missing, ", "), CoturnSchemaFile)
}

func (b *pgBackend) kind() string { return "postgres" }

func (b *pgBackend) load(ctx context.Context) (raw, error) {
	var out raw
	err := pgx.BeginTxFunc(ctx, b.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		col := func(query string) ([]string, error) {
			rows, err := tx.Query(ctx, query, b.realm)
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[string])
		}
		var err error
		if out.secrets, err = col(`SELECT value FROM turn_secret WHERE realm = $1 AND value IS NOT NULL`); err != nil {
			return err
		}
		// Peer entries without a realm (the column's default '') apply
		// to every realm, as in coturn's example data.
		if out.allowed, err = col(`SELECT ip_range FROM allowed_peer_ip WHERE (realm = $1 OR coalesce(realm, '') = '') AND ip_range IS NOT NULL`); err != nil {
			return err
		}
		if out.denied, err = col(`SELECT ip_range FROM denied_peer_ip WHERE (realm = $1 OR coalesce(realm, '') = '') AND ip_range IS NOT NULL`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name, coalesce(hmackey, '') FROM turnusers_lt WHERE realm = $1 AND name IS NOT NULL`, b.realm)
		if err != nil {
			return err
		}
		out.users = map[string]string{}
		var name, key string
		_, err = pgx.ForEachRow(rows, []any{&name, &key}, func() error { out.users[name] = key; return nil })
		return err
	})
	return out, err
}

func (b *pgBackend) exec(ctx context.Context, sql string, args ...any) error {
	_, err := b.pool.Exec(ctx, sql, args...)
	return err
}

func (b *pgBackend) putSecret(ctx context.Context, s string) error {
	return b.exec(ctx, `INSERT INTO turn_secret (realm, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, b.realm, s)
}

func (b *pgBackend) deleteSecret(ctx context.Context, s string) error {
	return b.exec(ctx, `DELETE FROM turn_secret WHERE realm = $1 AND value = $2`, b.realm, s)
}

func (b *pgBackend) putUser(ctx context.Context, name, hexKey string) error {
	return b.exec(ctx, `INSERT INTO turnusers_lt (realm, name, hmackey) VALUES ($1, $2, $3)
		ON CONFLICT (realm, name) DO UPDATE SET hmackey = EXCLUDED.hmackey`, b.realm, name, hexKey)
}

func (b *pgBackend) deleteUser(ctx context.Context, name string) error {
	return b.exec(ctx, `DELETE FROM turnusers_lt WHERE realm = $1 AND name = $2`, b.realm, name)
}

// notify: PostgreSQL changes are found by polling (coturn's schema has no
// triggers to LISTEN to).
func (b *pgBackend) notify(context.Context) <-chan struct{} { return nil }

func (b *pgBackend) close() error { b.pool.Close(); return nil }
