package models

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TestLoadRefusesAFIFO: a FIFO given as the model is refused at once
// instead of blocking in open() until a writer comes.
func TestLoadRefusesAFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.pt")
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(path, Options{Dir: templates})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
			t.Errorf("FIFO as the model: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a FIFO blocked")
	}
}

// TestLoadRefusesBrokenWeights: a checkpoint or TorchScript file with a NaN
// weight or a negative BatchNorm running variance is refused at load, with
// the tensor named, whichever path would then sample it.
func TestLoadRefusesBrokenWeights(t *testing.T) {
	for _, c := range []struct {
		name   string
		tensor string // a suffix of the tensor's name
		scale  float64
		want   string
	}{
		{"NaN weight", "conv1.weight", math.NaN(), "conv1.weight holds NaN or infinite values"},
		{"infinite weight", "conv1.weight", math.Inf(1), "holds NaN or infinite values"},
		{"negative variance", "bn1.running_var", -1, "bn1.running_var holds a negative variance"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New("cifar_resnet20", 1, Options{Dir: templates})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			sd, err := m.stateDict()
			if err != nil {
				t.Fatal(err)
			}
			defer torchbind.CloseAll(sd)
			found := false
			for _, nt := range sd {
				if strings.HasSuffix(nt.Name, c.tensor) && !found {
					found = true
					if err := nt.T.MulInPlace(c.scale); err != nil {
						t.Fatal(err)
					}
				}
			}
			if !found {
				t.Fatalf("no tensor named *%s", c.tensor)
			}
			dir := t.TempDir()
			ckpt, script := filepath.Join(dir, "checkpoint.pth.tar"), filepath.Join(dir, "model.pt")
			if err := SaveCheckpoint(ckpt, m, 1, nil); err != nil {
				t.Fatal(err)
			}
			if err := m.Save(script); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{ckpt, script} {
				if got, err := Load(path, Options{Dir: templates}); err == nil || !strings.Contains(err.Error(), c.want) {
					if got != nil {
						got.Close()
					}
					t.Errorf("%s: %v, want a refusal saying %q", filepath.Base(path), err, c.want)
				}
			}
		})
	}
}

// TestLoadRefusesBadMetadata: metadata (extra/smoothadv.json) that cannot
// describe the model is refused at load, not copied into run records.
func TestLoadRefusesBadMetadata(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*Meta)
		want   string
	}{
		{"input layer", func(m *Meta) { m.Normalization = "bogus" }, `unknown normalization "bogus"`},
		{"format", func(m *Meta) { m.Format = 99 }, "format 99, want 1"},
		{"arch", func(m *Meta) { m.Arch = "cifar_resnet110" }, "arch cifar_resnet110 takes [3 32 32] inputs into 10 classes, but the metadata says [1 28 28] into 10"},
		{"statistics", func(m *Meta) { m.Means = nil }, "0 means and 1 sds for 1 channels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New("fashion_cnn", 1, Options{Dir: templates})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			c.change(&m.Meta)
			path := filepath.Join(t.TempDir(), "model.pt")
			if err := m.Save(path); err != nil {
				t.Fatal(err)
			}
			if got, err := Load(path, Options{Dir: templates}); err == nil || !strings.Contains(err.Error(), c.want) {
				if got != nil {
					got.Close()
				}
				t.Errorf("%v, want a refusal saying %q", err, c.want)
			}
		})
	}
}

// TestFitRefusesLogitsThatAreNoScores: a plain model whose output is bool,
// float16 or complex is refused at load, naming what it returns, instead of
// failing mid-run or being reported as "shaped []".
func TestFitRefusesLogitsThatAreNoScores(t *testing.T) {
	dir := t.TempDir()
	script := `import sys, torch, torch.nn as nn
class Bool(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] > 0.5
class Half(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10].half()
class Complex(nn.Module):
    def forward(self, x):
        return torch.complex(x.flatten(1)[:, :10], x.flatten(1)[:, :10])
for name, m in [("bool", Bool()), ("half", Half()), ("complex", Complex())]:
    torch.jit.script(m).save(sys.argv[1] + "/" + name + ".pt")
`
	py := filepath.Join(dir, "make.py")
	if err := os.WriteFile(py, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testenv.Python(), py, dir).CombinedOutput(); err != nil {
		t.Fatalf("making the models: %v\n%s", err, out)
	}
	fit := &Fit{Dataset: "fashion-mnist", Input: []int64{1, 28, 28}, NumClasses: 10}
	for name, want := range map[string]string{"bool": "returns bool logits, want float32", "half": "want float32", "complex": "want float32"} {
		m, err := Load(filepath.Join(dir, name+".pt"), Options{Dir: templates, Fit: fit})
		if err == nil || !strings.Contains(err.Error(), want) {
			if m != nil {
				m.Close()
			}
			t.Errorf("%s logits: %v, want a refusal saying %q", name, err, want)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
