// Package reftest locates the reference material in shared/reference (real
// outputs of the paper's Python code) for tests. CI checks shared/ out beside
// the repository; SMOOTHADV_SHARED overrides where it is. Tests fail, not
// skip, when it is missing: the comparison with the reference is the point.
package reftest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the path of shared/reference.
func Dir(t testing.TB) string {
	t.Helper()
	shared := os.Getenv("SMOOTHADV_SHARED")
	if shared == "" {
		shared = filepath.Join(Repo(t), "..", "shared")
	}
	dir := filepath.Join(shared, "reference")
	if _, err := os.Stat(filepath.Join(dir, "sets.json")); err != nil {
		t.Fatalf("reference material missing (set SMOOTHADV_SHARED to the shared/ folder): %v", err)
	}
	return dir
}

// Set returns the paths of the certify logs that sets.json lists under name.
func Set(t testing.TB, name string) []string {
	t.Helper()
	dir := Dir(t)
	data, err := os.ReadFile(filepath.Join(dir, "sets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sets map[string][]string
	if err := json.Unmarshal(data, &sets); err != nil {
		t.Fatalf("sets.json: %v", err)
	}
	rel, ok := sets[name]
	if !ok || len(rel) == 0 {
		t.Fatalf("sets.json has no set %q", name)
	}
	paths := make([]string, len(rel))
	for i, p := range rel {
		paths[i] = filepath.Join(dir, p)
	}
	return paths
}

// Repo returns the repository's root, the nearest folder above the working
// directory that holds go.mod.
func Repo(t testing.TB) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("locating the repository root: %v", err)
	}
	return root
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
