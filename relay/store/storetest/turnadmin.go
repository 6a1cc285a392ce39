package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Turnadmin runs coturn's turnadmin with args and returns its standard
// output (user and secret lists). It removes the log file turnadmin leaves
// under /var/log (or /var/tmp, /tmp).
func Turnadmin(tb testing.TB, args ...string) string {
	tb.Helper()
	bin := Need(tb, "turnadmin")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.Process != nil {
		for _, dir := range []string{"/var/log", "/var/tmp", "/tmp"} {
			files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("turn_%d_*.log", cmd.Process.Pid)))
			for _, f := range files {
				os.Remove(f)
			}
		}
	}
	if err != nil {
		tb.Fatalf("turnadmin %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// TurnadminList returns the entries turnadmin -l or -S prints for realm
// ("name[realm]" lines), without the realm.
func TurnadminList(tb testing.TB, realm string, args ...string) []string {
	tb.Helper()
	var out []string
	for _, line := range strings.Split(Turnadmin(tb, args...), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutSuffix(line, "["+realm+"]"); ok {
			out = append(out, v)
		}
	}
	return out
}
