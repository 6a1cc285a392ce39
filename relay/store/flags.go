package store

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// WithPassword returns rawURL with password put in it (kept out of a
// command line: `--store-password-file`). A URL that already has a
// password is an error: say it once.
func WithPassword(rawURL, password string) (string, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return "", err
	}
	if password == "" {
		return "", errors.New("the store password file is empty")
	}
	if strings.IndexFunc(password, unicode.IsControl) >= 0 {
		return "", errors.New("the store password has control characters (a second line?)")
	}
	if _, set := u.User.Password(); set {
		return "", fmt.Errorf("store URL %q has a password already; give it in the URL or in the file, not both", u.Redacted())
	}
	user := ""
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, password)
	return u.String(), nil
}

// ParseQuotaSpec reads a fleet quota as `turnwall relay --fleet-quota`
// takes it: user=N,total=M,lease=30s[,fail-closed], each part optional but
// one of user and total required.
func ParseQuotaSpec(spec string) (QuotaOptions, error) {
	var o QuotaOptions
	const form = "give user=N,total=M,lease=DURATION (each optional, one limit at least), and fail-closed to refuse allocations while Redis is unreachable"
	if spec == "" {
		return o, errors.New(form)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		k, v, hasV := strings.Cut(strings.TrimSpace(part), "=")
		if seen[k] {
			return o, fmt.Errorf("%q given twice; %s", k, form)
		}
		seen[k] = true
		var err error
		switch {
		case k == "user" && hasV:
			o.UserLimit, err = strconv.Atoi(v)
			if err == nil && o.UserLimit < 1 {
				err = errors.New("at least 1")
			}
		case k == "total" && hasV:
			o.TotalLimit, err = strconv.Atoi(v)
			if err == nil && o.TotalLimit < 1 {
				err = errors.New("at least 1")
			}
		case k == "lease" && hasV:
			o.Lease, err = time.ParseDuration(v)
			if err == nil && (o.Lease < time.Second || o.Lease > time.Hour) {
				err = errors.New("between 1s and 1h")
			}
		case k == "fail-closed" && !hasV:
			o.FailClosed = true
		default:
			return o, fmt.Errorf("%q: %s", part, form)
		}
		if err != nil {
			return o, fmt.Errorf("%q: %v", part, err)
		}
	}
	if o.UserLimit == 0 && o.TotalLimit == 0 {
		return o, errors.New(form)
	}
	return o, nil
}
