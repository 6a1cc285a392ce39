package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/relay/netns"
	"github.com/turnwall/turnwall/relay/netns/nstest"
)

func TestVerifyExamplePolicies(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	paths, _ := filepath.Glob("../../policies/*")
	paths = append(paths, "../../testdata/golden/cases/issue-example.hcl")
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI("verify", path, "--format", "json", "--timeout", "30s")
			if code != 0 {
				t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
			}
			var rep verifyReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if !rep.OK || rep.Failed != 0 || rep.Flows == 0 || len(rep.Groups) == 0 {
				t.Errorf("report: %+v", rep)
			}
		})
	}
	t.Cleanup(func() {
		if err := netns.WaitGone(5 * time.Second); err != nil {
			t.Error(err)
		}
	})
}

func TestVerifyText(t *testing.T) {
	nstest.NeedKernel(t, "ip")
	code, out, errOut := runCLI("verify", "../../testdata/golden/cases/issue-example.hcl", "--timeout", "30s")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{`agents "floor3"`, "corp.floor3.relay-return", "issue-example.hcl:25", "default deny", "as expected"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestVerifyUsage(t *testing.T) {
	for _, args := range [][]string{
		{"verify", "--format", "yaml", "../../policies/genesys-cloud"},
		{"verify", "a", "b"},
		{"verify", "--bogus"},
	} {
		if code, _, errOut := runCLI(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}
