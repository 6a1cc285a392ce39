package main

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/relay/netns/nstest"
)

// The lints must agree with verify on every shipped example and every trap
// policy: what validate predicts (no media path, a realm mismatch, one-way
// audio) is what real calls through the compiled rules show, and a policy
// validate finds nothing wrong with passes verify.
func TestLintsAgreeWithVerify(t *testing.T) {
	nstest.NeedKernel(t, "ip", "nft")
	paths, _ := filepath.Glob("../../policies/*")
	traps, _ := filepath.Glob("../../testdata/verify/*")
	paths = append(paths, traps...)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			_, out, _ := runCLI("validate", path, "--format", "json")
			var v struct {
				Diagnostics []struct {
					Severity string `json:"severity"`
					Code     string `json:"code"`
				} `json:"diagnostics"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("validate --format json: %v\n%s", err, out)
			}
			lint := map[string]bool{}
			var found []string
			for _, d := range v.Diagnostics {
				key := strings.ToUpper(d.Severity[:1]) + ":" + d.Code
				lint[key] = true
				found = append(found, key)
			}
			sort.Strings(found)
			predictFail, predictNoCall := lint["W:TW207"], lint["E:TW201"] || lint["E:TW204"]
			for k := range lint {
				predictFail = predictFail || strings.HasPrefix(k, "E:TW2")
			}

			code, vout, errOut := runCLI("verify", path, "--format", "json", "--timeout", "60s")
			var rep struct {
				OK        bool     `json:"ok"`
				Calls     int      `json:"calls"`
				CallsFail int      `json:"calls_failed"`
				Troubles  []string `json:"troubles"`
			}
			if err := json.Unmarshal([]byte(vout), &rep); err != nil {
				t.Fatalf("verify exit %d: %v\n%s\n%s", code, err, vout, errOut)
			}
			connected := rep.Calls - rep.CallsFail
			t.Logf("lint %v; verify exit %d, ok %v, %d of %d calls connected", found, code, rep.OK, connected, rep.Calls)
			if rep.Calls == 0 {
				t.Fatalf("verify placed no call: %s", errOut)
			}
			if rep.OK == predictFail {
				t.Errorf("validate predicts failure=%v (%v) but verify ok=%v: %v", predictFail, found, rep.OK, rep.Troubles)
			}
			if (connected == 0) != predictNoCall {
				t.Errorf("validate predicts no call=%v (%v) but verify connected %d of %d calls", predictNoCall, found, connected, rep.Calls)
			}
			if (code == 0) != rep.OK {
				t.Errorf("verify exit %d with ok=%v", code, rep.OK)
			}
		})
	}
}
