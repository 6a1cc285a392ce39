package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/turnwall/turnwall/compiler/diag"
	"github.com/turnwall/turnwall/relay/readiness"
)

// defaultReadinessDB is where results are kept by default (state that
// survives a reboot: /var/lib, as the Filesystem Hierarchy Standard says).
const defaultReadinessDB = "/var/lib/turnwall/readiness.db"

func (a *app) readinessCmd() *cobra.Command {
	var f policyFlags
	var src secretSources
	var listen, certFile, keyFile, dbPath, adminFile, logFormat, logLevel, mediaPorts string
	var mediaAddrs []string
	var callAudio time.Duration
	var insecure bool
	cmd := &cobra.Command{
		Use:   "readiness [POLICY]",
		Short: "serve the agents' network check page and the security team's dashboard",
		Long: `Serve, over HTTPS, a page agents open in their own browser: it gathers
candidates from every ICE server the policy gives agents (the relays over UDP,
TCP and TLS, with short-lived credentials minted per test; public STUN), places
a short call through each relay to this server's media peer, and shows one
verdict in plain words. Results are judged against the policy (which rule
should allow a failing path, on which line, or which lint predicted it),
stored, and shown on /dashboard by agents group, with JSON and CSV exports and
Prometheus metrics on /metrics.

The relays' peers must include this server's media addresses (--media-address).
Plain HTTP is refused except on a loopback address (--insecure-http).
The dashboard, exports and metrics need the admin token (--admin-token-file)
as HTTP basic auth password or bearer token; without one, only loopback
clients see them.

Exit status: 0 stopped by a signal, 1 policy errors or the server failed, 2 usage errors.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "text" {
				return usageError{fmt.Errorf("--format %q: readiness prints text logs only", f.format)}
			}
			ln, err := netip.ParseAddrPort(listen)
			if err != nil {
				return usageError{fmt.Errorf("--listen %q: expected ADDRESS:PORT", listen)}
			}
			if (certFile == "") != (keyFile == "") {
				return usageError{errors.New("--cert and --key go together")}
			}
			if certFile == "" && !insecure {
				return usageError{errors.New("give --cert and --key (HTTPS), or --insecure-http on a loopback address")}
			}
			if certFile == "" && !ln.Addr().IsLoopback() {
				return usageError{fmt.Errorf("--insecure-http only on a loopback address, not %s: agents' results must not cross the network in clear", ln.Addr())}
			}
			media := readiness.MediaOptions{Duration: callAudio}
			for _, s := range mediaAddrs {
				ad, err := netip.ParseAddr(s)
				if err != nil {
					return usageError{fmt.Errorf("--media-address %q: not an IP address", s)}
				}
				media.Addrs = append(media.Addrs, ad)
			}
			if mediaPorts != "" {
				lo, hi, ok := strings.Cut(mediaPorts, "-")
				var a1, a2 int
				if _, err := fmt.Sscanf(lo+" "+hi, "%d %d", &a1, &a2); !ok || err != nil || a1 < 1024 || a2 > 65535 || a1 > a2 {
					return usageError{fmt.Errorf("--media-ports %q: expected FIRST-LAST within 1024-65535", mediaPorts)}
				}
				media.Ports = [2]uint16{uint16(a1), uint16(a2)}
			}
			if callAudio < time.Second || callAudio > 30*time.Second {
				return usageError{errors.New("--call-audio must be between 1s and 30s")}
			}
			// The certificate before anything is opened or created.
			var tlsCert *tls.Certificate
			if certFile != "" {
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					return fmt.Errorf("--cert/--key: %w", err)
				}
				tlsCert = &cert
			}
			logger, err := newLogger(a.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			secrets, _, err := src.load()
			if err != nil {
				return err
			}
			admin := ""
			if adminFile != "" {
				b, err := os.ReadFile(adminFile)
				if err != nil {
					return err
				}
				admin = strings.TrimSpace(string(b))
				if len(admin) < 16 {
					return fmt.Errorf("%s: the admin token must be at least 16 characters", adminFile)
				}
			}
			diagFlags := f
			diagFlags.errorsOnly = true
			res, err := a.compilePolicy(policyArg(args), &diagFlags)
			if err != nil {
				return err
			}
			if res.HasErrors() && res.Program == nil {
				return exitError{exitPolicy}
			}
			prog := res.Program
			if prog == nil {
				prog = res.Lowered
			}
			codes := map[string]bool{}
			for _, d := range res.Diags {
				if c := diag.CodeOf(d); c != "" {
					codes[string(c)] = true
				}
			}
			if err := readiness.NeedsSecret(readiness.Plan(prog), secrets); err != nil {
				return err
			}
			var store readiness.Store = readiness.NewMemStore(0)
			if !cmd.Flags().Changed("db") {
				if env := os.Getenv("TURNWALL_READINESS_DB"); env != "" {
					dbPath = env
				}
			}
			if dbPath == defaultReadinessDB {
				if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
					return fmt.Errorf("%v: give --db FILE (or --db :memory:)", err)
				}
			}
			switch {
			case dbPath == ":memory:":
			case strings.HasPrefix(dbPath, "postgres://") || strings.HasPrefix(dbPath, "postgresql://"):
				ps, err := readiness.OpenPG(cmd.Context(), dbPath, 0)
				if err != nil {
					return err
				}
				store = ps
			default:
				bs, err := readiness.OpenBolt(dbPath, 0)
				if err != nil {
					return err
				}
				store = bs
			}
			defer store.Close()
			srv, err := readiness.New(readiness.Options{Program: prog, LintCodes: codes, Secrets: secrets, Store: store,
				Media: media, AdminToken: admin, Logger: logger})
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp", ln.String())
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
				WriteTimeout: 60 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10,
				ErrorLog: nil}
			scheme := "http"
			if tlsCert != nil {
				hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*tlsCert}, MinVersion: tls.VersionTLS12}
				l = tls.NewListener(l, hs.TLSConfig)
				scheme = "https"
			}
			logger.Info("readiness", "page", scheme+"://"+l.Addr().String()+"/", "dashboard", scheme+"://"+l.Addr().String()+"/dashboard",
				"servers", len(srv.Targets()))
			fmt.Fprintf(a.stdout, "agents' page: %s://%s/\ndashboard:    %s://%s/dashboard\n", scheme, l.Addr(), scheme, l.Addr())
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(l) }()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sigs)
			select {
			case err := <-errc:
				return err
			case <-sigs:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return hs.Shutdown(ctx)
		},
	}
	f.add(cmd, "output format: text")
	src.add(cmd, false)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address to serve on")
	cmd.Flags().StringVar(&certFile, "cert", "", "TLS certificate (PEM) for HTTPS")
	cmd.Flags().StringVar(&keyFile, "key", "", "TLS private key (PEM)")
	cmd.Flags().BoolVar(&insecure, "insecure-http", false, "serve plain HTTP (loopback addresses only)")
	cmd.Flags().StringVar(&dbPath, "db", defaultReadinessDB, "result store: a file (bbolt, kept across restarts), a postgres:// URL (better given as $TURNWALL_READINESS_DB, to keep its password out of the process list), or :memory:")
	cmd.Flags().StringVar(&adminFile, "admin-token-file", "", "file holding the dashboard's admin token")
	cmd.Flags().StringArrayVar(&mediaAddrs, "media-address", nil, "address of this server's media peer for test calls (repeatable; default: every non-loopback address)")
	cmd.Flags().StringVar(&mediaPorts, "media-ports", "", "UDP port range of the media peer, FIRST-LAST")
	cmd.Flags().DurationVar(&callAudio, "call-audio", 3*time.Second, "audio per test call")
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}
