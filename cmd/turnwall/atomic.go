package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFilesAtomic writes every file to a temporary file in its destination
// directory, syncs it, and only when all are written renames them into place.
// On any error the temporary files are removed and no destination changes.
func writeFilesAtomic(order []string, files map[string][]byte) error {
	type pending struct{ tmp, dest string }
	var done []pending
	cleanup := func() {
		for _, p := range done {
			os.Remove(p.tmp)
		}
	}
	for _, dest := range order {
		tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-*")
		if err != nil {
			cleanup()
			return fmt.Errorf("cannot write %s: %w", dest, err)
		}
		done = append(done, pending{tmp.Name(), dest})
		_, werr := tmp.Write(files[dest])
		serr := tmp.Sync()
		cerr := tmp.Close()
		if err := firstErr(werr, serr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
			cleanup()
			return fmt.Errorf("cannot write %s: %w", dest, err)
		}
	}
	for i, p := range done {
		if err := os.Rename(p.tmp, p.dest); err != nil {
			for _, rest := range done[i:] {
				os.Remove(rest.tmp)
			}
			return fmt.Errorf("cannot write %s: %w", p.dest, err)
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
