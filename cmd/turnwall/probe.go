package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/turnwall/turnwall/relay"
	"github.com/turnwall/turnwall/relay/creds"
	"github.com/turnwall/turnwall/relay/probe"
)

// envProbeSecret holds the TURN REST shared secret, so it stays out of ps.
const envProbeSecret = "TURNWALL_PROBE_SECRET"

// exitQuota: load mode found the relay's allocation quota, not a quality
// limit.
const exitQuota = 3

func (a *app) probeCmd() *cobra.Command {
	var f policyFlags
	var stuns, turns []string
	var user, password, secret, secretFile, policyPath, relayName, serverName, caFile, format string
	var timeout, duration time.Duration
	var packets, streams, rate, size int
	var ramp, requireRelay bool
	var mosThreshold float64
	cmd := &cobra.Command{
		Use:   "probe [--stun HOST:PORT]... [--turn URI]... [--user U --password P | --secret-file F] | --policy P [--relay NAME]",
		Short: "Check which ICE paths WebRTC would find from this machine, and relay capacity",
		Long: `Probe runs, from where an agent sits, what a browser's ICE agent would try:
STUN binding over UDP (server-reflexive address, NAT mapping behaviour), TURN
allocations over UDP, TCP and TLS, CreatePermission, media-like packets
through the relay both ways (loss, jitter, RTT; one-way audio shows as
one-way), and the certificate of every turns: endpoint. It prints the
candidate table (host/srflx/relay x UDP/TCP/TLS), the pair the browser would
pick with the RFC 8445 type preferences, and the likely cause of each failure.

Targets are --stun and --turn URIs (turn:host:3478?transport=udp,
turn:host:3478?transport=tcp, turns:host:5349), or the relay of a policy
(--policy P --relay NAME) and its providers' STUN servers. Credentials:
--user/--password, or a TURN REST API shared secret (--secret-file, the first
secret of a file like 'turnwall relay --secret-file' reads; or $` + envProbeSecret + `,
or --secret, which ps shows). A secret is never printed.

When direct UDP works but no TURN URI gives a relay candidate (wrong
credentials, TURN blocked), the path is viable for now and the verdict says
"no relay path"; --require-relay makes that exit 1.

Load mode (--streams N) runs N concurrent Opus-like streams through the first
TURN URI for --duration and reports loss, jitter and RTT percentiles with an
estimated MOS (simplified E-model); --ramp steps up in quarters and reports
where the MOS falls below --mos-threshold. With a REST secret each stream is
its own user; allocations the relay refuses with 486 are reported as its quota,
not as a quality limit.

Exit status: 0 a viable media path exists (load mode: quality held), 1 none,
or no relay path with --require-relay (load mode: quality fell or streams
failed), 2 usage errors, 3 load mode: capacity limited by relay quota (486).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageError{fmt.Errorf("--format %q: use text or json", format)}
			}
			if secretFile != "" {
				if secret != "" {
					return usageError{errors.New("give --secret-file or --secret, not both")}
				}
				data, err := os.ReadFile(secretFile)
				if err != nil {
					return usageError{fmt.Errorf("--secret-file: %w", err)}
				}
				secrets, err := creds.ParseSecrets(data, false)
				if err != nil {
					return usageError{fmt.Errorf("--secret-file %s: %w", secretFile, err)}
				}
				if len(secrets) == 0 {
					return usageError{fmt.Errorf("--secret-file %s: no secret", secretFile)}
				}
				secret = secrets[0]
			}
			if secret == "" {
				secret = os.Getenv(envProbeSecret)
			}
			if secret != "" && (user != "" || password != "") {
				return usageError{errors.New("give --user/--password or a secret (--secret-file, --secret or $" + envProbeSecret + "), not both")}
			}
			cfg := probe.Config{Username: user, Password: password, Secret: secret, Timeout: timeout, Packets: packets, Rate: rate, Size: size, ServerName: serverName}
			for _, s := range stuns {
				u, err := probe.ParseURI(s, "stun")
				if err != nil || u.Scheme != "stun" {
					if err == nil {
						err = fmt.Errorf("%q is not a STUN server", s)
					}
					return usageError{fmt.Errorf("--stun: %w", err)}
				}
				cfg.STUN = append(cfg.STUN, u)
			}
			for _, s := range turns {
				u, err := probe.ParseURI(s, "")
				if err != nil || u.Scheme == "stun" {
					if err == nil {
						err = fmt.Errorf("%q is not a TURN URI", s)
					}
					return usageError{fmt.Errorf("--turn: %w", err)}
				}
				cfg.TURN = append(cfg.TURN, u)
			}
			if policyPath != "" {
				if err := a.probeFromPolicy(&cfg, policyPath, relayName, &f); err != nil {
					return err
				}
			} else if relayName != "" {
				return usageError{errors.New("--relay needs --policy")}
			}
			if len(cfg.STUN) == 0 && len(cfg.TURN) == 0 {
				return usageError{errors.New("nothing to probe: give --stun, --turn or --policy")}
			}
			if len(cfg.TURN) > 0 && user == "" && secret == "" {
				return usageError{fmt.Errorf("TURN needs credentials: --user and --password, or --secret-file (or $%s)", envProbeSecret)}
			}
			if requireRelay && len(cfg.TURN) == 0 {
				return usageError{errors.New("--require-relay needs a --turn URI or --policy")}
			}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return usageError{fmt.Errorf("--ca-file: %v", err)}
				}
				cfg.Roots = x509.NewCertPool()
				if !cfg.Roots.AppendCertsFromPEM(pem) {
					return usageError{fmt.Errorf("--ca-file %s: no PEM certificates", caFile)}
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if streams > 0 {
				return a.probeLoad(ctx, cfg, streams, duration, ramp, mosThreshold, format)
			}
			if cmd.Flags().Changed("ramp") || cmd.Flags().Changed("duration") {
				return usageError{errors.New("--ramp and --duration need --streams")}
			}
			rep, err := probe.Run(ctx, cfg)
			if err != nil {
				return usageError{err}
			}
			if format == "json" {
				err = rep.WriteJSON(a.stdout)
			} else {
				err = rep.WriteText(a.stdout)
			}
			if err != nil {
				return err
			}
			v := rep.Verdict()
			if !v.Viable || requireRelay && !v.RelayPath {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&stuns, "stun", nil, "STUN server host:port or stun: URI (repeatable; two servers classify the NAT)")
	fl.StringArrayVar(&turns, "turn", nil, "TURN URI: turn:host:3478?transport=udp|tcp or turns:host:5349 (repeatable)")
	fl.StringVar(&user, "user", "", "TURN username (long-term credentials)")
	fl.StringVar(&password, "password", "", "TURN password")
	fl.StringVar(&secret, "secret", "", "TURN REST API shared secret (visible in ps: prefer --secret-file or $"+envProbeSecret+")")
	fl.StringVar(&secretFile, "secret-file", "", "read the TURN REST API shared secret from this file (the first of its lines)")
	fl.BoolVar(&requireRelay, "require-relay", false, "exit 1 unless a relay candidate works (direct UDP alone is not enough)")
	fl.StringVar(&policyPath, "policy", "", "take the TURN URIs and STUN servers from this policy")
	fl.StringVar(&relayName, "relay", "", "the policy's relay to probe (needed when it has several)")
	fl.StringVar(&serverName, "server-name", "", "name the TLS certificate must match (default: the URI's host)")
	fl.StringVar(&caFile, "ca-file", "", "PEM roots to verify TLS certificates with (default: the system's)")
	fl.StringVar(&format, "format", "text", "output format: text or json")
	fl.DurationVar(&timeout, "timeout", 3*time.Second, "time limit of each check")
	fl.IntVar(&packets, "packets", 50, "media packets each way per TURN URI")
	fl.IntVar(&streams, "streams", 0, "load mode: concurrent streams through the first TURN URI (max 2000)")
	fl.IntVar(&rate, "rate", 50, "packets a second per stream")
	fl.IntVar(&size, "size", 160, "packet size in bytes (160: 20 ms of Opus/G.711)")
	fl.DurationVar(&duration, "duration", 30*time.Second, "load mode: how long (max 10m)")
	fl.BoolVar(&ramp, "ramp", false, "load mode: step up in quarters and report where quality falls")
	fl.Float64Var(&mosThreshold, "mos-threshold", 3.6, "load mode: the MOS below which quality has fallen")
	fl.StringArrayVar(&f.vars, "var", nil, "set a policy input variable, NAME=VALUE (repeatable)")
	return cmd
}

// probeFromPolicy adds the relay's TURN URIs and the providers' STUN
// servers (on 19302, Google's public STUN port) from a policy.
func (a *app) probeFromPolicy(cfg *probe.Config, path, name string, f *policyFlags) error {
	rc, err := a.relayConfig(path, name, f)
	if err != nil {
		return err
	}
	for _, s := range relay.URIs(rc) {
		u, err := probe.ParseURI(s, "")
		if err != nil {
			return err
		}
		cfg.TURN = append(cfg.TURN, u)
	}
	if cfg.ServerName == "" && rc.FQDN != "" {
		cfg.ServerName = rc.FQDN
	}
	res, err := a.compilePolicy(path, &policyFlags{format: "text", errorsOnly: true})
	if err == nil && !res.HasErrors() {
		for _, p := range res.Program.Providers {
			if p.STUN == "" {
				continue
			}
			if set := res.Program.AddressSet(p.STUN); set != nil {
				for _, fqdn := range set.FQDNs {
					cfg.STUN = append(cfg.STUN, probe.URI{Scheme: "stun", Host: fqdn, Port: 19302, Transport: probe.UDP})
				}
			}
		}
	}
	return nil
}

func (a *app) probeLoad(ctx context.Context, cfg probe.Config, streams int, duration time.Duration, ramp bool, threshold float64, format string) error {
	if len(cfg.TURN) == 0 {
		return usageError{errors.New("--streams needs a --turn URI")}
	}
	if streams > probe.MaxStreams || duration <= 0 || duration > probe.MaxDuration || cfg.Rate < 1 || cfg.Rate > probe.MaxRate {
		return usageError{fmt.Errorf("load mode is bounded: --streams 1..%d, --duration up to %s, --rate 1..%d", probe.MaxStreams, probe.MaxDuration, probe.MaxRate)}
	}
	lc := probe.LoadConfig{Config: cfg, Target: cfg.TURN[0], Streams: streams, Duration: duration, Ramp: ramp, MOSThreshold: threshold}
	if fd, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		lc.Progress = func(step, steps, n int, el, total time.Duration) { progressBar(a.stderr, step, steps, n, el, total) }
	}
	rep, err := probe.Load(ctx, lc)
	if lc.Progress != nil {
		fmt.Fprintln(a.stderr)
	}
	if err != nil {
		return usageError{err}
	}
	if format == "json" {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		writeLoad(a.stdout, rep)
	}
	switch {
	case rep.Limit == probe.LimitQuota:
		return exitError{exitQuota}
	case rep.FallsAt != 0 || rep.Capacity == 0:
		return exitError{1}
	}
	return nil
}

func progressBar(w io.Writer, step, steps, n int, el, total time.Duration) {
	const width = 30
	filled := int(float64(width) * float64(el) / float64(max(total, 1)))
	filled = min(max(filled, 0), width)
	fmt.Fprintf(w, "\rstep %d/%d, %d streams [%s%s] %s/%s ", step, steps, n, strings.Repeat("#", filled), strings.Repeat(".", width-filled), el.Truncate(time.Second), total.Truncate(time.Second))
}

func writeLoad(w io.Writer, rep *probe.LoadReport) {
	fmt.Fprintf(w, "Load through %s (MOS threshold %.1f)\n", rep.Target, rep.Threshold)
	fmt.Fprintf(w, "%8s %7s %7s %10s %10s %10s %10s %6s %5s\n", "STREAMS", "OPENED", "LOSS%", "RTT_P50", "RTT_P95", "RTT_P99", "JIT_P95", "R", "MOS")
	for _, s := range rep.Steps {
		fmt.Fprintf(w, "%8d %7d %7.2f %8.1fms %8.1fms %8.1fms %8.1fms %6.1f %5.2f\n", s.Streams, s.Opened, s.LossPct, s.RTT.P50, s.RTT.P95, s.RTT.P99, s.Jitter.P95, s.R, s.MOS)
		if s.QuotaRefused > 0 {
			fmt.Fprintf(w, "         refused by the relay's quota (486): %d of %d streams\n", s.QuotaRefused, s.Streams)
		}
		if s.FirstError != "" {
			fmt.Fprintf(w, "         first failure: %s\n", s.FirstError)
		}
	}
	fmt.Fprintln(w, rep.Summary())
}
