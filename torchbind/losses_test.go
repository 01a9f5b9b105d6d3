package torchbind

import (
	"math"
	"slices"
	"testing"
)

// TestLossOps checks the operations of the training methods on values
// with known answers: erfinv against scipy.special.erfinv, xlogy's 0 log 0,
// a comparison that is false for NaN, top-k and boolean row selection.
func TestLossOps(t *testing.T) {
	s := NewScope()
	defer s.Close()
	x := s.FromFloat32([]float32{0.5, -0.9, 0, 0.999}, "cpu", 4)
	// scipy.special.erfinv([0.5, -0.9, 0, 0.999])
	wantErfinv := []float64{0.4769362762044699, -1.1630871536766743, 0, 2.326753765513525}
	gotErfinv, err := s.Erfinv(x).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range wantErfinv {
		if math.Abs(float64(gotErfinv[i])-w) > 1e-5*max(1, math.Abs(w)) {
			t.Errorf("erfinv %d: %v, want %v", i, gotErfinv[i], w)
		}
	}

	a := s.FromFloat32([]float32{0, 0.5, 2}, "cpu", 3)
	b := s.FromFloat32([]float32{0, 0.25, 3}, "cpu", 3)
	gotXLogY, err := s.XLogY(a, b).Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []float64{0, 0.5 * math.Log(0.25), 2 * math.Log(3)} {
		if math.Abs(float64(gotXLogY[i])-w) > 1e-6 {
			t.Errorf("xlogy %d: %v, want %v", i, gotXLogY[i], w)
		}
	}

	r := s.FromFloat32([]float32{1, float32(math.NaN()), float32(math.Inf(-1)), 3, -2}, "cpu", 5)
	le := s.ToFloat32(s.LeScalar(s.Abs(r), 2))
	gotLe, err := le.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{1, 0, 0, 0, 1}; !slices.Equal(gotLe, want) {
		t.Errorf("|r| <= 2: %v, want %v", gotLe, want)
	}

	m := s.FromFloat32([]float32{0.1, 0.7, 0.2, 0.5, 0.3, 0.2}, "cpu", 2, 3)
	vals, idx := s.TopK(m, 2, 1)
	gotVals, err := vals.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	gotIdx, err := idx.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0.7, 0.2, 0.5, 0.3}; !slices.Equal(gotVals, want) {
		t.Errorf("top-2 values %v, want %v", gotVals, want)
	}
	if want := []int64{1, 2, 0, 1}; !slices.Equal(gotIdx, want) {
		t.Errorf("top-2 indices %v, want %v", gotIdx, want)
	}

	mask := s.Eq(s.Narrow(idx, 1, 0, 1), s.FromInt64([]int64{1, 1}, "cpu", 2, 1))
	rows := s.MaskRows(m, s.Reshape(mask, -1))
	gotRows, err := rows.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0.1, 0.7, 0.2}; !slices.Equal(gotRows, want) || !slices.Equal(rows.Shape(), []int64{1, 3}) {
		t.Errorf("masked rows %v %v, want %v [1 3]", gotRows, rows.Shape(), want)
	}
	none := s.MaskRows(m, s.LeScalar(s.FromFloat32([]float32{1, 1}, "cpu", 2), 0))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(none.Shape(), []int64{0, 3}) {
		t.Errorf("no row selected: shape %v, want [0 3]", none.Shape())
	}
	s.MaskRows(m, s.FromFloat32([]float32{1, 0}, "cpu", 2))
	if s.Err() == nil {
		t.Error("a float mask: no error")
	}
}
