// Package modelstest writes model files for tests in other packages: plain
// TorchScript models as users save them with PyTorch, made by
// models/testdata/plain.py with the build's python (testenv.Python).
package modelstest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Plain lists the files plain.py wrote, as absolute paths: Models by name
// (see plain.py), and a fixed input batch with the traced model's logits.
type Plain struct {
	Models     map[string]string `json:"models"`
	Input      string            `json:"input"`
	InputShape []int64           `json:"input_shape"`
	Logits     string            `json:"logits"`
}

// WritePlain runs plain.py into a fresh temporary directory. It skips the
// test where python3 is missing and fails it where plain.py fails.
func WritePlain(t *testing.T) Plain {
	t.Helper()
	python := testenv.Python()
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s to write TorchScript models: %v", python, err)
	}
	_, here, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(here), "..", "testdata", "plain.py")
	dir := t.TempDir()
	cmd := exec.Command(python, script, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plain.py (needs %s with torch: make deps): %v\n%s", python, err, stderr.Bytes())
	}
	var p Plain
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("plain.py printed bad JSON: %v", err)
	}
	for name, file := range p.Models {
		p.Models[name] = filepath.Join(dir, file)
	}
	p.Input, p.Logits = filepath.Join(dir, p.Input), filepath.Join(dir, p.Logits)
	return p
}

// Parameters are m's parameters, flattened one after another, for tests
// that compare trained weights.
func Parameters(t *testing.T, m *torchbind.Module) []float32 {
	t.Helper()
	ps, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer torchbind.CloseAll(ps)
	var all []float32
	for _, p := range ps {
		v, err := p.T.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, v...)
	}
	return all
}
