// Package atomicfile replaces files so that a crash or power loss leaves
// either the old file or the complete new one, never a torn file: the new
// content goes to a unique temporary file in the same folder, which is
// synced, renamed over the target, and the folder synced so that the rename
// itself survives a power loss.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, mode 0644.
func Write(path string, data []byte) error {
	return WriteWith(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFunc fills the temporary file, either through f or by the file name
// f.Name() (for writers that take a path, such as libtorch's save).
type WriteFunc func(f *os.File) error

// WriteWith replaces path with what fill writes into a temporary file
// beside it. On any error the temporary file is removed and path is left as
// it was.
func WriteWith(path string, fill WriteFunc) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		// Name the folder, not the temporary file the user never asked for.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("folder %s: %w", dir, pe.Err)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	// Sync through a fresh descriptor: fill may have replaced the file by
	// name, which leaves tmp pointing at the unlinked original.
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := syncPath(tmp.Name()); err != nil {
		return err
	}
	// CreateTemp makes the file 0600; results are for everyone to read.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if err := syncPath(dir); err != nil {
		return fmt.Errorf("sync folder: %w", err)
	}
	return nil
}

// syncPath fsyncs the file or folder at path.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
