package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/store"
)

// Environment variables holding the relay's secrets, for hosts where files
// are not the way (containers). Files take precedence.
const (
	envSecrets = "TURNWALL_RELAY_SECRETS"
	envUsers   = "TURNWALL_RELAY_USERS"
	envStore   = "TURNWALL_RELAY_STORE"
)

// storeFlags name a credential store shared with the fleet.
type storeFlags struct {
	url, passwordFile string
}

func (s *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.url, "store", "", "credential store shared with the fleet: redis://host:port/db or postgres://user@host:port/db?sslmode=... (or $"+envStore+"; see docs/store.md)")
	cmd.Flags().StringVar(&s.passwordFile, "store-password-file", "", "file holding the store's password, kept out of the command line")
}

// resolve returns the store URL with its password, "" without a store.
func (s *storeFlags) resolve() (string, error) {
	u := s.url
	if u == "" {
		u = os.Getenv(envStore)
	}
	if u == "" {
		if s.passwordFile != "" {
			return "", usageError{errors.New("--store-password-file needs --store or $" + envStore)}
		}
		return "", nil
	}
	if s.passwordFile == "" {
		return u, nil
	}
	pw, err := os.ReadFile(s.passwordFile)
	if err != nil {
		return "", err
	}
	u, err = store.WithPassword(u, strings.TrimRight(string(pw), "\r\n"))
	if err != nil {
		return "", usageError{fmt.Errorf("--store-password-file %s: %w", s.passwordFile, err)}
	}
	return u, nil
}

// openStore opens the store for realm (nil without one).
func (s *storeFlags) open(realm string, logger *slog.Logger) (*store.Store, error) {
	u, err := s.resolve()
	if err != nil || u == "" {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return store.Open(ctx, u, realm, store.Options{Logger: logger})
}

// secretSources reads shared secrets and static users from files or the
// environment; never from the policy or the command line.
type secretSources struct {
	secretFile, usersFile string
}

func (s *secretSources) add(cmd *cobra.Command, users bool) {
	cmd.Flags().StringVar(&s.secretFile, "secret-file", "", "TURN REST API shared secrets, one a line, the one to mint with first (or $"+envSecrets+", comma-separated)")
	if users {
		cmd.Flags().StringVar(&s.usersFile, "users-file", "", "static users, name:password or name:0xKEY one a line (or $"+envUsers+", comma-separated)")
	}
}

func (s *secretSources) load() (secrets []string, users []creds.User, err error) {
	read := func(file, env string, parse func([]byte, bool) error) error {
		if file != "" {
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if err := parse(data, false); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return nil
		}
		if v := os.Getenv(env); v != "" {
			if err := parse([]byte(v), true); err != nil {
				return fmt.Errorf("$%s: %w", env, err)
			}
		}
		return nil
	}
	if err := read(s.secretFile, envSecrets, func(b []byte, commas bool) (err error) { secrets, err = creds.ParseSecrets(b, commas); return }); err != nil {
		return nil, nil, err
	}
	if err := read(s.usersFile, envUsers, func(b []byte, commas bool) (err error) { users, err = creds.ParseUsers(b, commas); return }); err != nil {
		return nil, nil, err
	}
	return secrets, users, nil
}

// relayConfig compiles the policy and picks its relay (the only one when
// --relay is not given).
func (a *app) relayConfig(path, name string, f *policyFlags) (relay.Config, error) {
	diagFlags := *f
	diagFlags.format = "text"
	diagFlags.errorsOnly = true
	res, err := a.compilePolicy(path, &diagFlags)
	if err != nil {
		return relay.Config{}, err
	}
	if res.HasErrors() {
		return relay.Config{}, exitError{exitPolicy}
	}
	if name == "" {
		switch len(res.Program.Relays) {
		case 0:
			return relay.Config{}, errors.New("the policy declares no relay")
		case 1:
			name = res.Program.Relays[0].Name
		default:
			var names []string
			for _, r := range res.Program.Relays {
				names = append(names, r.Name)
			}
			sort.Strings(names)
			return relay.Config{}, usageError{fmt.Errorf("the policy declares several relays; choose one with --relay (%s)", strings.Join(names, ", "))}
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		return relay.Config{}, err
	}
	return relay.FromIR(res.Program, name, relay.PolicyRoot(path, info.IsDir()))
}

func (a *app) relayCmd() *cobra.Command {
	var f policyFlags
	var src secretSources
	var name, metricsAddr, logFormat, logLevel string
	var listenIPs []string
	limits := relay.DefaultLimits()
	queueDelay := relay.DefaultMaxQueueDelay
	var udpSockets int
	var drain time.Duration
	var alternates []string
	capacity := relay.DefaultCapacityThreshold
	var sf storeFlags
	var storeInterval, nodeLease time.Duration
	var fleetQuota, nodeID string
	var events bool
	cmd := &cobra.Command{
		Use:   "relay [POLICY] [--relay NAME]",
		Short: "Run the TURN relay the policy describes",
		Long: `Relay runs the TURN relay (RFC 8656, RFC 6062, RFC 6156) that POLICY describes:
its listeners (UDP and TCP, TLS with the policy's certificate, TLS 1.2 (ECDHE AEAD suites only) or newer;
a self-signed certificate only for lab_only relays), realm, relayed port range
and TCP allocations. Peers are limited to those the policy names; IANA
special-purpose ranges (loopback, RFC 1918, link-local and 169.254.169.254,
IPv4-mapped and NAT64 forms of them, ...) are refused unless named, and some
never.

Clients authenticate with TURN REST API credentials (see 'turnwall creds')
signed with one of the shared secrets, or as static users. Secrets and users
come from files or the environment, never from the policy; SIGHUP reloads
them (rotate a secret: add the new one first, then remove the old).

With --store (a Redis or PostgreSQL database in coturn's schema, shared with
the fleet and with coturn; see docs/store.md) the relay also accepts the
store's shared secrets and users, and narrows its peers with the store's
denied-peer-ip and allowed-peer-ip lists (which never allow more than the
policy). The store is read every --store-interval without a restart; while
it cannot be read the last good state stays in force. With a Redis store the
relay registers itself (listeners and load, with a lease) so draining relays
redirect to the least loaded live node, and --fleet-quota counts allocations
across the fleet.

TCP and TLS clients are bounded in total, per source address and per user;
a connection that holds no allocation is closed after --unallocated-timeout.
Failed authentications are throttled per source address and per user
(--auth-fail-rate): over it, requests with credentials are refused without
being checked (429 over TCP and TLS, no answer over UDP).

Under overload (a relayed UDP datagram read late for five times
--max-queue-delay on end) the relay drops the datagrams that waited longer
than --max-queue-delay in a socket's queue instead of relaying them late:
real-time media has no use for them, and the queue stays short
(turnwall_relay_shed_packets_total{reason="queue_delay"}). --max-queue-delay 0
never drops.

Logs are structured (slog) on stderr; --metrics serves Prometheus metrics
(/metrics) and health for load balancers on the same address: /healthz (200
while the relay serves) and /readyz (503 while draining, or with allocations
at --capacity-threshold of --total-quota).

SIGUSR1 drains the relay: new allocations are redirected to an --alternate
(300 Try Alternate, RFC 8489 section 10) or refused (486), /readyz answers
503, and existing allocations keep being served; SIGUSR2 ends the drain.
Above the capacity threshold new allocations are redirected too (when an
alternate is given). SIGTERM or SIGINT stops the relay: with --drain it
first drains and waits that long for the existing allocations.

Exit status: 0 stopped by a signal, 1 policy errors or the relay failed,
2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger, err := newLogger(a.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			cfg, err := a.relayConfig(policyArg(args), name, &f)
			if err != nil {
				return err
			}
			if len(listenIPs) > 0 {
				var ips []netip.Addr
				for _, s := range listenIPs {
					ip, err := netip.ParseAddr(s)
					if err != nil {
						return usageError{fmt.Errorf("--listen-ip %q: not an IP address", s)}
					}
					ips = append(ips, ip)
				}
				cfg.RelayIPs = ips
				cfg.Listeners = relay.Listen(ips, listenPorts(cfg.Listeners))
			}
			switch {
			case queueDelay < 0:
				return usageError{fmt.Errorf("--max-queue-delay %s: give a duration, or 0 to never drop late datagrams", queueDelay)}
			case queueDelay == 0:
				limits.MaxQueueDelay = relay.NoQueueDelayBound
			default:
				limits.MaxQueueDelay = queueDelay
			}
			if limits.MaxTCPConnsPerSource < 0 || limits.MaxTCPConnsPerUser < 0 || limits.UnallocatedTimeout <= 0 || limits.AuthFailRate < 0 || limits.AuthFailBurst < 1 {
				return usageError{errors.New("--max-tcp-connections-per-source, --max-tcp-connections-per-user and --auth-fail-rate must not be negative, --unallocated-timeout must be positive and --auth-fail-burst at least 1")}
			}
			secrets, users, err := src.load()
			if err != nil {
				return err
			}
			storeURL, err := sf.resolve()
			if err != nil {
				return err
			}
			if len(secrets) == 0 && len(users) == 0 && storeURL == "" {
				return usageError{fmt.Errorf("no credentials: give --secret-file or $%s (TURN REST API), --users-file or $%s, or --store", envSecrets, envUsers)}
			}
			var quotaOpts store.QuotaOptions
			if fleetQuota != "" {
				if storeURL == "" {
					return usageError{errors.New("--fleet-quota needs --store (a Redis store)")}
				}
				if quotaOpts, err = store.ParseQuotaSpec(fleetQuota); err != nil {
					return usageError{fmt.Errorf("--fleet-quota: %w", err)}
				}
			}
			if events && storeURL == "" {
				return usageError{errors.New("--events needs --store (a Redis store)")}
			}
			if !(capacity > 0 && capacity <= 1) {
				return usageError{fmt.Errorf("--capacity-threshold %v: give a share of --total-quota above 0, at most 1", capacity)}
			}
			cfg.CapacityThreshold = capacity
			if len(alternates) > 0 {
				var alts []relay.Alternate
				for _, s := range alternates {
					a, err := relay.ParseAlternate(s)
					if err != nil {
						return usageError{fmt.Errorf("--alternate: %w", err)}
					}
					alts = append(alts, a)
				}
				cfg.Alternates = relay.NewStaticAlternates(alts)
			}
			auth := relay.NewAuth(cfg.Realm, users, secrets)
			cfg.Auth = auth
			cfg.Limits = limits
			cfg.UDPSockets = udpSockets
			cfg.Logger = logger

			fl, err := openFleet(&sf, storeFleetOptions{realm: cfg.Realm, interval: storeInterval, quota: fleetQuota != "",
				quotaOpts: quotaOpts, nodeID: nodeID, nodeLease: nodeLease, events: events, logger: logger})
			if err != nil {
				return err
			}
			defer fl.stop()
			if fl.store != nil {
				fl.feed = fl.store.Feed(cfg.Peers, auth.Update)
				fl.feed.SetFiles(secrets, users)
				cfg.PeerBound = fl.feed.PeerAllowed
				if fl.quota != nil {
					cfg.Quota = fl.quota
				}
				if fl.registry != nil && cfg.Alternates == nil {
					cfg.Alternates = fl.registry
				}
				if fl.events != nil {
					cfg.Events = fl.events
				}
			}

			var reg *prometheus.Registry
			var ln net.Listener
			if metricsAddr != "" {
				reg = prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
				cfg.Registerer = reg
				if err := fl.register(reg); err != nil {
					return err
				}
				if ln, err = net.Listen("tcp", metricsAddr); err != nil {
					return fmt.Errorf("--metrics: %w", err)
				}
			}
			srv, err := relay.New(cfg)
			if err != nil {
				if ln != nil {
					ln.Close()
				}
				return err
			}
			fl.start(srv, cfg.FQDN)
			var metricsSrv *http.Server
			if ln != nil {
				mux := http.NewServeMux()
				mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
				mux.Handle("/healthz", srv.HealthHandler())
				mux.Handle("/readyz", srv.HealthHandler())
				metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
				go metricsSrv.Serve(ln)
				logger.Info("metrics", "address", ln.Addr().String())
			}
			sigs := make(chan os.Signal, 4)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
			defer signal.Stop(sigs)
			for sig := range sigs {
				switch sig {
				case syscall.SIGUSR1:
					srv.Drain()
					continue
				case syscall.SIGUSR2:
					srv.Resume()
					continue
				}
				if sig == syscall.SIGHUP {
					secrets, users, err := src.load()
					switch {
					case err != nil:
						logger.Error("reload failed; keeping the current credentials", "err", err.Error())
					case fl.feed != nil:
						fl.feed.SetFiles(secrets, users)
						logger.Info("credentials reloaded", "secrets", len(secrets), "static_users", len(users), "store", fl.store.String())
					case len(secrets) == 0 && len(users) == 0:
						logger.Error("reload found no credentials; keeping the current ones")
					default:
						auth.Update(users, secrets)
						logger.Info("credentials reloaded", "secrets", len(secrets), "static_users", len(users))
					}
					continue
				}
				logger.Info("stopping", "signal", sig.String())
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), drain)
			defer cancel()
			err = srv.Shutdown(ctx)
			fl.stop()
			if metricsSrv != nil {
				metricsSrv.Close()
			}
			return err
		},
	}
	f.add(cmd, "unused")
	cmd.Flags().MarkHidden("format")
	cmd.Flags().StringVar(&name, "relay", "", "the policy's relay to run (default: the only one)")
	src.add(cmd, true)
	cmd.Flags().StringArrayVar(&listenIPs, "listen-ip", nil, "serve on this address instead of the policy's addresses (repeatable)")
	cmd.Flags().IntVar(&limits.UserQuota, "user-quota", limits.UserQuota, "concurrent allocations per user (0: unlimited)")
	cmd.Flags().IntVar(&limits.TotalQuota, "total-quota", limits.TotalQuota, "concurrent allocations in total (0: unlimited)")
	cmd.Flags().DurationVar(&limits.MaxLifetime, "max-allocate-lifetime", limits.MaxLifetime, "longest lifetime one Allocate or Refresh grants (at most 1h)")
	cmd.Flags().Int64Var(&limits.MaxBPS, "max-bps", limits.MaxBPS, "bandwidth cap per allocation and direction, bits per second (0: unlimited)")
	cmd.Flags().IntVar(&limits.MaxTCPConns, "max-tcp-connections", limits.MaxTCPConns, "concurrent TCP and TLS client connections (0: unlimited)")
	cmd.Flags().IntVar(&limits.MaxTCPConnsPerSource, "max-tcp-connections-per-source", limits.MaxTCPConnsPerSource, "concurrent TCP and TLS connections from one source address (0: unlimited; raise it when many clients share a NAT address)")
	cmd.Flags().IntVar(&limits.MaxTCPConnsPerUser, "max-tcp-connections-per-user", limits.MaxTCPConnsPerUser, "concurrent TCP and TLS connections authenticated as one user (0: unlimited)")
	cmd.Flags().DurationVar(&limits.UnallocatedTimeout, "unallocated-timeout", limits.UnallocatedTimeout, "close a TCP or TLS connection that holds no allocation after this long")
	cmd.Flags().Float64Var(&limits.AuthFailRate, "auth-fail-rate", limits.AuthFailRate, "failed authentications a second allowed per source address and per user, after --auth-fail-burst (0: no throttling)")
	cmd.Flags().IntVar(&limits.AuthFailBurst, "auth-fail-burst", limits.AuthFailBurst, "failed authentications allowed at once per source address and per user")
	cmd.Flags().DurationVar(&queueDelay, "max-queue-delay", queueDelay, "once overloaded, drop relayed UDP datagrams that waited longer than this in a socket's queue instead of relaying them late (0: never drop)")
	cmd.Flags().IntVar(&udpSockets, "udp-sockets", runtime.NumCPU(), "SO_REUSEPORT sockets per UDP listener, each with its own reader")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on this address, e.g. 127.0.0.1:9641")
	cmd.Flags().StringArrayVar(&alternates, "alternate", nil, "another relay to redirect new allocations to while draining or above --capacity-threshold (300 Try Alternate): ADDR:PORT, TRANSPORT://ADDR:PORT (udp, tcp, tls), tls://ADDR:PORT?domain=NAME (repeatable)")
	cmd.Flags().Float64Var(&capacity, "capacity-threshold", capacity, "share of --total-quota at which /readyz answers 503 and new allocations are redirected to an --alternate")
	sf.add(cmd)
	cmd.Flags().DurationVar(&storeInterval, "store-interval", store.DefaultInterval, "how often to read the --store (Redis keyspace notifications make changes sooner)")
	cmd.Flags().StringVar(&fleetQuota, "fleet-quota", "", "allocations allowed across every relay on the --store (Redis): user=N,total=M,lease=30s[,fail-closed]")
	cmd.Flags().StringVar(&nodeID, "node-id", "", "this relay's name in the --store's node registry and fleet quota (default: host name, process ID and a random suffix)")
	cmd.Flags().BoolVar(&events, "events", false, "publish allocations to the --store (Redis) in coturn's statsdb form (turn/realm/R/user/U/allocation/ID/status)")
	cmd.Flags().DurationVar(&nodeLease, "node-lease", store.DefaultNodeLease, "how long this relay's registration in the --store (Redis) lives without renewal")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "log format: json or text")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().DurationVar(&drain, "drain", 0, "on SIGTERM, drain and wait this long for allocations to end (SIGUSR1 drains without stopping)")
	return cmd
}

func listenPorts(ls []relay.Listener) ir.Listen {
	var l ir.Listen
	seen := map[relay.Listener]bool{}
	for _, x := range ls {
		k := relay.Listener{Transport: x.Transport, Addr: netip.AddrPortFrom(netip.Addr{}, x.Addr.Port())}
		if seen[k] {
			continue
		}
		seen[k] = true
		switch x.Transport {
		case relay.UDP:
			l.UDP = append(l.UDP, x.Addr.Port())
		case relay.TCP:
			l.TCP = append(l.TCP, x.Addr.Port())
		case relay.TLS:
			l.TLS = append(l.TLS, x.Addr.Port())
		}
	}
	return l
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use json or text", format)
}

func (a *app) credsCmd() *cobra.Command {
	var f policyFlags
	var src secretSources
	var name, user string
	var uris []string
	var ttl time.Duration
	var sf storeFlags
	var w storeWrite
	cmd := &cobra.Command{
		Use:   "creds [POLICY] [--relay NAME] --user USER",
		Short: "Print time-limited TURN credentials (TURN REST API), or manage a credential store",
		Long: `Creds prints TURN REST API credentials for USER, valid for --ttl: username
"expiry:USER", password base64(HMAC-SHA1(secret, username)) with the first
shared secret. The JSON holds the REST API's fields (username, password, ttl,
uris) and the same as WebRTC's iceServers, ready for
new RTCPeerConnection({iceServers}). With POLICY, the URIs are those of its
relay (its FQDN, or its addresses, and every listener); --uri adds more.

With --store, creds manages a credential store the fleet's relays (turnwall
relay --store, coturn --redis-userdb or --psql-userdb) read, as coturn's
turnadmin does, for the --realm (or POLICY's relay's realm): one of
--add-secret FILE, --delete-secret FILE (one secret a line; - reads stdin),
--add-user NAME with --password-file FILE (- for stdin; the store keeps
MD5(NAME:REALM:PASSWORD), never the password), --delete-user NAME, --list
(counts and user names, never a secret). Secrets and passwords never come
from the command line. Rotating a secret: --add-secret the new one (relays
accept both within --store-interval), start minting with it, and once the
old credentials' TTL has passed --delete-secret the old one.

Exit status: 0 printed (or written), 1 policy or store errors, 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if w.action() != "" || sf.url != "" {
				return a.credsStore(args, name, &f, &sf, &w)
			}
			if ttl <= 0 {
				return usageError{fmt.Errorf("--ttl %s: must be positive", ttl)}
			}
			if strings.ContainsAny(user, ":\n") {
				return usageError{fmt.Errorf("--user %q: no colons or newlines", user)}
			}
			secrets, _, err := src.load()
			if err != nil {
				return err
			}
			if len(secrets) == 0 {
				return usageError{creds.ErrNoSecret}
			}
			var all []string
			if len(args) > 0 || name != "" {
				cfg, err := a.relayConfig(policyArg(args), name, &f)
				if err != nil {
					return err
				}
				all = relay.URIs(cfg)
			}
			all = append(all, uris...)
			return writeJSON(a, creds.NewResponse(secrets[0], user, ttl, all, time.Now()))
		},
	}
	f.add(cmd, "unused")
	cmd.Flags().MarkHidden("format")
	cmd.Flags().StringVar(&name, "relay", "", "the policy's relay whose URIs (or, with --store, realm) to use (default: the only one)")
	src.add(cmd, false)
	cmd.Flags().StringVar(&user, "user", "", "the user the credentials are for (the relay's quota counts per user)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the credentials are valid")
	cmd.Flags().StringArrayVar(&uris, "uri", nil, "a TURN URI to list, e.g. turns:turn.example.com:443?transport=tcp (repeatable)")
	sf.add(cmd)
	cmd.Flags().StringVar(&w.realm, "realm", "", "with --store: the realm to manage (default: POLICY's relay's realm)")
	cmd.Flags().StringVar(&w.addSecret, "add-secret", "", "with --store: add the shared secrets in this file, one a line (- reads stdin)")
	cmd.Flags().StringVar(&w.deleteSecret, "delete-secret", "", "with --store: delete the shared secrets in this file, one a line (- reads stdin)")
	cmd.Flags().StringVar(&w.addUser, "add-user", "", "with --store: add or replace this long-term user; its password comes from --password-file")
	cmd.Flags().StringVar(&w.passwordFile, "password-file", "", "with --add-user: file holding the user's password (- reads stdin)")
	cmd.Flags().StringVar(&w.deleteUser, "delete-user", "", "with --store: delete this long-term user")
	cmd.Flags().BoolVar(&w.list, "list", false, "with --store: print how many secrets the realm has and its user names")
	return cmd
}

// storeWrite is what `creds --store` does.
type storeWrite struct {
	realm, addSecret, deleteSecret, addUser, passwordFile, deleteUser string
	list                                                              bool
}

// action names the one action given ("" for none, "several" for more).
func (w *storeWrite) action() string {
	var got []string
	for _, x := range []struct {
		on   bool
		name string
	}{{w.addSecret != "", "--add-secret"}, {w.deleteSecret != "", "--delete-secret"}, {w.addUser != "", "--add-user"},
		{w.deleteUser != "", "--delete-user"}, {w.list, "--list"}} {
		if x.on {
			got = append(got, x.name)
		}
	}
	switch len(got) {
	case 0:
		return ""
	case 1:
		return got[0]
	}
	return "several: " + strings.Join(got, ", ")
}

// readInput reads a file, or stdin for "-", bounded.
func (a *app) readInput(flag, path string) ([]byte, error) {
	var r io.Reader
	if path == "-" {
		r = a.stdin
	} else {
		fh, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if len(data) > 1<<20 {
		return nil, usageError{fmt.Errorf("%s %s: more than 1 MiB", flag, path)}
	}
	return data, nil
}

func (a *app) credsStore(args []string, name string, f *policyFlags, sf *storeFlags, w *storeWrite) error {
	act := w.action()
	switch {
	case sf.url == "" && os.Getenv(envStore) == "":
		return usageError{fmt.Errorf("%s needs --store or $%s", act, envStore)}
	case act == "":
		return usageError{errors.New("--store: give one of --add-secret, --delete-secret, --add-user, --delete-user or --list")}
	case strings.HasPrefix(act, "several"):
		return usageError{fmt.Errorf("one store action at a time, not %s", strings.TrimPrefix(act, "several: "))}
	case (w.passwordFile != "") != (w.addUser != ""):
		return usageError{errors.New("--add-user needs --password-file, and --password-file goes with --add-user")}
	}
	realm := w.realm
	if realm == "" {
		if len(args) == 0 && name == "" {
			return usageError{errors.New("--store: give --realm, or POLICY (and --relay) for its relay's realm")}
		}
		cfg, err := a.relayConfig(policyArg(args), name, f)
		if err != nil {
			return err
		}
		realm = cfg.Realm
	}
	for _, u := range []string{w.addUser, w.deleteUser} {
		if u == "" {
			continue
		}
		if err := store.CheckUserName(u); err != nil {
			return usageError{fmt.Errorf("user %q: %w", u, err)}
		}
	}
	var secrets []string
	var password string
	switch {
	case w.addSecret != "" || w.deleteSecret != "":
		flag, path := "--add-secret", w.addSecret
		if path == "" {
			flag, path = "--delete-secret", w.deleteSecret
		}
		data, err := a.readInput(flag, path)
		if err != nil {
			return err
		}
		if secrets, err = creds.ParseSecrets(data, false); err != nil {
			return usageError{fmt.Errorf("%s %s: %w", flag, path, err)}
		}
		if len(secrets) == 0 {
			return usageError{fmt.Errorf("%s %s: no secret in it", flag, path)}
		}
	case w.addUser != "":
		data, err := a.readInput("--password-file", w.passwordFile)
		if err != nil {
			return err
		}
		password = strings.TrimRight(string(data), "\r\n")
		if password == "" || strings.IndexFunc(password, unicode.IsControl) >= 0 {
			return usageError{fmt.Errorf("--password-file %s: give one password on one line", w.passwordFile)}
		}
	}
	st, err := sf.open(realm, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch {
	case w.addSecret != "":
		for _, s := range secrets {
			if err := st.PutSecret(ctx, s); err != nil {
				return err
			}
		}
		fmt.Fprintf(a.stdout, "added %d secret(s) to realm %s in %s\n", len(secrets), realm, st)
	case w.deleteSecret != "":
		for _, s := range secrets {
			if err := st.DeleteSecret(ctx, s); err != nil {
				return err
			}
		}
		fmt.Fprintf(a.stdout, "deleted %d secret(s) from realm %s in %s\n", len(secrets), realm, st)
	case w.addUser != "":
		if err := st.PutUser(ctx, w.addUser, creds.Key(w.addUser, realm, password)); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "user %s set in realm %s in %s\n", w.addUser, realm, st)
	case w.deleteUser != "":
		if err := st.DeleteUser(ctx, w.deleteUser); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "user %s deleted from realm %s in %s\n", w.deleteUser, realm, st)
	case w.list:
		state := st.Snapshot()
		fmt.Fprintf(a.stdout, "realm %s in %s\nsecrets: %d\nusers: %d\n", realm, st, len(state.Secrets), len(state.Users))
		for _, u := range state.CredsUsers() {
			fmt.Fprintf(a.stdout, "  %s\n", u.Name)
		}
		if len(state.Invalid) > 0 {
			fmt.Fprintf(a.stdout, "entries not used: %d\n", len(state.Invalid))
			for _, x := range state.Invalid {
				fmt.Fprintf(a.stdout, "  %s\n", x)
			}
		}
	}
	return nil
}

// storeFleetOptions are the relay's --store flags.
type storeFleetOptions struct {
	realm               string
	interval, nodeLease time.Duration
	quota, events       bool
	quotaOpts           store.QuotaOptions
	nodeID              string
	logger              *slog.Logger
}

// fleet is the relay's link to its store: credentials and peer lists
// (feed), fleet quota and node registry (Redis).
type fleet struct {
	store    *store.Store
	feed     *store.Feed
	quota    *store.Quota
	events   *store.Events
	registry *store.Registry
	interval time.Duration
	cancel   context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once
}

func openFleet(sf *storeFlags, o storeFleetOptions) (*fleet, error) {
	fl := &fleet{interval: o.interval}
	if o.interval <= 0 {
		return fl, usageError{fmt.Errorf("--store-interval %v: must be positive", o.interval)}
	}
	st, err := sf.open(o.realm, o.logger)
	if err != nil || st == nil {
		return fl, err
	}
	fl.store = st
	if o.quota {
		o.quotaOpts.Node, o.quotaOpts.Logger = o.nodeID, o.logger
		if fl.quota, err = st.Quota(o.quotaOpts); err != nil {
			st.Close()
			return fl, usageError{fmt.Errorf("--fleet-quota: %w", err)}
		}
	}
	if o.events {
		if fl.events, err = st.Events(); err != nil {
			st.Close()
			return fl, usageError{fmt.Errorf("--events: %w", err)}
		}
	}
	if st.Client() != nil {
		if fl.registry, err = st.Registry(store.RegistryOptions{ID: o.nodeID, Lease: o.nodeLease, Logger: o.logger}); err != nil {
			st.Close()
			return fl, usageError{err}
		}
	}
	return fl, nil
}

// register puts the store's metrics on the relay's registry.
func (fl *fleet) register(reg *prometheus.Registry) error {
	if fl.store == nil {
		return nil
	}
	if err := fl.store.Register(reg); err != nil {
		return err
	}
	var cs []prometheus.Collector
	if fl.quota != nil {
		cs = append(cs, fl.quota.Collectors()...)
	}
	if fl.events != nil {
		cs = append(cs, fl.events.Collectors()...)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// start follows the store, renews the fleet quota's leases and registers
// the relay srv, until stop.
func (fl *fleet) start(srv *relay.Server, fqdn string) {
	if fl.store == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl.cancel = cancel
	run := func(f func(context.Context) error) {
		fl.done.Add(1)
		go func() { defer fl.done.Done(); f(ctx) }()
	}
	run(func(ctx context.Context) error { return fl.feed.Run(ctx, fl.interval) })
	if fl.quota != nil {
		run(fl.quota.Refresh)
	}
	if fl.registry != nil {
		srv.Advertise(fl.registry, fqdn)
		run(fl.registry.Run)
	}
}

// stop ends the store's goroutines (the registration is removed) and closes
// it.
func (fl *fleet) stop() {
	fl.stopOnce.Do(func() {
		if fl.cancel != nil {
			fl.cancel()
			fl.done.Wait()
		}
		if fl.events != nil {
			fl.events.Close()
		}
		if fl.store != nil {
			fl.store.Close()
		}
	})
}
