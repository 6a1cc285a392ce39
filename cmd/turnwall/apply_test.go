package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestApplyTimerCommand: the systemd timer runs this binary's rollback of
// one window, with absolute paths (systemd starts it in /).
func TestApplyTimerCommand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	got := timerCmd(&targetFlags{table: "turnwall", netns: "lab", stateDir: "state"}, "00ff")
	want := []string{exe, "rollback", "--if-expired", "--id", "00ff", "--state-dir", filepath.Join(wd, "state"), "--table", "turnwall", "--netns", "lab"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("timer command %q, want %q", got, want)
	}
}

// TestApplyPolicyLabel: messages name the policy, and a path that could
// break a line is quoted.
func TestApplyPolicyLabel(t *testing.T) {
	for _, c := range []struct{ name, path, want string }{
		{"lab", ".", `policy "lab"`},
		{"lab", "v1", `policy "lab" from v1`},
		{"lab", "dir/policy.hcl", `policy "lab" from dir/policy.hcl`},
		{"lab", "a b", `policy "lab" from "a b"`},
		{"x\ny", "p\n.hcl", `policy "x\ny" from "p\n.hcl"`},
	} {
		if got := policyLabel(c.name, c.path); got != c.want {
			t.Errorf("policyLabel(%q, %q) = %q, want %q", c.name, c.path, got, c.want)
		}
	}
}
