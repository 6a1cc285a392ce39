package call

import (
	"fmt"
	"strings"
	"sync"

	"github.com/pion/logging"
)

// pionLog keeps pion quiet: trace, debug and info are dropped, warnings and
// errors are kept (a bounded number) to explain failures in plain words.
type pionLog struct {
	mu   sync.Mutex
	msgs []string
}

const maxPionMessages = 64

func (l *pionLog) NewLogger(scope string) logging.LeveledLogger { return scopedLog{l: l, scope: scope} }

func (l *pionLog) add(scope, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.msgs) < maxPionMessages {
		l.msgs = append(l.msgs, scope+": "+msg)
	}
}

// matching returns the kept messages that contain one of words (case
// insensitive), without duplicates.
func (l *pionLog) matching(words ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	seen := map[string]bool{}
	for _, m := range l.msgs {
		lm := strings.ToLower(m)
		for _, w := range words {
			if strings.Contains(lm, w) && !seen[m] {
				seen[m] = true
				out = append(out, m)
				break
			}
		}
	}
	return out
}

type scopedLog struct {
	l     *pionLog
	scope string
}

func (scopedLog) Trace(string)          {}
func (scopedLog) Tracef(string, ...any) {}
func (scopedLog) Debug(string)          {}
func (scopedLog) Debugf(string, ...any) {}
func (scopedLog) Info(string)           {}
func (scopedLog) Infof(string, ...any)  {}
func (s scopedLog) Warn(msg string)     { s.l.add(s.scope, msg) }
func (s scopedLog) Warnf(format string, args ...any) {
	s.l.add(s.scope, fmt.Sprintf(format, args...))
}
func (s scopedLog) Error(msg string) { s.l.add(s.scope, msg) }
func (s scopedLog) Errorf(format string, args ...any) {
	s.l.add(s.scope, fmt.Sprintf(format, args...))
}
