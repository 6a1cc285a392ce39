package store

import (
	"strings"
	"testing"
	"time"
)

func TestParseQuotaSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want QuotaOptions
		err  string
	}{
		{"user=2", QuotaOptions{UserLimit: 2}, ""},
		{"user=12,total=5000,lease=30s", QuotaOptions{UserLimit: 12, TotalLimit: 5000, Lease: 30 * time.Second}, ""},
		{"total=10, fail-closed", QuotaOptions{TotalLimit: 10, FailClosed: true}, ""},
		{"", QuotaOptions{}, "one limit at least"},
		{"lease=30s", QuotaOptions{}, "one limit at least"},
		{"user=0", QuotaOptions{}, "at least 1"},
		{"user=x", QuotaOptions{}, "invalid syntax"},
		{"user=1,user=2", QuotaOptions{}, "given twice"},
		{"user=1,lease=100ms", QuotaOptions{}, "between 1s and 1h"},
		{"user=1,fail-closed=yes", QuotaOptions{}, "fail-closed"},
		{"user", QuotaOptions{}, "give user=N"},
	} {
		got, err := ParseQuotaSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestWithPassword(t *testing.T) {
	for _, tc := range []struct{ url, pw, want, err string }{
		{"redis://127.0.0.1:6379/0", "p@ss:/word", "redis://:p%40ss%3A%2Fword@127.0.0.1:6379/0", ""},
		{"postgres://turn@db:5432/turn?sslmode=disable", "pw", "postgres://turn:pw@db:5432/turn?sslmode=disable", ""},
		{"redis://:old@127.0.0.1:6379/0", "pw", "", "has a password already"},
		{"redis://127.0.0.1:6379/0", "", "", "empty"},
		{"redis://127.0.0.1:6379/0", "a\nb", "", "control characters"},
		{"ftp://h/x", "pw", "", "not supported"},
	} {
		got, err := WithPassword(tc.url, tc.pw)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "old") {
				t.Errorf("%q: %v, want an error with %q (and no password)", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %q %v, want %q", tc.url, got, err, tc.want)
		}
	}
}
