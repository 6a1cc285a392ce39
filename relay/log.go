package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/logging"
)

// logLimiter keeps clients from flooding the log: events they can cause
// (refused peers, failed authentication, protocol errors) pass at most
// logRate a second after a burst; the number suppressed is reported with the
// next one that passes. Metrics count every event.
type logLimiter struct {
	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
}

const (
	logRate  = 20.0
	logBurst = 100.0
)

func (l *logLimiter) init() { l.tokens = logBurst; l.last = time.Now() }

// take reports whether a line may be logged, and how many were suppressed
// before it.
func (l *logLimiter) take() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.tokens = min(logBurst, l.tokens+now.Sub(l.last).Seconds()*logRate)
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

// limited logs a client-caused event through the limiter.
func (s *Server) limited(level slog.Level, msg string, args ...any) {
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := s.logLimit.take()
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
	l.s.limited(slog.LevelWarn, msg, "component", "pion/"+l.scope)
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
