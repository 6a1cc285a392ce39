package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pion/logging"
)

// logLimiter keeps clients from flooding the log: events they can cause
// (refused peers, failed authentication, protocol errors) pass at most
// logRate a second per event (and reason) and source address after a burst, so a flood
// from one source cannot hide another source's lines; the number suppressed
// is reported with the next line of the same key that passes. A global
// bucket bounds the total when many sources flood at once. Metrics count
// every event.
type logLimiter struct {
	keys   *keyedBuckets[logKey]
	global *keyedBuckets[struct{}]
}

type logKey struct {
	msg string
	src netip.Addr
}

const (
	logRate        = 1.0
	logBurst       = 10.0
	logGlobalRate  = 100.0
	logGlobalBurst = 500.0
)

func (l *logLimiter) init() {
	l.keys = newKeyedBuckets[logKey](logRate, logBurst, maxLogKeys)
	l.global = newKeyedBuckets[struct{}](logGlobalRate, logGlobalBurst, 1)
}

// take reports whether a line may be logged, and how many of its key were
// suppressed before it.
func (l *logLimiter) take(msg string, src netip.Addr) (bool, int) {
	now := time.Now()
	ok, n := l.keys.take(logKey{msg, src}, now)
	if !ok {
		return false, 0
	}
	if ok, _ := l.global.take(struct{}{}, now); !ok {
		return false, 0
	}
	return true, n
}

// limited logs a client-caused event through the limiter; src is the client
// (nil when unknown).
func (s *Server) limited(level slog.Level, src net.Addr, msg string, args ...any) {
	key := msg
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "reason" {
			if r, ok := args[i+1].(string); ok {
				key = msg + "\x00" + r // per event and reason: one class cannot hide another
			}
			break
		}
	}
	s.limitedAs(key, level, src, msg, args...)
}

// limitedAs is limited with the event named by key rather than msg (for
// messages that vary).
func (s *Server) limitedAs(key string, level slog.Level, src net.Addr, msg string, args ...any) {
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := s.logLimit.take(key, sourceOf(src))
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// pionLoggerFactory sends pion/turn's logs to slog. pion logs per-packet
// events at Info and client mistakes at Warn and Error, so its Trace, Debug
// and Info are Debug here, and its Warn and Error are Warn through the
// limiter.
type pionLoggerFactory struct{ s *Server }

func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{s: f.s, scope: scope}
}

type pionLogger struct {
	s     *Server
	scope string
}

func (l pionLogger) debug(msg string) {
	l.s.log.Debug(msg, "component", "pion/"+l.scope)
}

func (l pionLogger) debugf(format string, args ...any) {
	if l.s.log.Enabled(context.Background(), slog.LevelDebug) {
		l.debug(fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) warn(msg string) {
	l.s.limitedAs("pion/"+l.scope, slog.LevelWarn, nil, msg, "component", "pion/"+l.scope)
}

func (l pionLogger) Trace(msg string)                  {}
func (l pionLogger) Tracef(format string, args ...any) {}
func (l pionLogger) Debug(msg string)                  { l.debugIf(msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.debugf(format, args...) }
func (l pionLogger) Info(msg string)                   { l.debugIf(msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.debugf(format, args...) }
func (l pionLogger) Warn(msg string)                   { l.warn(msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.warn(fmt.Sprintf(format, args...)) }
func (l pionLogger) Error(msg string)                  { l.warn(msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.warn(fmt.Sprintf(format, args...)) }

func (l pionLogger) debugIf(msg string) {
	if l.s.log.Enabled(context.Background(), slog.LevelDebug) {
		l.debug(msg)
	}
}
