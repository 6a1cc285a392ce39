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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/ir"
	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
)

// Environment variables holding the relay's secrets, for hosts where files
// are not the way (containers). Files take precedence.
const (
	envSecrets = "TURNWALL_RELAY_SECRETS"
	envUsers   = "TURNWALL_RELAY_USERS"
)

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
	var udpSockets int
	var drain time.Duration
	var alternates []string
	capacity := relay.DefaultCapacityThreshold
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

TCP and TLS clients are bounded in total, per source address and per user;
a connection that holds no allocation is closed after --unallocated-timeout.
Failed authentications are throttled per source address and per user
(--auth-fail-rate): over it, requests with credentials are refused without
being checked (429 over TCP and TLS, no answer over UDP).

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
			if limits.MaxTCPConnsPerSource < 0 || limits.MaxTCPConnsPerUser < 0 || limits.UnallocatedTimeout <= 0 || limits.AuthFailRate < 0 || limits.AuthFailBurst < 1 {
				return usageError{errors.New("--max-tcp-connections-per-source, --max-tcp-connections-per-user and --auth-fail-rate must not be negative, --unallocated-timeout must be positive and --auth-fail-burst at least 1")}
			}
			secrets, users, err := src.load()
			if err != nil {
				return err
			}
			if len(secrets) == 0 && len(users) == 0 {
				return usageError{fmt.Errorf("no credentials: give --secret-file or $%s (TURN REST API), or --users-file or $%s", envSecrets, envUsers)}
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

			var reg *prometheus.Registry
			var ln net.Listener
			if metricsAddr != "" {
				reg = prometheus.NewRegistry()
				reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
				cfg.Registerer = reg
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
	cmd.Flags().IntVar(&udpSockets, "udp-sockets", runtime.NumCPU(), "SO_REUSEPORT sockets per UDP listener, each with its own reader")
	cmd.Flags().StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics (/metrics) and health (/healthz, /readyz) on this address, e.g. 127.0.0.1:9641")
	cmd.Flags().StringArrayVar(&alternates, "alternate", nil, "another relay to redirect new allocations to while draining or above --capacity-threshold (300 Try Alternate): ADDR:PORT, TRANSPORT://ADDR:PORT (udp, tcp, tls), tls://ADDR:PORT?domain=NAME (repeatable)")
	cmd.Flags().Float64Var(&capacity, "capacity-threshold", capacity, "share of --total-quota at which /readyz answers 503 and new allocations are redirected to an --alternate")
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
	cmd := &cobra.Command{
		Use:   "creds [POLICY] [--relay NAME] --user USER",
		Short: "Print time-limited TURN credentials (TURN REST API)",
		Long: `Creds prints TURN REST API credentials for USER, valid for --ttl: username
"expiry:USER", password base64(HMAC-SHA1(secret, username)) with the first
shared secret. The JSON holds the REST API's fields (username, password, ttl,
uris) and the same as WebRTC's iceServers, ready for
new RTCPeerConnection({iceServers}). With POLICY, the URIs are those of its
relay (its FQDN, or its addresses, and every listener); --uri adds more.

Exit status: 0 printed, 1 policy errors, 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
	cmd.Flags().StringVar(&name, "relay", "", "the policy's relay whose URIs to list (default: the only one)")
	src.add(cmd, false)
	cmd.Flags().StringVar(&user, "user", "", "the user the credentials are for (the relay's quota counts per user)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the credentials are valid")
	cmd.Flags().StringArrayVar(&uris, "uri", nil, "a TURN URI to list, e.g. turns:turn.example.com:443?transport=tcp (repeatable)")
	return cmd
}
