package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFilesAtomic writes every file to a temporary file in its destination
// directory, syncs it, and only when all are written renames them into place.
// On any error the temporary files are removed and no destination changes.
// A destination that is a symbolic link is written through (the link stays),
// and an existing file keeps its permissions.
func writeFilesAtomic(order []string, files map[string][]byte) error {
	type pending struct{ tmp, dest string }
	var done []pending
	cleanup := func() {
		for _, p := range done {
			os.Remove(p.tmp)
		}
	}
	for _, name := range order {
		dest := name
		if resolved, err := filepath.EvalSymlinks(name); err == nil {
			dest = resolved
		}
		mode := os.FileMode(0o644)
		if info, err := os.Stat(dest); err == nil {
			mode = info.Mode().Perm()
		}
		tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
		if err != nil {
			cleanup()
			return fmt.Errorf("cannot write %s: %v", name, unwrapPath(err))
		}
		done = append(done, pending{tmp.Name(), dest})
		_, werr := tmp.Write(files[name])
		serr := tmp.Sync()
		cerr := tmp.Close()
		if err := firstErr(werr, serr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
			cleanup()
			return fmt.Errorf("cannot write %s: %v", name, unwrapPath(err))
		}
	}
	for i, p := range done {
		if err := os.Rename(p.tmp, p.dest); err != nil {
			for _, rest := range done[i:] {
				os.Remove(rest.tmp)
			}
			return fmt.Errorf("cannot write %s: %v", p.dest, unwrapPath(err))
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// unwrapPath drops the temporary file's name from an error: the user asked
// for the destination and should only see that.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
