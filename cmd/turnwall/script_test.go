package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/turnwall/turnwall/compiler/testkit"
)

// update is the shared -update flag of the test kit (go test -update rewrites
// the scripts' expected output).
var update = testkit.Update

// TestMain lets the test binary double as the turnwall command inside the
// scripts: testscript installs it in $PATH as "turnwall".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"turnwall": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script. With -update, failing
// cmp commands rewrite the expected files inside the scripts.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                "../../testdata/script",
		UpdateScripts:      *update,
		RequireUniqueNames: true,
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, ".home")
			if err := os.MkdirAll(home, 0o755); err != nil {
				return err
			}
			env.Setenv("HOME", home)
			env.Setenv("NO_COLOR", "1")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":  cmdExitcode,
			"listdir":   cmdListdir,
			"fileperm":  cmdFileperm,
			"turnrelay": cmdTurnrelay,
		},
	})
}

// cmdExitcode runs a program like exec and checks its exact exit status:
//
//	exitcode 2 turnwall compile --target nope
//
// stdout and stderr stay available to the following stdout/stderr/cmp lines.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode CODE program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// cmdListdir prints a directory's entries, hidden ones included, sorted, one a
// line (directories with a trailing /), so a script can cmp them and see stray
// temporary files.
func cmdListdir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: listdir DIR")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(ts.Stdout(), n)
	}
}

// cmdFileperm prints a file's permission bits in octal (0644) and its type when
// it is not a regular file (symlink).
func cmdFileperm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fileperm FILE")
	}
	info, err := os.Lstat(ts.MkAbs(args[0]))
	ts.Check(err)
	kind := ""
	if info.Mode()&os.ModeSymlink != 0 {
		kind = " symlink"
	}
	fmt.Fprintf(ts.Stdout(), "%04o%s\n", info.Mode().Perm(), kind)
}
