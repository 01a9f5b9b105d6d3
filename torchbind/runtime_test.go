package torchbind

import (
	"runtime"
	"sync"
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
	g, err := x.gotorchAlias()
	if err != nil {
		t.Fatal(err)
	}
	back, err := fromGotorch(g.Detach())
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

// TestThreadCountOnEveryOSThread: after SetNumThreads, every OS thread runs
// libtorch with that count, also threads that ran parallel ops before it
// (libtorch alone leaves those at their old count, and Go runs a goroutine's
// calls on whichever thread is free: the count, and the order of float
// sums, would follow the scheduler). 16 goroutines, each on an OS thread
// of its own while it runs, then back in Go's pool.
func TestThreadCountOnEveryOSThread(t *testing.T) {
	was := NumThreads()
	defer SetNumThreads(was)
	counts := func() map[int]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		seen := map[int]int{}
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				s := NewScope()
				defer s.Close()
				if _, err := s.Sum(s.Zeros(Float32, "cpu", 1000, 1000)).Item(); err != nil {
					t.Error(err)
				}
				mu.Lock()
				seen[NumThreads()]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		return seen
	}
	for _, n := range []int{2, 1, 2} {
		if err := SetNumThreads(n); err != nil {
			t.Fatal(err)
		}
		if got := counts(); len(got) != 1 || got[n] != 16 {
			t.Errorf("after SetNumThreads(%d) the OS threads run with %v threads (count: goroutines)", n, got)
		}
	}
}
