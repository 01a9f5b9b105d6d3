// Package outputs guards what a command writes: no output may be one of its
// inputs (by file identity, through symlinks and other spellings), one run
// at a time may write an output (an flock that the kernel drops when the
// process dies, however it dies), and the temporary files that killed runs
// left beside an output are removed by the run that holds its lock.
package outputs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/smoothadv/smoothadv/internal/samepath"
)

// File is a path and what it is to the command, for messages ("the model
// file", "--cpuprofile").
type File struct {
	Role, Path string
}

// CheckDistinct refuses when an output names the same file as an input.
// Outputs and inputs with an empty path are skipped.
func CheckDistinct(inputs, outputs []File) error {
	for _, out := range outputs {
		for _, in := range inputs {
			if out.Path != "" && in.Path != "" && samepath.Same(out.Path, in.Path) {
				return fmt.Errorf("%s %s is %s %s: writing it would destroy an input; write it elsewhere", out.Role, out.Path, in.Role, in.Path)
			}
		}
	}
	return nil
}

// CheckFile refuses an output path that exists but is no regular file (a
// folder, /dev/null, a FIFO): the files written beside it (PATH.json, ...)
// would land where nobody looks.
func CheckFile(role, path string) error {
	st, err := os.Stat(path)
	if err != nil || st.Mode().IsRegular() {
		return nil // a missing path is created; other errors come at the write
	}
	if st.IsDir() {
		return fmt.Errorf("%s %s is a folder: give a file's path", role, path)
	}
	return fmt.Errorf("%s %s is not a regular file (%s): give a file's path", role, path, st.Mode().Type())
}

// Lock is an exclusive hold on an output.
type Lock struct {
	f *os.File
}

// LockFile is the lock of an output path: .NAME.lock beside it, or .lock
// inside a folder given with isDir.
func LockFile(path string, isDir bool) string {
	if isDir {
		return filepath.Join(path, ".lock")
	}
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")
}

// Take locks the output at path (a folder when isDir) for this process, or
// refuses at once when another run holds it. The lock file stays (removing
// it would race with a run taking it); the lock goes with Release or the
// process.
func Take(path string, isDir bool) (*Lock, error) {
	name := LockFile(path, isDir)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: the folder %s does not exist", path, filepath.Dir(name))
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is busy: another run is writing it (it holds %s); wait for it, or write elsewhere", path, name)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock; releasing twice, or a nil lock, is harmless.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	l.f.Close() // closing the descriptor drops the flock
	l.f = nil
}

// RemoveStaleTemps removes the temporary files that atomicfile leaves
// beside path (.NAME.tmp-*) when a run is killed mid-write. Call it only
// while holding path's lock: no other run can be writing one.
func RemoveStaleTemps(path string) error {
	stale, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+globEscape(filepath.Base(path))+".tmp-*"))
	if err != nil {
		return err
	}
	for _, p := range stale {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove a killed run's temporary file: %w", err)
		}
	}
	return nil
}

// globEscape quotes the characters that filepath.Match gives meaning.
func globEscape(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '*' || r == '?' || r == '[' || r == '\\' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}
