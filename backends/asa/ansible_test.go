package asa

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/turnwall/turnwall/backends"
	"github.com/turnwall/turnwall/backends/backendtest"
)

// TestAnsibleParsed: Cisco's own parsers (cisco.asa asa_acls and asa_ogs,
// state parsed, bundled with Debian's ansible package) read every output of
// every example, snapshot and placement (with default-rule=emit, so the
// default entry too), and find every ACL entry (same
// order, line numbers, remark texts, permit/deny, the groups it names) and
// every object group with its member count.
//
// asa_acls reads "extended permit object-group SVC object-group SRC
// object-group DST" (a service group in place of the protocol, which the
// ASA configuration guide documents) as source SVC and destination SRC with
// service group DST: the test checks that the three names are there, not
// which field the parser put them in. Its template takes "log LEVEL" only,
// so a bare "log" (the ASA's default level) is not in its result either.
func TestAnsibleParsed(t *testing.T) {
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ansible-playbook is missing (make deps installs Debian's ansible)")
		}
		t.Skip("ansible-playbook is missing (make deps installs Debian's ansible)")
	}
	dir := t.TempDir()
	var files []string
	texts := map[string]string{}
	for _, c := range backendtest.Cases(t) {
		s := newSite(t, c.Program.Zones)
		for _, v := range []struct {
			name   string
			params map[string]string
		}{{"snapshot", nil}, {"placed", s.params("emit")}} {
			out := backendtest.Emit(t, Backend{}, c.Program, backends.Options{Params: v.params})
			f := filepath.Join(dir, c.Name+"-"+v.name+".cfg")
			if err := os.WriteFile(f, out[0].Data, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			texts[f] = string(out[0].Data)
		}
	}
	vars, _ := json.Marshal(map[string]any{"files": files, "out": filepath.Join(dir, "out.json")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ansible-playbook", "-i", "localhost,",
		"-e", "ansible_connection=ansible.netcommon.network_cli", "-e", string(vars), "testdata/ansible-parse.yml")
	cmd.Env = append(os.Environ(), "HOME="+dir, "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "out.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		ACLs []*struct {
			ACLs []struct {
				Name string           `json:"name"`
				ACEs []map[string]any `json:"aces"`
			} `json:"acls"`
		} `json:"acls"`
		OGs [][]struct {
			Type   string           `json:"object_type"`
			Groups []map[string]any `json:"object_groups"`
		} `json:"ogs"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.ACLs) != len(files) || len(res.OGs) != len(files) {
		t.Fatalf("%d and %d results for %d files", len(res.ACLs), len(res.OGs), len(files))
	}
	aclLineRE := regexp.MustCompile(`^access-list (\S+) (?:line (\d+) )?(remark|extended) (.*)$`)
	entries, groups := 0, 0
	for i, f := range files {
		name := filepath.Base(f)
		// What the file says, by our own reading.
		type ent struct{ line, kind, rest string }
		want := map[string][]ent{}
		for _, l := range strings.Split(texts[f], "\n") {
			if m := aclLineRE.FindStringSubmatch(l); m != nil {
				want[m[1]] = append(want[m[1]], ent{m[2], m[3], m[4]})
			}
		}
		got := map[string][]map[string]any{}
		if res.ACLs[i] != nil {
			for _, a := range res.ACLs[i].ACLs {
				got[a.Name] = a.ACEs
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: ansible found %d ACLs, the file has %d", name, len(got), len(want))
		}
		for acl, es := range want {
			aces := got[acl]
			if len(aces) != len(es) {
				t.Errorf("%s: ACL %s: ansible found %d entries, the file has %d", name, acl, len(aces), len(es))
				continue
			}
			for k, e := range es {
				a := aces[k]
				if e.line != "" && fmt.Sprint(a["line"]) != e.line {
					t.Errorf("%s: %s entry %d: line %v, want %s", name, acl, k+1, a["line"], e.line)
				}
				if e.kind == "remark" {
					if a["remark"] != e.rest {
						t.Errorf("%s: %s entry %d: remark %q, want %q", name, acl, k+1, a["remark"], e.rest)
					}
					continue
				}
				f := strings.Fields(e.rest)
				if a["grant"] != f[0] {
					t.Errorf("%s: %s entry %d: grant %v, want %s", name, acl, k+1, a["grant"], f[0])
				}
				flat, _ := json.Marshal(a)
				for j := 0; j+1 < len(f); j++ {
					if f[j] == "object-group" && !strings.Contains(string(flat), `"`+f[j+1]+`"`) {
						t.Errorf("%s: %s entry %d: group %s missing in %s", name, acl, k+1, f[j+1], flat)
					}
				}
				entries++
			}
		}
		// Object groups and their member counts.
		wantOG := map[string]int{}
		cur := ""
		for _, l := range strings.Split(texts[f], "\n") {
			switch {
			case strings.HasPrefix(l, "object-group "):
				cur = strings.Fields(l)[2]
				wantOG[cur] = 0
			case strings.HasPrefix(l, " ") && cur != "":
				wantOG[cur]++
			default:
				cur = ""
			}
		}
		gotOG := map[string]int{}
		for _, ty := range res.OGs[i] {
			for _, g := range ty.Groups {
				n := 0
				if no, ok := g["network_object"].(map[string]any); ok {
					for _, v := range no {
						if l, ok := v.([]any); ok {
							n += len(l)
						}
					}
				}
				if so, ok := g["services_object"].([]any); ok {
					n += len(so)
				}
				gotOG[fmt.Sprint(g["name"])] = n
			}
		}
		for g, n := range wantOG {
			if gotOG[g] != n {
				t.Errorf("%s: group %s: ansible found %d members, the file has %d", name, g, gotOG[g], n)
			}
			groups++
		}
	}
	t.Logf("ansible cisco.asa parsed %d files: %d ACEs, %d object groups", len(files), entries, groups)
}
