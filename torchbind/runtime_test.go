package torchbind

import (
	"testing"
)

func TestThreadsAndDevices(t *testing.T) {
	before := NumThreads()
	defer SetNumThreads(before)
	if err := SetNumThreads(2); err != nil || NumThreads() != 2 {
		t.Errorf("SetNumThreads(2): %v, now %d threads", err, NumThreads())
	}
	if err := SetNumThreads(0); err == nil {
		t.Error("SetNumThreads(0) gave no error")
	}
	n, err := CUDADeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	if (n > 0) != CUDAAvailable() {
		t.Errorf("%d CUDA devices, but CUDAAvailable() = %v", n, CUDAAvailable())
	}
	if Version() == "" {
		t.Error("no libtorch version")
	}
}

func TestIsTraining(t *testing.T) {
	m := loadModel(t, "fashion_cnn")
	for _, on := range []bool{true, false} {
		if err := m.Train(on); err != nil {
			t.Fatal(err)
		}
		if got, err := m.IsTraining(); err != nil || got != on {
			t.Errorf("after Train(%v): IsTraining = %v, %v", on, got, err)
		}
	}
}

// TestGotorchInterop hands a tensor to gotorch and back: both handles share
// storage, so gotorch's result equals ours.
func TestGotorchInterop(t *testing.T) {
	s := NewScope()
	defer s.Close()
	x := s.FromFloat32([]float32{1, -2, 3}, "cpu", 3)
	g, err := x.Gotorch()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromGotorch(g.Detach())
	if err != nil {
		t.Fatal(err)
	}
	s.Own(back)
	got, err := back.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != -2 || got[2] != 3 {
		t.Errorf("round trip through gotorch gave %v", got)
	}
	if err := x.MulInPlace(2); err != nil {
		t.Fatal(err)
	}
	if v, _ := back.Float32s(); v[2] != 6 {
		t.Errorf("gotorch's tensor does not share storage: %v", v)
	}
}
