package version

import (
	"runtime/debug"
	"testing"
)

func TestGet(t *testing.T) {
	defer func(v, r string, rb func() (*debug.BuildInfo, bool)) { version, revision, readBuildInfo = v, r, rb }(version, revision, readBuildInfo)
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/turnwall/turnwall", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-07T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name         string
		ldv, ldr     string
		bi           *debug.BuildInfo
		wantVersion  string
		wantRevision string
	}{
		{"no build info", "", "", nil, Devel, ""},
		{"go build of a tree", "", "", bi, "(devel)", "abc123"},
		{"go install module@version", "", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, "v0.3.1", ""},
		{"ldflags win", "0.1.0~git20261207.e8768dc", "e8768dc", bi, "0.1.0~git20261207.e8768dc", "e8768dc"},
		{"ldflags with a newline are ignored", "1.0\nrm -rf /", "x y", bi, "(devel)", "abc123"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			version, revision = tc.ldv, tc.ldr
			readBuildInfo = func() (*debug.BuildInfo, bool) { return tc.bi, tc.bi != nil }
			got := Get()
			if got.Version != tc.wantVersion || got.Revision != tc.wantRevision {
				t.Fatalf("Get() = %+v, want version %q revision %q", got, tc.wantVersion, tc.wantRevision)
			}
			if String() != tc.wantVersion {
				t.Fatalf("String() = %q", String())
			}
		})
	}
}

// In go test the version is "(devel)": goldens that name it stay the same on
// every machine.
func TestDevelInTests(t *testing.T) {
	if s := String(); s != Devel {
		t.Fatalf("String() in tests = %q, want %q", s, Devel)
	}
}
