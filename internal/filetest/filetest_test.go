package filetest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSnapshotSeesEveryChange(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := Snapshot(t, dir)
	if want := map[string]string{"a": "x"}; !reflect.DeepEqual(before, want) {
		t.Fatalf("snapshot %v, want %v", before, want)
	}
	changes := []func() error{
		func() error { return os.Mkdir(filepath.Join(dir, "sub"), 0o755) },
		func() error { return os.WriteFile(filepath.Join(dir, "sub", "b"), nil, 0o644) },
		func() error { return os.WriteFile(filepath.Join(dir, "a"), []byte("y"), 0o644) },
		func() error { return os.Remove(filepath.Join(dir, "a")) },
	}
	for i, change := range changes {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		after := Snapshot(t, dir)
		if reflect.DeepEqual(after, before) {
			t.Errorf("change %d not seen: %v", i, after)
		}
		before = after
	}
}
