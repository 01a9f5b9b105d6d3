// Package filetest helps tests check that a refusal leaves files alone.
package filetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Snapshot maps every file and folder under dir (by its path relative to
// dir; folders end in a slash and map to "") to its content, so that two
// snapshots are equal exactly when nothing was created, removed or changed.
// Lock files (.NAME.lock, package outputs) are left out: a run takes one
// before it can refuse, and they hold no data.
func Snapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		if name := d.Name(); strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".lock") {
			return nil
		}
		b, err := os.ReadFile(path)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Read returns the file's content, failing the test when it cannot be read.
func Read(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
