package train

import (
	"math"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TestMeterSumsExactly: the device meter's average is the float64 sum of
// value*count over float32 values, as a host sum computes it.
func TestMeterSumsExactly(t *testing.T) {
	s := torchbind.NewScope()
	defer s.Close()
	var m meter
	vals := []float32{2.3025851, 0.1, 1e-7, 7}
	counts := []int{256, 128, 3, 512}
	var sum, n float64
	for i, v := range vals {
		m.add(s, s.FromFloat32([]float32{v}, "cpu"), float64(counts[i]), counts[i])
		sum += float64(v) * float64(counts[i])
		n += float64(counts[i])
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := m.avg(), sum/n; got != want {
		t.Errorf("avg %v, want %v", got, want)
	}
	if got := (&meter{}).avg(); got != 0 {
		t.Errorf("empty meter: %v, want 0", got)
	}
}

// TestCheckBatch: the host checks that stand in for the attack's name the
// example at fault.
func TestCheckBatch(t *testing.T) {
	batch := func(pixel float32, label int64) *data.Batch {
		return &data.Batch{Shape: data.Shape{C: 1, H: 1, W: 2}, Images: []float32{0, 1, 0.5, pixel},
			Labels: []int64{0, label}, Indices: []int{40, 41}}
	}
	if err := checkBatch(batch(1, 9), 10); err != nil {
		t.Fatalf("valid batch refused: %v", err)
	}
	for _, c := range []struct {
		b    *data.Batch
		want string
	}{
		{batch(1.5, 0), "example 41: pixel value 1.5 outside [0, 1]"},
		{batch(float32(-0.0001), 0), "example 41: pixel value -0.0001 outside"},
		{batch(float32(math.NaN()), 0), "example 41: pixel value NaN"},
		{batch(0, 10), "example 41: label 10 outside the model's 10 classes"},
		{batch(0, -1), "example 41: label -1 outside"},
	} {
		if err := checkBatch(c.b, 10); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
}
