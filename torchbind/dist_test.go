package torchbind

import (
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePort is a TCP port nothing listens on just now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func needGloo(t *testing.T) {
	t.Helper()
	if !slices.Contains(DistBackends(), "gloo") {
		t.Skipf("the shim has no Gloo backend (built: %v): install libgloo-dev and rebuild (make)", DistBackends())
	}
}

// inGroup runs f as each rank of a Gloo group of world goroutines in this
// process, and fails the test on the first error.
func inGroup(t *testing.T, world int, f func(rank int, st *Store, g *ProcessGroup) error) {
	t.Helper()
	needGloo(t)
	port := freePort(t)
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := NewStore("127.0.0.1", port, r == 0, world, "test", 20*time.Second)
			if err != nil {
				errs[r] = err
				return
			}
			defer st.Close()
			g, err := NewProcessGroup(st, r, world, "gloo", 20*time.Second)
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = f(r, st, g)
		}()
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

func TestAllReduceBucketsMixedTensors(t *testing.T) {
	for _, bucket := range []int64{1 << 20, 8} { // one message per dtype; one per tensor
		got := make([][]float32, 2)
		var counts [2][]int64
		inGroup(t, 2, func(r int, _ *Store, g *ProcessGroup) error {
			s := NewScope()
			defer s.Close()
			v := float32(r + 1)
			a := s.FromFloat32([]float32{v, 2 * v, 3 * v, 4 * v, 5 * v, 6 * v}, "cpu", 2, 3)
			col := s.Narrow(a, 1, 1, 2) // a strided view: written back through it
			b := s.FromFloat32([]float32{10 * v}, "cpu", 1)
			n := s.FromInt64([]int64{int64(r) + 7}, "cpu", 1)
			if err := s.Err(); err != nil {
				return err
			}
			if err := g.AllReduce([]*Tensor{col, b, n}, false, bucket); err != nil {
				return err
			}
			if err := g.AllReduce([]*Tensor{b}, true, bucket); err != nil {
				return err
			}
			fa, err := a.Float32s()
			if err != nil {
				return err
			}
			fb, err := b.Float32s()
			if err != nil {
				return err
			}
			got[r] = append(fa, fb...)
			counts[r], err = n.Int64s()
			return err
		})
		// Ranks hold v*(1..6) and 10v for v = 1, 2: the sums over the
		// columns 1 and 2 are 3x, column 0 keeps its own; b is summed (30)
		// then averaged over the two ranks (30 again).
		for r, v := range []float32{1, 2} {
			want := []float32{v, 3 * 2, 3 * 3, 4 * v, 3 * 5, 3 * 6, 30}
			if !slices.Equal(got[r], want) {
				t.Errorf("bucket %d, rank %d: got %v, want %v", bucket, r, got[r], want)
			}
			if !slices.Equal(counts[r], []int64{15}) {
				t.Errorf("bucket %d, rank %d: int64 sum %v, want [15]", bucket, r, counts[r])
			}
		}
	}
}

func TestAllReduceRefusesToAverageIntegers(t *testing.T) {
	inGroup(t, 2, func(r int, _ *Store, g *ProcessGroup) error {
		s := NewScope()
		defer s.Close()
		n := s.FromInt64([]int64{1}, "cpu", 1)
		if err := g.AllReduce([]*Tensor{n}, true, 1<<20); err == nil || !strings.Contains(err.Error(), "cannot average") {
			t.Errorf("rank %d: averaging int64: err %v, want cannot average", r, err)
		}
		return s.Err()
	})
}

func TestBroadcastAndStore(t *testing.T) {
	got := make([][]float32, 3)
	inGroup(t, 3, func(r int, st *Store, g *ProcessGroup) error {
		s := NewScope()
		defer s.Close()
		v := float32(r)
		x := s.FromFloat32([]float32{v, v + 0.5}, "cpu", 2)
		y := s.FromFloat32([]float32{-v}, "cpu", 1)
		if err := s.Err(); err != nil {
			return err
		}
		if err := g.Broadcast([]*Tensor{x, y}, 2, 1<<20); err != nil {
			return err
		}
		fx, err := x.Float32s()
		if err != nil {
			return err
		}
		fy, err := y.Float32s()
		got[r] = append(fx, fy...)
		if err != nil {
			return err
		}
		if _, err := st.Add("arrived", 1); err != nil {
			return err
		}
		if r == 1 {
			if err := st.Set("note", []byte("from rank 1")); err != nil {
				return err
			}
		}
		if err := g.Barrier(); err != nil {
			return err
		}
		if n, err := st.Add("arrived", 0); err != nil || n != 3 {
			t.Errorf("rank %d: counter %d (%v), want 3", r, n, err)
		}
		if v, ok, err := st.Get("note"); err != nil || !ok || string(v) != "from rank 1" {
			t.Errorf("rank %d: note %q, %t, %v", r, v, ok, err)
		}
		if _, ok, err := st.Get("nothing"); err != nil || ok {
			t.Errorf("rank %d: an unset key is found (%t) or fails (%v)", r, ok, err)
		}
		return nil
	})
	for r := range got {
		if want := []float32{2, 2.5, -2}; !slices.Equal(got[r], want) {
			t.Errorf("rank %d: %v after broadcast from rank 2, want %v", r, got[r], want)
		}
	}
}

func TestPeerThatLeavesFailsTheCollective(t *testing.T) {
	var waited time.Duration
	inGroup(t, 2, func(r int, _ *Store, g *ProcessGroup) error {
		if r == 1 {
			time.Sleep(200 * time.Millisecond)
			g.Close()
			return nil
		}
		s := NewScope()
		defer s.Close()
		x := s.FromFloat32([]float32{1}, "cpu", 1)
		began := time.Now()
		err := g.AllReduce([]*Tensor{x}, false, 1<<20)
		waited = time.Since(began)
		if err == nil {
			t.Error("all-reduce with a peer that left succeeded")
		}
		return nil
	})
	if waited > 10*time.Second {
		t.Errorf("the all-reduce noticed the peer's leaving after %v, not at once", waited)
	}
}

func TestRendezvousTimesOut(t *testing.T) {
	needGloo(t)
	began := time.Now()
	st, err := NewStore("127.0.0.1", freePort(t), true, 2, "", time.Second)
	if err == nil {
		defer st.Close()
		var g *ProcessGroup
		if g, err = NewProcessGroup(st, 0, 2, "gloo", time.Second); err == nil {
			g.Close()
			t.Fatal("a group of two formed with one process")
		}
	}
	if d := time.Since(began); d > 15*time.Second {
		t.Errorf("gave up after %v, timeout 1s", d)
	}
	t.Logf("error: %v", err)
}
