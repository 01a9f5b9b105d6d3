package experiment

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// orderedWorker is a fakeWorker that records the order of its stages.
type orderedWorker struct {
	fakeWorker
	rank   int // of 2
	events []string
}

func (w *orderedWorker) Rank() (rank, world int) { return w.rank, 2 }

func (w *orderedWorker) Train(ctx context.Context, cfg settings.Config, out io.Writer) error {
	w.events = append(w.events, fmt.Sprint("train ", cfg.NoiseSD))
	return w.fakeWorker.Train(ctx, cfg, out)
}

func (w *orderedWorker) Certify(ctx context.Context, r Run, model, path string) error {
	w.events = append(w.events, fmt.Sprint("certify ", r.Sigma()))
	return w.fakeWorker.Certify(ctx, r, model, path)
}

// TestGroupTrainsEveryRunFirst: in a data-parallel job every process trains
// every run before rank 0 certifies any (certifying between trainings would
// keep the others waiting); the other processes write nothing of the
// experiment's and certify nothing.
func TestGroupTrainsEveryRunFirst(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e, err := Parse([]byte(twoRuns), "two.yaml", ".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for rank, want := range [][]string{
		{"train 0.25", "train 0.5", "certify 0.25", "certify 0.5"},
		{"train 0.25", "train 0.5"},
	} {
		out := t.TempDir()
		w := &orderedWorker{rank: rank}
		if err := e.Run(context.Background(), Options{Out: out, Worker: w}); err != nil {
			t.Fatalf("rank %d: %v", rank, err)
		}
		if !slices.Equal(w.events, want) {
			t.Errorf("rank %d did %v, want %v", rank, w.events, want)
		}
		_, err := os.Stat(filepath.Join(out, "two", ExperimentFile))
		if wrote := err == nil; wrote != (rank == 0) {
			t.Errorf("rank %d wrote %s: %t", rank, ExperimentFile, wrote)
		}
	}
}
