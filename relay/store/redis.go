package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis keys of coturn's schema.userdb.redis for one realm.
type redisKeys struct{ realm string }

func (k redisKeys) prefix() string          { return "turn/realm/" + k.realm + "/" }
func (k redisKeys) secret() string          { return k.prefix() + "secret" }
func (k redisKeys) user(name string) string { return k.prefix() + "user/" + name + "/key" }
func (k redisKeys) userPattern() string     { return k.prefix() + "user/*/key" }
func (k redisKeys) allowed() string         { return k.prefix() + "allowed-peer-ip" }
func (k redisKeys) denied() string          { return k.prefix() + "denied-peer-ip" }

type redisBackend struct {
	c    *redis.Client
	keys redisKeys
	db   int
}

// RedisOptions turns a redis:// or rediss:// URL into client options.
func RedisOptions(rawURL string, timeout time.Duration) (*redis.Options, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("store URL %q is not a Redis URL (redis://[:password@]host:port/db)", u.Redacted())
	}
	return redisOptions(u, timeout)
}

func redisOptions(u *url.URL, timeout time.Duration) (*redis.Options, error) {
	o, err := redis.ParseURL(u.String())
	if err != nil {
		// go-redis's errors name the part that is wrong, not the password.
		return nil, fmt.Errorf("store URL %q: %v", u.Redacted(), err)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	o.DialTimeout = timeout
	o.ReadTimeout = timeout
	o.WriteTimeout = timeout
	o.PoolSize = 4
	o.MaxRetries = 1
	// Fail fast while the server is down: Watch polls again anyway.
	o.DialerRetries = 1
	o.DialerRetryTimeout = 50 * time.Millisecond
	// No client-side identification: older servers refuse CLIENT SETINFO.
	o.DisableIdentity = true
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return o, nil
}

// quietRedis drops go-redis's own log lines (plain text on stderr); the
// store and quota log outages through slog and count them.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

func openRedis(ctx context.Context, u *url.URL, realm string, timeout time.Duration) (backend, error) {
	quietOnce.Do(func() { redis.SetLogger(quietRedis{}) })
	o, err := redisOptions(u, timeout)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(o)
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, redisOpenError(u, o, err)
	}
	return &redisBackend{c: c, keys: redisKeys{realm}, db: o.DB}, nil
}

// redisOpenError says what went wrong connecting, and what to do.
func redisOpenError(u *url.URL, o *redis.Options, err error) error {
	where := u.Redacted()
	msg := err.Error()
	var ne net.Error
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "invalid password"),
		strings.Contains(msg, "invalid username-password"):
		return fmt.Errorf("store %s: Redis refused the password (%v); check the URL's password (redis://:PASSWORD@host:port/db)", where, err)
	case strings.Contains(msg, "NOAUTH"):
		return fmt.Errorf("store %s: Redis requires a password (%v); give one in the URL (redis://:PASSWORD@host:port/db)", where, err)
	case strings.Contains(msg, "without any password configured"):
		return fmt.Errorf("store %s: the URL has a password but Redis has none configured (%v); remove it from the URL or set requirepass", where, err)
	case strings.Contains(msg, "DB index is out of range"):
		return fmt.Errorf("store %s: Redis has no database %d (%v)", where, o.DB, err)
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store %s: cannot reach Redis at %s: %v", where, o.Addr, err)
	}
	return fmt.Errorf("store %s: Redis: %v", where, err)
}

func (r *redisBackend) kind() string { return "redis" }

func (r *redisBackend) load(ctx context.Context) (raw, error) {
	var out raw
	pipe := r.c.Pipeline()
	secrets := pipe.SMembers(ctx, r.keys.secret())
	allowed := pipe.SMembers(ctx, r.keys.allowed())
	denied := pipe.SMembers(ctx, r.keys.denied())
	if _, err := pipe.Exec(ctx); err != nil {
		return raw{}, r.explain(ctx, err, r.keys.secret(), r.keys.allowed(), r.keys.denied())
	}
	out.secrets, out.allowed, out.denied = secrets.Val(), allowed.Val(), denied.Val()

	var keys []string
	iter := r.c.Scan(ctx, 0, r.keys.userPattern(), 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return raw{}, err
	}
	out.users = make(map[string]string, len(keys))
	const batch = 1000
	for len(keys) > 0 {
		n := min(batch, len(keys))
		vals, err := r.c.MGet(ctx, keys[:n]...).Result()
		if err != nil {
			return raw{}, err
		}
		for i, v := range vals {
			name := strings.TrimSuffix(strings.TrimPrefix(keys[i], r.keys.prefix()+"user/"), "/key")
			switch v := v.(type) {
			case string:
				out.users[name] = v
			case nil:
				// Deleted between SCAN and MGET, or not a string (MGET
				// answers nil for other types).
				if t, err := r.c.Type(ctx, keys[i]).Result(); err == nil && t != "none" && t != "string" {
					return raw{}, fmt.Errorf("Redis key %q is a %s; coturn's schema has a string (the hex key)", keys[i], t)
				}
			}
		}
		keys = keys[n:]
	}
	return out, nil
}

// explain turns WRONGTYPE into which key has the wrong type.
func (r *redisBackend) explain(ctx context.Context, err error, sets ...string) error {
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		return err
	}
	for _, k := range sets {
		if t, terr := r.c.Type(ctx, k).Result(); terr == nil && t != "none" && t != "set" {
			return fmt.Errorf("Redis key %q is a %s; coturn's schema (schema.userdb.redis) has a set (SADD)", k, t)
		}
	}
	return err
}

func (r *redisBackend) putSecret(ctx context.Context, s string) error {
	return r.explain(ctx, r.c.SAdd(ctx, r.keys.secret(), s).Err(), r.keys.secret())
}

func (r *redisBackend) deleteSecret(ctx context.Context, s string) error {
	return r.explain(ctx, r.c.SRem(ctx, r.keys.secret(), s).Err(), r.keys.secret())
}

func (r *redisBackend) putUser(ctx context.Context, name, hexKey string) error {
	return r.c.Set(ctx, r.keys.user(name), hexKey, 0).Err()
}

func (r *redisBackend) deleteUser(ctx context.Context, name string) error {
	return r.c.Del(ctx, r.keys.user(name)).Err()
}

// notify follows keyspace notifications for the realm's keys. They arrive
// only when the server has them on (notify-keyspace-events with K and the
// classes written: "Kg$s"); polling covers the rest.
func (r *redisBackend) notify(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	ps := r.c.PSubscribe(ctx, fmt.Sprintf("__keyspace@%d__:%s*", r.db, r.keys.prefix()))
	go func() {
		defer ps.Close()
		ch := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-ch:
				if !ok {
					return
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

func (r *redisBackend) close() error { return r.c.Close() }

// Client returns the Redis client of a Redis store (nil for PostgreSQL),
// for Quota and Events on the same server.
func (s *Store) Client() *redis.Client {
	if r, ok := s.b.(*redisBackend); ok {
		return r.c
	}
	return nil
}
