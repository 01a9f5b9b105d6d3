package checkpoint

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
)

// float32Storage holds the values 0, 1, ..., n-1.
func float32Storage(n int) *storage {
	data := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(i)))
	}
	return &storage{dtype: Float32, numel: int64(n), data: data}
}

func TestMaterializeRefusesBadViews(t *testing.T) {
	for _, tc := range []struct {
		name          string
		offset        int64
		shape, stride []int64
		want          string
	}{
		{"past the end", 0, []int64{3, 2}, []int64{1, 4}, "reaches past"},
		{"offset past the end", 6, []int64{1}, []int64{1}, "reaches past"},
		{"huge expanded shape", 0, []int64{1 << 40, 1 << 40}, []int64{0, 0}, "more elements than its storage"},
		{"negative stride", 2, []int64{2}, []int64{-1}, "negative stride"},
		{"negative size", 0, []int64{-1}, []int64{1}, "negative size"},
		{"stride of the wrong rank", 0, []int64{2, 3}, []int64{1}, "differ in length"},
		{"negative offset", -1, []int64{2}, []int64{1}, "negative storage offset"},
	} {
		budget := int64(1 << 20)
		v := &view{storage: float32Storage(6), offset: tc.offset, shape: tc.shape, stride: tc.stride}
		if _, err := v.materialize(&budget); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestMaterializeCopiesStridedViewsWithinBudget(t *testing.T) {
	st := float32Storage(6)
	transposed := func() *view { return &view{storage: st, shape: []int64{3, 2}, stride: []int64{1, 3}} }
	budget := int64(23)
	if _, err := transposed().materialize(&budget); err == nil || !strings.Contains(err.Error(), "more memory") {
		t.Errorf("error %v, want the copy refused over budget", err)
	}
	budget = 24
	tt, err := transposed().materialize(&budget)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 3, 1, 4, 2, 5}; !reflect.DeepEqual(got, want) || budget != 0 {
		t.Errorf("got %v with budget %d left, want %v and 0", got, budget, want)
	}
	// A contiguous view shares the storage's bytes and costs nothing.
	row, err := (&view{storage: st, offset: 3, shape: []int64{1, 3}, stride: []int64{9, 1}}).materialize(&budget)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := row.Float32s(); !reflect.DeepEqual(got, []float32{3, 4, 5}) || &row.Data[0] != &st.data[12] {
		t.Errorf("row %v, want [3 4 5] sharing the storage", got)
	}
}

func TestAccessorsCheckDType(t *testing.T) {
	tt := &Tensor{DType: Int64, Shape: []int64{}, Data: make([]byte, 8)}
	if _, err := tt.Float32s(); err == nil || !strings.Contains(err.Error(), "tensor is int64, not float32") {
		t.Errorf("Float32s: error %v", err)
	}
	if _, err := tt.Float64s(); err == nil {
		t.Error("Float64s of an int64 tensor succeeded")
	}
	if n, err := tt.Int64s(); err != nil || len(n) != 1 || tt.NumElements() != 1 {
		t.Errorf("Int64s of a scalar: %v, %v", n, err)
	}
}
