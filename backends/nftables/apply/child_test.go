package apply

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/turnwall/turnwall/backends/nftables"
)

// Child roles of the test binary (TestMain runs them instead of the tests
// when childEnv is set), configured by environment variables:
//
//	apply: take the lock in TW_STATE and apply the JSON ruleset in TW_RULESET
//	       to TW_NETNS (the process the kill test kills)
//	watch: run the confirm watcher for TW_STATE, TW_NETNS, TW_TABLE, TW_ID
//	lock:  take the lock in TW_STATE, say "locked", and sleep
//	rollback: what the systemd timer runs: roll back window TW_ID if it
//	       has expired
func runChild(role string) int {
	st := State{Dir: os.Getenv("TW_STATE")}
	target := Target{Table: os.Getenv("TW_TABLE"), NetNS: os.Getenv("TW_NETNS")}
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, role+":", err)
		return 1
	}
	switch role {
	case "apply":
		data, err := os.ReadFile(os.Getenv("TW_RULESET"))
		if err != nil {
			return fail(err)
		}
		var rs nftables.Ruleset
		if err := json.Unmarshal(data, &rs); err != nil {
			return fail(err)
		}
		unlock, err := st.Lock(10 * time.Second)
		if err != nil {
			return fail(err)
		}
		defer unlock()
		target.Table = rs.Table
		if _, err := Apply(target, &rs); err != nil {
			return fail(err)
		}
		return 0
	case "watch":
		if err := st.Watch(target, os.Getenv("TW_ID"), 30*time.Second); err != nil {
			return fail(err)
		}
		return 0
	case "lock":
		if _, err := st.Lock(time.Second); err != nil {
			return fail(err)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		return 0
	case "rollback":
		unlock, err := st.Lock(10 * time.Second)
		if err != nil {
			return fail(err)
		}
		defer unlock()
		_, msg, err := st.Rollback(target, RollbackOptions{ID: os.Getenv("TW_ID"), IfExpired: true, By: "the test timer"})
		if err != nil {
			return fail(err)
		}
		fmt.Println(msg)
		return 0
	case "noop":
		return 0
	}
	return fail(fmt.Errorf("unknown child role"))
}

// child is a command running the test binary in a child role.
func child(role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	return cmd
}
