package load

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/turnwall/turnwall/compiler/diag"
)

// Limits on what a policy may make turnwall read. A policy may come from an
// untrusted change request that CI validates, so every file it names is read
// from inside its root only, and nothing it holds may exhaust memory, stack or
// time. The README's "Untrusted policies" section documents the figures.
const (
	// MaxPolicyFile bounds one policy file (*.hcl, *.hcl.json).
	MaxPolicyFile = 8 << 20
	// MaxPolicyBytes bounds all policy files of a policy together.
	MaxPolicyBytes = 32 << 20
	// MaxPolicyFiles bounds the number of policy files in a directory.
	MaxPolicyFiles = 1000
	// MaxInputFile bounds a file the policy names (ranges_file, tls_cert).
	MaxInputFile = 4 << 20
	// MaxNesting bounds how deeply brackets, braces, parentheses and
	// template interpolations nest in a policy file.
	MaxNesting = 128
)

// FileError is why a file could not be read. Code is diag.FileOutsidePolicy
// for files outside the policy root or not regular files, diag.ResourceLimit
// for files over a size limit, "" otherwise (missing, unreadable).
type FileError struct {
	Code diag.Code
	Name string // as shown to the user
	Msg  string
}

func (e *FileError) Error() string { return e.Msg }

// CodeOf returns the code of a FileError in err's chain, or "".
func CodeOf(err error) diag.Code {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// DirFS returns a file system rooted at dir that cannot leave it: names with
// "..", absolute names and symbolic links pointing outside dir are refused
// (os.Root). Files are opened non-blocking, so a FIFO or device cannot hang
// the open; ReadFile then refuses everything that is not a regular file.
func DirFS(dir string) fs.FS {
	return &dirFS{dir: dir}
}

type dirFS struct {
	dir  string
	root *os.Root
	err  error
}

func (d *dirFS) open() (*os.Root, error) {
	if d.root == nil && d.err == nil {
		d.root, d.err = os.OpenRoot(d.dir)
	}
	return d.root, d.err
}

func (d *dirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (d *dirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, ok := f.(fs.ReadDirFile)
	if !ok {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return dir.ReadDir(-1)
}

func (d *dirFS) Stat(name string) (fs.FileInfo, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Stat()
}

// ReadFile reads name from fsys: a regular file of at most limit bytes, found
// inside fsys without leaving it. shown is the name used in messages. The
// size is enforced while reading, never trusted from stat (files in /proc
// report size 0).
func ReadFile(fsys fs.FS, name, shown string, limit int64) ([]byte, error) {
	if !fs.ValidPath(name) {
		return nil, outside(shown)
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, openError(shown, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, &FileError{Name: shown, Msg: fmt.Sprintf("cannot read %s: %v", shown, trimPathError(err))}
	}
	if !info.Mode().IsRegular() {
		return nil, &FileError{Code: diag.FileOutsidePolicy, Name: shown,
			Msg: fmt.Sprintf("%s is not a regular file (%s); a policy reads only regular files inside its directory", shown, kind(info.Mode()))}
	}
	data, err := readAll(io.LimitReader(f, limit+1), min(info.Size(), limit)+1)
	if err != nil {
		return nil, &FileError{Name: shown, Msg: fmt.Sprintf("cannot read %s: %v", shown, trimPathError(err))}
	}
	if int64(len(data)) > limit {
		return nil, &FileError{Code: diag.ResourceLimit, Name: shown,
			Msg: fmt.Sprintf("%s is larger than %s, the limit for this kind of file", shown, sizeString(limit))}
	}
	return data, nil
}

// readAll is io.ReadAll starting with room for hint bytes (the size stat
// reports; the read still stops at the reader's end), so that a large file
// is read into one allocation.
func readAll(r io.Reader, hint int64) ([]byte, error) {
	b := make([]byte, 0, max(hint, 512))
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

func outside(shown string) error {
	return &FileError{Code: diag.FileOutsidePolicy, Name: shown,
		Msg: fmt.Sprintf("%s is outside the policy directory; a policy may read only files inside its own directory", shown)}
}

func openError(shown string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &FileError{Name: shown, Msg: fmt.Sprintf("cannot read %s: %v", shown, trimPathError(err))}
	case errors.Is(err, fs.ErrInvalid), strings.Contains(err.Error(), "escapes from parent"),
		errors.Is(err, syscall.ELOOP), strings.Contains(err.Error(), "symbolic link"):
		return &FileError{Code: diag.FileOutsidePolicy, Name: shown,
			Msg: fmt.Sprintf("%s leads outside the policy directory (a symbolic link or a path with ..); a policy may read only files inside its own directory", shown)}
	}
	return &FileError{Name: shown, Msg: fmt.Sprintf("cannot read %s: %v", shown, trimPathError(err))}
}

func trimPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsDir():
		return "a directory"
	}
	return "not a plain file"
}

func sizeString(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// LocalName turns a path written in a policy (relative to the policy root, or
// absolute) into a name inside the root's file system, or reports that it
// lies outside. absRoot is the root as an absolute directory on disk.
func LocalName(absRoot, p string) (string, bool) {
	if p == "" || strings.ContainsRune(p, 0) {
		return "", false
	}
	if filepath.IsAbs(p) {
		rel, err := filepath.Rel(absRoot, filepath.Clean(p))
		if err != nil {
			return "", false
		}
		p = rel
	}
	name := path.Clean(filepath.ToSlash(p))
	if !filepath.IsLocal(filepath.FromSlash(name)) || !fs.ValidPath(name) {
		return "", false
	}
	return name, true
}

// NestingDepth returns how deeply src nests, and the offset where the
// deepest level is first reached: brackets, braces, parentheses, strings,
// template interpolations and heredocs each count a level, and so does each
// operator of a chain of unary operators (!!!x, - - -1), as the parser
// recurses on all of them. With json set, src is JSON: every bracket counts,
// inside strings too (their values are templates). An unbalanced bracket can
// only raise the count, so the check errs on the safe side.
func NestingDepth(src []byte, json bool) (depth, at int) {
	if json {
		return jsonDepth(src)
	}
	const (
		bracket = iota
		interp
		str
		heredoc
	)
	type frame struct {
		kind   int
		marker string
	}
	var stack []frame
	top := func() int {
		if len(stack) == 0 {
			return bracket
		}
		return stack[len(stack)-1].kind
	}
	run := 0
	push := func(f frame, i int) {
		stack = append(stack, f)
		run = 0
		if len(stack) > depth {
			depth, at = len(stack), i
		}
	}
	pop := func() {
		if len(stack) > 0 {
			stack = stack[:len(stack)-1]
		}
	}
	lineStart := true
	for i := 0; i < len(src); i++ {
		c := src[i]
		atLine := lineStart
		lineStart = c == '\n'
		switch top() {
		case str, heredoc:
			if top() == heredoc && atLine {
				end := i
				for end < len(src) && src[end] != '\n' {
					end++
				}
				if strings.TrimSpace(string(src[i:end])) == stack[len(stack)-1].marker {
					pop()
					i = end - 1
					continue
				}
			}
			switch {
			case c == '\\' && top() == str:
				i++
			case c == '"' && top() == str, c == '\n' && top() == str:
				pop()
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 2 // $${ is a literal ${
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				push(frame{kind: interp}, i)
				i++
			}
			continue
		}
		switch c {
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				for i < len(src) && src[i] != '\n' {
					i++
				}
				i--
			} else if i+1 < len(src) && src[i+1] == '*' {
				end := strings.Index(string(src[i+2:]), "*/")
				if end < 0 {
					return depth, at
				}
				i += end + 3
			}
			run = 0
		case '"':
			push(frame{kind: str}, i)
		case '<':
			if m, n := heredocMarker(src[i:]); m != "" {
				push(frame{kind: heredoc, marker: m}, i)
				i += n - 1
				lineStart = true
			} else {
				run = 0
			}
		case '(', '[', '{':
			push(frame{kind: bracket}, i)
		case ')', ']', '}':
			pop()
			run = 0
		case '!', '-':
			run++
			if len(stack)+run > depth {
				depth, at = len(stack)+run, i
			}
		case ' ', '\t', '\r', '\n':
		default:
			run = 0
		}
	}
	return depth, at
}

// heredocMarker recognises <<EOT or <<-EOT up to and including its newline.
func heredocMarker(b []byte) (marker string, n int) {
	if len(b) < 3 || b[0] != '<' || b[1] != '<' {
		return "", 0
	}
	i := 2
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && (b[i] == '_' || b[i] >= 'A' && b[i] <= 'Z' || b[i] >= 'a' && b[i] <= 'z' || b[i] >= '0' && b[i] <= '9') {
		i++
	}
	if i == start {
		return "", 0
	}
	marker = string(b[start:i])
	if i < len(b) && b[i] == '\r' {
		i++
	}
	if i >= len(b) || b[i] != '\n' {
		return "", 0
	}
	return marker, i + 1
}

func jsonDepth(src []byte) (depth, at int) {
	d, run := 0, 0
	for i, c := range src {
		switch c {
		case '(', '[', '{':
			d++
			run = 0
			if d > depth {
				depth, at = d, i
			}
		case ')', ']', '}':
			if d > 0 {
				d--
			}
			run = 0
		case '!', '-':
			run++
			if d+run > depth {
				depth, at = d+run, i
			}
		case ' ', '\t', '\r', '\n':
		default:
			run = 0
		}
	}
	return depth, at
}

// ReadFile reads a file the policy names (ranges_file, tls_cert), written as
// in the policy: relative to the root, or absolute and inside it. It returns
// the name to show in diagnostics (the root joined with the name). Files
// outside the root, symbolic links leading out of it, and anything but a
// regular file of at most MaxInputFile bytes are refused with a FileError.
func (cfg *Config) ReadFile(p string) (shown string, data []byte, err error) {
	shown = p
	if !filepath.IsAbs(p) {
		shown = filepath.Join(cfg.Root, p)
	}
	absRoot, err := filepath.Abs(cfg.Root)
	if err != nil {
		return shown, nil, &FileError{Name: shown, Msg: err.Error()}
	}
	name, ok := LocalName(absRoot, p)
	if !ok {
		return shown, nil, outside(fmt.Sprintf("%q", p))
	}
	fsys := cfg.FS
	if fsys == nil {
		fsys = DirFS(cfg.Root)
	}
	data, err = ReadFile(fsys, name, shown, MaxInputFile)
	return shown, data, err
}
