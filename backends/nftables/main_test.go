package nftables

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
)

// TestMain fails the run if any network namespace the tests made is left.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := netns.WaitGone(2 * time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "namespaces not cleaned up:", err)
		code = 1
	}
	os.Exit(code)
}
