package readiness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// PGStore keeps results in PostgreSQL: one table, turnwall_readiness_results
// (created when missing), one JSON document per result. Teams that already
// run PostgreSQL for their relays' credentials keep the readiness results
// beside them.
type PGStore struct {
	pool *pgxpool.Pool
	max  int
}

const pgSchema = `CREATE TABLE IF NOT EXISTS turnwall_readiness_results (
	seq    bigserial PRIMARY KEY,
	at     timestamptz NOT NULL,
	record jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS turnwall_readiness_results_at ON turnwall_readiness_results (at)`

// OpenPG connects to a postgres:// URL, checks the connection and creates the
// results table when missing. A wrong URL, password or database is an error
// that names the server, never the password.
func OpenPG(ctx context.Context, rawURL string, maxRecords int) (*PGStore, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, errors.New("result store: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	where := u.Host + u.Path
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("result store %s: the URL cannot be parsed", where)
	}
	cfg.MaxConns = 4
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err == nil {
		_, err = pool.Exec(ctx, pgSchema)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		msg := err.Error()
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "****")
		}
		return nil, fmt.Errorf("result store %s: %s", where, clean(msg))
	}
	return &PGStore{pool: pool, max: maxRecords}, nil
}

// Add stores a record and drops the oldest beyond the bound.
func (s *PGStore) Add(r Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO turnwall_readiness_results (at, record) VALUES ($1, $2)`, r.At, v); err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `DELETE FROM turnwall_readiness_results WHERE seq <= (SELECT max(seq) FROM turnwall_readiness_results) - $1`, s.max)
	return err
}

// List returns records at or after since, oldest first.
func (s *PGStore) List(since time.Time, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = maxExport
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT record FROM turnwall_readiness_results WHERE at >= $1 ORDER BY at, seq LIMIT $2`, since, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, errors.New("result store holds a record that is not a result")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Close closes the connections.
func (s *PGStore) Close() error {
	s.pool.Close()
	return nil
}
