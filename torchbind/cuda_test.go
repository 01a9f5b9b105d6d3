package torchbind

import (
	"path/filepath"
	"testing"
)

// cudaDevice skips the test cleanly where libtorch has no CUDA device.
func cudaDevice(t *testing.T) string {
	t.Helper()
	if !CUDAAvailable() {
		t.Skip("no CUDA device visible to libtorch")
	}
	return "cuda:0"
}

// TestCUDAForwardBackward runs golden parity and a training step on the GPU.
func TestCUDAForwardBackward(t *testing.T) {
	dev := cudaDevice(t)
	for _, arch := range []string{"cifar_resnet110", "resnet50"} {
		g := loadManifest(t)[arch]
		m, err := LoadModule(filepath.Join(modelsDir, arch+".pt"), dev)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		s := NewScope()
		defer s.Close()
		x := s.FromFloat32(readF32(t, g.Input), dev, g.InputShape...)
		y := m.Infer(s, x)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if d, err := y.Device(); err != nil || d != dev {
			t.Fatalf("logits on %q (%v), want %s", d, err, dev)
		}
		got, err := y.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(got, readF32(t, g.Logits))
		t.Logf("%s on %s: max |go - pytorch(cpu)| = %.3g", arch, dev, d)
		// cuDNN picks other algorithms (and TF32) than the CPU: allow more.
		if d > 5e-3 {
			t.Errorf("%s: max abs diff %.3g", arch, d)
		}

		if err := m.Train(true); err != nil {
			t.Fatal(err)
		}
		labels := make([]int64, g.InputShape[0])
		loss := s.CrossEntropy(m.Forward(s, x), s.FromInt64(labels, dev, int64(len(labels))), ReduceMean)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		ps, err := m.Parameters()
		if err != nil {
			t.Fatal(err)
		}
		grad := s.GradOf(ps[0].T)
		CloseAll(ps)
		if grad == nil || s.Err() != nil {
			t.Fatalf("no gradient on %s: %v", dev, s.Err())
		}
		gen, err := NewGenerator(dev, 3)
		if err != nil {
			t.Fatal(err)
		}
		noise := s.RandnLike(x, 0.5, gen)
		gen.Close()
		if d, _ := noise.Device(); d != dev {
			t.Errorf("noise drawn on %q, want %s", d, dev)
		}
	}
}
