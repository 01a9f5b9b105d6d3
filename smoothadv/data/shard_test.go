package data

import (
	"slices"
	"testing"
)

// TestShardsSplitEveryBatch checks that the shards of every batch, put back
// together in their layout, are the whole batch, images and augmentation
// included: with chunks, run c of the whole batch is the c-th pieces of the
// shards in shard order, up to what does not divide; without, the shards
// follow one another.
func TestShardsSplitEveryBatch(t *testing.T) {
	ds := &indexDataset{n: 53, augment: true, failAt: -1}
	for _, c := range []struct{ count, chunks, batch int }{{2, 1, 12}, {3, 2, 12}, {2, 4, 16}, {3, 0, 10}, {4, 0, 8}} {
		opt := Options{BatchSize: c.batch, Shuffle: true, Seed: 9, Workers: 2}
		whole := epochOf(t, newLoader(t, ds, opt), 4)
		shards := make([][]Batch, c.count)
		for i := range shards {
			opt.Shard = Shard{Index: i, Count: c.count, Chunks: c.chunks}
			shards[i] = epochOf(t, newLoader(t, ds, opt), 4)
		}
		size := ds.Shape().Size()
		for k, w := range whole {
			var want, got []int
			if c.chunks == 0 {
				want = w.Indices
				for i := range shards {
					got = append(got, shards[i][k].Indices...)
				}
			} else {
				run := w.Len() / c.chunks
				n := run / c.count
				for ch := range c.chunks {
					want = append(want, w.Indices[ch*run:ch*run+n*c.count]...)
					for i := range shards {
						got = append(got, shards[i][k].Indices[ch*n:(ch+1)*n]...)
					}
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%+v batch %d: shards hold %v, want %v", c, k, got, want)
			}
			for i := range shards {
				b := shards[i][k]
				for j, idx := range b.Indices {
					at := slices.Index(w.Indices, idx)
					if !slices.Equal(b.Images[j*size:(j+1)*size], w.Images[at*size:(at+1)*size]) || b.Labels[j] != w.Labels[at] {
						t.Fatalf("%+v batch %d: shard %d's example %d differs from the whole batch's", c, k, i, idx)
					}
				}
			}
		}
	}
}

func TestShardRangeCoversOnce(t *testing.T) {
	for n := range 12 {
		next := 0
		for i := range 5 {
			lo, hi := Shard{Index: i, Count: 5}.Range(n)
			if lo != next || hi < lo || hi-lo > n/5+1 {
				t.Fatalf("n %d: shard %d is [%d, %d) after %d", n, i, lo, hi, next)
			}
			next = hi
		}
		if next != n {
			t.Fatalf("n %d: shards end at %d", n, next)
		}
	}
}

func TestNewLoaderChecksShard(t *testing.T) {
	ds := &indexDataset{n: 5, failAt: -1}
	for _, sh := range []Shard{{Index: 2, Count: 2}, {Index: -1, Count: 3}, {Index: 0, Count: 2, Chunks: -1}} {
		if _, err := NewLoader(ds, Options{BatchSize: 2, Shard: sh}); err == nil {
			t.Errorf("%+v accepted", sh)
		}
	}
}
