package fortios

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

// pyFG is Debian's python3-pyfg: its FortiConfig parses FortiOS CLI text
// into blocks, entries and parameters. It is run with Debian's own python3.
const debianPython = "/usr/bin/python3"

type pyfgResult struct {
	Blocks  map[string]map[string]map[string]string `json:"blocks"`
	Ignored []string                                `json:"ignored"`
}

func pyfgParse(t *testing.T, text []byte) pyfgResult {
	t.Helper()
	if err := exec.Command(debianPython, "-c", "import pyFG.forticonfig").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-pyfg is missing (make deps installs it): %v", err)
		}
		t.Skipf("python3-pyfg is not installed (apt-get install python3-pyfg): %v", err)
	}
	cmd := exec.Command(debianPython, "testdata/pyfg_parse.py")
	cmd.Stdin = bytes.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pyFG: %v\n%s", err, stderr.String())
	}
	var r pyfgResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPyFG: pyFG's FortiConfig parses the snapshot and the first-install
// script of every example into exactly the tables, entries and values
// turnwall meant (its plan), and the only lines it does not take are the
// CLI's list and order commands (append, move, unset, execute), which the
// box model covers.
func TestPyFG(t *testing.T) {
	for _, c := range backendtest.Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			s, _ := parseSettings(backends.Options{})
			pl, err := buildPlan(c.Program, s)
			if err != nil {
				t.Fatal(err)
			}
			want := pl.state()
			snapshot := backendtest.Emit(t, Backend{}, c.Program, backends.Options{})[0].Data
			script := change(t, nil, c.Program, backends.Options{})
			for _, text := range [][]byte{snapshot, script} {
				r := pyfgParse(t, text)
				for _, line := range r.Ignored {
					w := strings.Fields(line)[0]
					if w != "append" && w != "move" && w != "unset" && w != "execute" {
						t.Errorf("pyFG does not take %q", line)
					}
				}
				for table, entries := range want.tables {
					if len(entries) == 0 {
						continue
					}
					got := r.Blocks[table]
					if len(got) != len(entries) {
						t.Errorf("pyFG sees %d entries in %s, want %d", len(got), table, len(entries))
					}
					for name, fields := range entries {
						e, ok := got[name]
						if !ok {
							t.Errorf("pyFG has no %s %q", table, name)
							continue
						}
						for f, v := range fields {
							if f == "member" && len(v) > maxMembersPerLine || table == tblPolicy && f == "status" {
								continue // append lines, and the install's disable/enable
							}
							if f == "type" && e[f] == "" && v[0] == "ipmask" {
								continue // the default, not written by Change
							}
							if g := strings.ReplaceAll(e[f], `"`, ""); g != strings.Join(v, " ") {
								t.Errorf("%s %q: pyFG reads %s = %q, want %q", table, name, f, g, strings.Join(v, " "))
							}
						}
					}
				}
			}
		})
	}
}
