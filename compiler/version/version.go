// Package version tells which turnwall wrote something: the CLI's `version`
// command prints it, and generated rule sets may name it in their headers.
//
// It imports nothing of turnwall, so every stage and backend may use it.
// The version comes from, in order: the linker (-ldflags "-X
// github.com/turnwall/turnwall/compiler/version.version=1.2.3", as `make deb`
// does), the main module's version in the build info (set by `go install
// module@version`), or "(devel)". Tests and goldens therefore see "(devel)"
// unless they build with -ldflags; String never includes a time, so output
// that names it stays deterministic for one build.
package version

import (
	"runtime/debug"
	"strings"
)

// Set with -ldflags -X; empty in a plain `go build` or `go test`.
var (
	version  = ""
	revision = ""
)

// Devel is the version of a build that has none: go build or go test of a
// working tree.
const Devel = "(devel)"

// Info is what a build knows of itself.
type Info struct {
	Version   string `json:"version"`            // package or module version, or "(devel)"
	Revision  string `json:"revision,omitempty"` // VCS revision the binary was built from
	Time      string `json:"time,omitempty"`     // commit time of that revision (RFC 3339)
	Modified  bool   `json:"modified,omitempty"` // the working tree had uncommitted changes
	GoVersion string `json:"go"`                 // Go toolchain
	Module    string `json:"module,omitempty"`   // main module path
}

// readBuildInfo is debug.ReadBuildInfo, replaceable in tests.
var readBuildInfo = debug.ReadBuildInfo

// Get returns the build's version information.
func Get() Info {
	in := Info{Version: Devel}
	bi, ok := readBuildInfo()
	if ok {
		in.GoVersion = bi.GoVersion
		in.Module = bi.Main.Path
		if v := bi.Main.Version; v != "" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if v := clean(version); v != "" {
		in.Version = v
	}
	if r := clean(revision); r != "" {
		in.Revision = r
	}
	return in
}

// String is the version alone, e.g. "0.1.0", "v0.3.1" or "(devel)": what a
// generated file's header names.
func String() string { return Get().Version }

// clean keeps a linker-set value to one line of printable ASCII, so no build
// flag can add a line to a generated file that names the version.
func clean(s string) string {
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return ""
		}
	}
	return s
}
