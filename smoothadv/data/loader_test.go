package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// indexDataset fills example i with the value i, plus a draw from rng in its first value when it
// augments, so a batch shows which examples and which random draws made it.
type indexDataset struct {
	n       int
	augment bool
	failAt  int // Read fails for this index; -1 for never
}

func (d *indexDataset) Len() int        { return d.n }
func (d *indexDataset) Shape() Shape    { return Shape{1, 2, 3} }
func (d *indexDataset) NumClasses() int { return 10 }

func (d *indexDataset) Read(i int, rng *rand.Rand, dst []float32) (int, error) {
	if err := checkRead(d, i, dst); err != nil {
		return 0, err
	}
	if i == d.failAt {
		return 0, errors.New("bad example")
	}
	for j := range dst {
		dst[j] = float32(i)
	}
	if d.augment {
		dst[0] += rng.Float32()
	}
	return i % 10, nil
}

// drain passes every batch of e to fn, then closes e.
func drain(tb testing.TB, e *Epoch, fn func(*Batch)) {
	tb.Helper()
	defer e.Close()
	for {
		b, err := e.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		fn(b)
	}
}

// epochOf reads a whole epoch and returns copies of its batches.
func epochOf(t *testing.T, l *Loader, epoch int) []Batch {
	t.Helper()
	var out []Batch
	drain(t, l.Epoch(context.Background(), epoch), func(b *Batch) {
		out = append(out, Batch{b.Shape, slices.Clone(b.Images), slices.Clone(b.Labels), slices.Clone(b.Indices)})
	})
	if len(out) != l.Len() {
		t.Fatalf("%d batches, Len() says %d", len(out), l.Len())
	}
	return out
}

func newLoader(t *testing.T, ds Dataset, opt Options) *Loader {
	t.Helper()
	l, err := NewLoader(ds, opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLoaderVisitsEveryExampleOnce(t *testing.T) {
	ds := &indexDataset{n: 103, failAt: -1}
	for _, dropLast := range []bool{false, true} {
		l := newLoader(t, ds, Options{BatchSize: 10, Shuffle: true, Seed: 3, DropLast: dropLast, Workers: 3})
		var orders [][]int
		for epoch := range 2 {
			var order []int
			for k, b := range epochOf(t, l, epoch) {
				wantLen := 10
				if k == 10 {
					wantLen = 3
				}
				if b.Len() != wantLen || len(b.Images) != wantLen*6 || len(b.Indices) != wantLen {
					t.Fatalf("batch %d holds %d labels, %d values, %d indices; want %d examples", k, b.Len(), len(b.Images), len(b.Indices), wantLen)
				}
				for j, i := range b.Indices {
					if b.Labels[j] != int64(i%10) || b.Images[6*j+5] != float32(i) {
						t.Fatalf("batch %d slot %d: index %d with label %d and value %v", k, j, i, b.Labels[j], b.Images[6*j+5])
					}
				}
				order = append(order, b.Indices...)
			}
			want := 103
			if dropLast {
				want = 100
			}
			if len(order) != want {
				t.Fatalf("drop last %v: %d examples in an epoch, want %d", dropLast, len(order), want)
			}
			seen := map[int]bool{}
			for _, i := range order {
				if seen[i] || i < 0 || i >= 103 {
					t.Fatalf("index %d twice or out of range", i)
				}
				seen[i] = true
			}
			orders = append(orders, order)
		}
		if slices.Equal(orders[0], orders[1]) {
			t.Error("two epochs in the same order")
		}
	}
	l := newLoader(t, ds, Options{BatchSize: 10, Workers: 2})
	var order []int
	for _, b := range epochOf(t, l, 0) {
		order = append(order, b.Indices...)
	}
	for i, k := range order {
		if i != k {
			t.Fatalf("sequential loader gives index %d at position %d", k, i)
		}
	}
}

func TestLoaderSameBatchesForAnyWorkers(t *testing.T) {
	ds := &indexDataset{n: 250, augment: true, failAt: -1}
	want := epochOf(t, newLoader(t, ds, Options{BatchSize: 16, Shuffle: true, Seed: 11, Workers: 1, Prefetch: 1}), 4)
	for _, opt := range []Options{{Workers: 2}, {Workers: 7, Prefetch: 3}, {Workers: 4, Prefetch: 20}} {
		opt.BatchSize, opt.Shuffle, opt.Seed = 16, true, 11
		got := epochOf(t, newLoader(t, ds, opt), 4)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%d workers, prefetch %d: batches differ from one worker's", opt.Workers, opt.Prefetch)
		}
	}
	other := epochOf(t, newLoader(t, ds, Options{BatchSize: 16, Shuffle: true, Seed: 12, Workers: 2}), 4)
	if fmt.Sprint(other) == fmt.Sprint(want) {
		t.Fatal("another seed gives the same epoch")
	}
	// Without shuffling the order is fixed, but the augmentation still follows the epoch.
	e0 := epochOf(t, newLoader(t, ds, Options{BatchSize: 16, Seed: 11}), 0)
	e1 := epochOf(t, newLoader(t, ds, Options{BatchSize: 16, Seed: 11}), 1)
	if !slices.Equal(e0[0].Indices, e1[0].Indices) || slices.Equal(e0[0].Images, e1[0].Images) {
		t.Fatal("sequential epochs should share the order and differ in augmentation")
	}
}

func TestLoaderReusesBuffers(t *testing.T) {
	l := newLoader(t, &indexDataset{n: 1000, failAt: -1}, Options{BatchSize: 8, Workers: 2, Prefetch: 3})
	buffers := map[*float32]bool{}
	drain(t, l.Epoch(context.Background(), 0), func(b *Batch) { buffers[&b.Images[0]] = true })
	if len(buffers) > 4 {
		t.Fatalf("%d image buffers for 125 batches, want at most prefetch + 1 = 4", len(buffers))
	}
}

func TestLoaderReportsReadErrors(t *testing.T) {
	l := newLoader(t, &indexDataset{n: 100, failAt: 57}, Options{BatchSize: 10, Workers: 3})
	e := l.Epoch(context.Background(), 0)
	defer e.Close()
	for k := 0; ; k++ {
		_, err := e.Next()
		if err == nil {
			continue
		}
		if k != 5 || !strings.Contains(err.Error(), "example 57: bad example") {
			t.Fatalf("batch %d: %v; want the error of example 57 at batch 5", k, err)
		}
		if _, again := e.Next(); again == nil || again.Error() != err.Error() {
			t.Fatalf("after an error Next gave %v", again)
		}
		return
	}
}

// slowDataset takes a while per example, so an epoch is still running when it is cancelled.
type slowDataset struct{ indexDataset }

func (d *slowDataset) Read(i int, rng *rand.Rand, dst []float32) (int, error) {
	time.Sleep(time.Millisecond)
	return d.indexDataset.Read(i, rng, dst)
}

func TestLoaderStopsOnCancel(t *testing.T) {
	l := newLoader(t, &slowDataset{indexDataset{n: 10000, failAt: -1}}, Options{BatchSize: 10, Workers: 4})
	ctx, cancel := context.WithCancel(context.Background())
	e := l.Epoch(ctx, 0)
	if _, err := e.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	start := time.Now()
	for {
		if _, err := e.Next(); err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("after cancel: %v", err)
			}
			break
		}
	}
	e.Close()
	e.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("stopping took %v", d)
	}
	if _, err := e.Next(); err == nil {
		t.Fatal("Next after Close gave a batch")
	}

	// Close alone, mid-epoch, also stops the workers.
	e = l.Epoch(context.Background(), 1)
	e.Next()
	e.Close()
	if _, err := e.Next(); !errors.Is(err, errClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestNewLoaderChecksOptions(t *testing.T) {
	ds := &indexDataset{n: 5}
	for _, opt := range []Options{{BatchSize: 0}, {BatchSize: 2, Workers: -1}, {BatchSize: 2, Prefetch: -2}} {
		if _, err := NewLoader(ds, opt); err == nil {
			t.Errorf("%+v accepted", opt)
		}
	}
}

func BenchmarkLoaderFashionMNIST(b *testing.B) {
	ds, err := Open("fashion-mnist", "", Train)
	if err != nil {
		b.Skip(err)
	}
	l, err := NewLoader(ds, Options{BatchSize: 256, Shuffle: true, Workers: 2})
	if err != nil {
		b.Fatal(err)
	}
	images := 0
	for epoch := 0; b.Loop(); epoch++ {
		drain(b, l.Epoch(context.Background(), epoch), func(batch *Batch) { images += batch.Len() })
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}
