package torchbind

import (
	"slices"
	"testing"
)

// TestToFloat64 converts float32 values exactly, and leaves float64 alone.
func TestToFloat64(t *testing.T) {
	s := NewScope()
	defer s.Close()
	in := []float32{0.1, -3.5e-8, 16777217, 1e30}
	d := s.ToFloat64(s.FromFloat32(in, "cpu", 4))
	twice := s.ToFloat64(d)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Tensor{d, twice} {
		if _, dt, _ := x.Info(); dt != Float64 {
			t.Fatalf("dtype %v, want float64", dt)
		}
		for i, v := range in {
			got, err := s.Narrow(x, 0, int64(i), 1).Item()
			if err != nil || got != float64(v) {
				t.Errorf("element %d: %v (%v), want %v", i, got, err, float64(v))
			}
		}
	}
}

// TestCUDAUploadIsExact uploads a batch through pinned memory with a
// non-blocking copy, overwrites the host data at once, and reads back the
// values it had: the copy owns its data before the call returns.
func TestCUDAUploadIsExact(t *testing.T) {
	dev := cudaDevice(t)
	s := NewScope()
	defer s.Close()
	xs := make([]float32, 256*3*32*32)
	for i := range xs {
		xs[i] = float32(i%251) / 251
	}
	want := slices.Clone(xs)
	ys := []int64{3, 1, 4, 1, 5}
	x := s.FromFloat32(xs, dev, 256, 3, 32, 32)
	y := s.FromInt64(ys, dev, 5)
	clear(xs)
	ys[0] = 9
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if d, _ := x.Device(); d != dev {
		t.Fatalf("uploaded to %s, want %s", d, dev)
	}
	got, err := x.Float32s()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("images came back changed (%v)", err)
	}
	if got, err := y.Int64s(); err != nil || !slices.Equal(got, []int64{3, 1, 4, 1, 5}) {
		t.Fatalf("labels came back as %v (%v)", got, err)
	}
}
