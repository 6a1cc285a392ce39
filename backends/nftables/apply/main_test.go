package apply

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// TestMain lets the test binary double as the child processes the kernel
// tests start (an apply to kill, a confirm watcher), and fails the run if any
// network namespace the tests made is left.
func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		os.Exit(runChild(child))
	}
	code := m.Run()
	if err := netns.WaitGone(2 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "namespaces not cleaned up:", err)
		code = 1
	}
	os.Exit(code)
}
