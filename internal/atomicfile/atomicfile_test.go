package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	for _, content := range []string{"first\n", "second, longer\n"} {
		if err := Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	assertOnly(t, dir, "out")
}

// TestWriteWithByName fills the temporary file by its name, as libtorch's
// save does, replacing the file CreateTemp made.
func TestWriteWithByName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pt")
	err := WriteWith(path, func(f *os.File) error {
		if err := os.Remove(f.Name()); err != nil {
			return err
		}
		return os.WriteFile(f.Name(), []byte("by name"), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "by name" {
		t.Fatalf("read %q, %v", got, err)
	}
	assertOnly(t, dir, "model.pt")
}

func TestWriteWithErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteWith(path, func(f *os.File) error {
		f.WriteString("half")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want boom", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("file is %q after a failed write, want the old content", got)
	}
	assertOnly(t, dir, "out")
}

func TestWriteMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "out")
	if err := Write(path, nil); err == nil {
		t.Fatal("want an error for a missing folder")
	}
}

// assertOnly checks that dir holds exactly the named file: no temporary
// file is left behind.
func assertOnly(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only %s", names, name)
	}
}

// TestMissingFolderNamed: writing into a folder that is not there names the
// file and the folder, not the temporary file.
func TestMissingFolderNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nowhere", "run.json")
	err := Write(path, []byte("{}"))
	if err == nil || !strings.Contains(err.Error(), "write "+path+": folder "+filepath.Dir(path)+": no such file or directory") || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("write into a missing folder: %v", err)
	}
}
