package data

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

// python is Debian's interpreter, which has numpy, torch, torchvision and PIL.
var python = testenv.Python()

// fixture runs testdata/fixtures.py to write the files of kind under dir and decodes, into v, the
// JSON it prints: what Python reads back from those files.
func fixture(t *testing.T, kind, dir string, v any) {
	t.Helper()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s to make fixtures: %v", python, err)
	}
	out, err := exec.Command(python, "testdata/fixtures.py", kind, dir).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("fixtures.py %s: %v\n%s", kind, err, ee.Stderr)
		}
		t.Fatalf("fixtures.py %s: %v", kind, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("fixtures.py %s printed bad JSON: %v", kind, err)
	}
}

// expectedSet is a split as Python reads it: uint8 CHW pixels, one image after another, and labels.
type expectedSet struct {
	Pixels []int `json:"pixels"`
	Labels []int `json:"labels"`
}

// checkPlain reads every example of ds and compares it with want exactly: ToTensor's v/255 in
// float32.
func checkPlain(t *testing.T, ds Dataset, want expectedSet) {
	t.Helper()
	if ds.Len() != len(want.Labels) {
		t.Fatalf("Len() = %d, Python reads %d examples", ds.Len(), len(want.Labels))
	}
	n := ds.Shape().Size()
	dst := make([]float32, n)
	for i, wantLabel := range want.Labels {
		label, err := ds.Read(i, nil, dst)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if label != wantLabel {
			t.Errorf("example %d: label %d, Python reads %d", i, label, wantLabel)
		}
		for j, v := range want.Pixels[i*n : (i+1)*n] {
			if dst[j] != float32(v)/255 {
				t.Fatalf("example %d value %d: %v, want %d/255", i, j, dst[j], v)
			}
		}
	}
}
