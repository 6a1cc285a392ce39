// Package gitfs reads a directory of a git repository as it is at a
// revision, as an fs.FS, through `git ls-tree` and `git cat-file`: nothing is
// checked out and nothing is written. `turnwall diff --base` loads the old
// version of a policy through it with the same loader as the working tree.
//
// Symbolic links and submodules are reported with their own file modes, so
// the loader refuses them like any file that is not a regular file.
package gitfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"
)

// FS is a directory of a repository at a commit.
type FS struct {
	repo   string // the repository's top directory
	commit string // full object name of the commit
	dir    string // the directory inside the repository, "" for the top
}

// MaxBlob bounds a file read: its size is known from the tree before
// reading, and the loader's own limits are lower.
const MaxBlob = 64 << 20

// Timeout bounds each git command.
const Timeout = 30 * time.Second

// Open returns the directory dir (slash-separated, relative to the top of
// the repository that holds repoDir; "" or "." for the top) at revision rev.
func Open(repoDir, rev, dir string) (*FS, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return nil, fmt.Errorf("%q is not a revision", rev)
	}
	out, err := git(repoDir, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("%q is not a revision of %s", rev, repoDir)
	}
	dir = path.Clean(strings.TrimPrefix(dir, "/"))
	if dir == "." {
		dir = ""
	}
	if dir != "" && !fs.ValidPath(dir) {
		return nil, fmt.Errorf("%q is not a directory inside the repository", dir)
	}
	return &FS{repo: repoDir, commit: strings.TrimSpace(string(out)), dir: dir}, nil
}

// Commit returns the full object name of the revision.
func (f *FS) Commit() string { return f.commit }

// entry is one line of `git ls-tree -l -z`.
type entry struct {
	mode uint32 // git's octal mode: 100644, 100755, 120000, 040000, 160000
	typ  string // blob, tree, commit
	obj  string
	size int64
	name string // base name
}

func (f *FS) repoPath(name string) string {
	if name == "." {
		return f.dir
	}
	if f.dir == "" {
		return name
	}
	return f.dir + "/" + name
}

// lookup returns the entry for name (a valid fs path).
func (f *FS) lookup(name string) (*entry, error) {
	p := f.repoPath(name)
	if p == "" {
		return &entry{mode: 0o40000, typ: "tree", name: "."}, nil
	}
	list, err := f.lsTree(p)
	if err != nil {
		return nil, err
	}
	for _, e := range list {
		if e.name == path.Base(p) {
			return e, nil
		}
	}
	return nil, fs.ErrNotExist
}

func (f *FS) lsTree(p string) ([]*entry, error) {
	out, err := git(f.repo, nil, "ls-tree", "-l", "-z", "--full-tree", f.commit, "--", p)
	if err != nil {
		return nil, err
	}
	return parseList(out)
}

// Open opens a file or directory. Reading a blob happens on the first Read.
func (f *FS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e, err := f.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if e.typ == "tree" {
		list, err := f.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &dir{e: e, list: list}, nil
	}
	return &file{fs: f, name: name, e: e}, nil
}

// dir is an open directory.
type dir struct {
	e    *entry
	list []fs.DirEntry
	pos  int
}

func (d *dir) Stat() (fs.FileInfo, error) { return info{d.e}, nil }
func (d *dir) Close() error               { return nil }
func (d *dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.e.name, Err: errors.New("is a directory")}
}

func (d *dir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.list[d.pos:]
	if n <= 0 {
		d.pos = len(d.list)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.pos += n
	return rest[:n], nil
}

// ReadDir lists a directory, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	e, err := f.lookup(name)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if e.typ != "tree" {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	p := f.repoPath(name)
	if p != "" {
		p += "/"
	}
	var list []*entry
	if p == "" {
		out, err := git(f.repo, nil, "ls-tree", "-l", "-z", f.commit)
		if err != nil {
			return nil, err
		}
		list, err = parseList(out)
		if err != nil {
			return nil, err
		}
	} else if list, err = f.lsTree(p); err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(list))
	for _, e := range list {
		out = append(out, fs.FileInfoToDirEntry(info{e}))
	}
	return out, nil
}

func parseList(out []byte) ([]*entry, error) {
	var list []*entry
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		meta, name, ok := strings.Cut(string(rec), "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 4 {
			return nil, fmt.Errorf("unexpected git ls-tree output %q", rec)
		}
		mode, err := strconv.ParseUint(fields[0], 8, 32)
		if err != nil {
			return nil, fmt.Errorf("unexpected git ls-tree mode %q", fields[0])
		}
		size, _ := strconv.ParseInt(fields[3], 10, 64)
		list = append(list, &entry{mode: uint32(mode), typ: fields[1], obj: fields[2], size: size, name: path.Base(name)})
	}
	return list, nil
}

type info struct{ e *entry }

func (i info) Name() string       { return i.e.name }
func (i info) Size() int64        { return i.e.size }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.e.typ == "tree" }
func (i info) Sys() any           { return nil }
func (i info) Mode() fs.FileMode {
	switch {
	case i.e.typ == "tree":
		return fs.ModeDir | 0o755
	case i.e.mode == 0o120000:
		return fs.ModeSymlink | 0o777
	case i.e.typ != "blob":
		return fs.ModeIrregular // a submodule
	case i.e.mode&0o111 != 0:
		return 0o755
	}
	return 0o644
}

type file struct {
	fs   *FS
	name string
	e    *entry
	r    io.Reader
}

func (f *file) Stat() (fs.FileInfo, error) { return info{f.e}, nil }
func (f *file) Close() error               { return nil }

// Read streams the blob. Only regular files are read; a symbolic link's
// target text is never returned as content.
func (f *file) Read(p []byte) (int, error) {
	if f.r == nil {
		if !(info{f.e}).Mode().IsRegular() {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: errors.New("not a regular file")}
		}
		if f.e.size > MaxBlob {
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: fmt.Errorf("larger than %d MiB", MaxBlob>>20)}
		}
		out, err := git(f.fs.repo, nil, "cat-file", "blob", f.e.obj)
		if err != nil {
			return 0, err
		}
		f.r = bytes.NewReader(out)
	}
	return f.r.Read(p)
}

// git runs a git command in dir and returns its standard output.
func git(dir string, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", strings.Join(args, " "), msg)
	}
	return out.Bytes(), nil
}
