package samepath

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSame(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "model.pt")
	other := filepath.Join(dir, "other.pt")
	link := filepath.Join(dir, "link.pt")
	for _, p := range []string{file, other} {
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{file, file, true},
		{file, "model.pt", true},
		{"./sub/../model.pt", file, true},
		{link, file, true},
		{file, other, false},
		{"missing", filepath.Join(dir, "missing"), true},
		{"missing", "./x/../missing", true},
		{"missing", "missing2", false},
		{"missing", file, false},
	} {
		if got := Same(tt.a, tt.b); got != tt.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
