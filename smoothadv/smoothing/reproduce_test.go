package smoothing

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
)

// layout is how a run is cut: none of it may change a result.
type layout struct {
	name    string
	batch   int
	workers int
	group   int
	shards  int // 0 or 1: one piece
	stopAt  int // > 0: stop after this many examples (as on SIGTERM), tear the log, resume
}

var layouts = []layout{
	{name: "workers 1", batch: 200, workers: 1},
	{name: "workers 3", batch: 200, workers: 3},
	{name: "group 1", batch: 200, workers: 2, group: 1},
	{name: "group 5", batch: 200, workers: 2, group: 5},
	{name: "batch 77", batch: 77, workers: 2},
	{name: "batch 1000", batch: 1000, workers: 2},
	{name: "3 shards", batch: 200, workers: 2, shards: 3},
	{name: "stopped after 3, resumed", batch: 200, workers: 2, group: 2, stopAt: 3},
	{name: "stopped after 8, resumed", batch: 130, workers: 1, group: 2, stopAt: 8},
}

// reproIndices are the examples of the reproducibility tests: a --skip
// selection, so that dataset indices and positions differ.
var reproIndices = func() []int {
	idx, err := certify.Selection{DatasetLen: 10000, Skip: 211, Max: 211 * 12}.Indices()
	if err != nil {
		panic(err)
	}
	return idx
}()

// stopAfter cancels its run once n examples are finished, as a signal
// would between two groups.
type stopAfter struct {
	n      int
	cancel context.CancelFunc
}

func (s stopAfter) Start(int, int) {}
func (s stopAfter) Finish()        {}
func (s stopAfter) Update(done int) {
	if done >= s.n {
		s.cancel()
	}
}

// runCut runs one certify or predict job cut as l says and returns its log
// lines (all shards joined in index order) without the time column.
func runCut(t *testing.T, l layout, seed uint64, sigma float64,
	do func(ctx context.Context, j Job) error) []string {
	t.Helper()
	dir := t.TempDir()
	shards := max(l.shards, 1)
	var lines []string
	for sh := range shards {
		var indices []int
		for k := sh; k < len(reproIndices); k += shards {
			indices = append(indices, reproIndices[k])
		}
		out := filepath.Join(dir, fmt.Sprintf("log%d", sh))
		job, done := fashionJob(t, out, indices)
		job.Sampler.Batch, job.Sampler.Workers, job.Sampler.Seed, job.Sampler.Sigma = l.batch, l.workers, seed, sigma
		job.Group = l.group
		if l.stopAt > 0 {
			ctx, cancel := context.WithCancel(context.Background())
			job.Progress = stopAfter{n: l.stopAt, cancel: cancel}
			if err := do(ctx, job); err == nil || !strings.Contains(err.Error(), "canceled") {
				t.Fatalf("%s: stopped run returned %v, want cancellation", l.name, err)
			}
			// A kill in the middle of the next write.
			f, err := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(strconv.Itoa(indices[l.stopAt]) + "\t3\t"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			// An adaptive run had written the next example's samples
			// line, which resuming must drop (its count here is wrong).
			if _, err := os.Stat(certify.SamplesPath(out)); err == nil {
				done, err := certify.ReadDone[certify.CertifyRecord](out)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(certify.SamplesPath(out), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fmt.Fprintf(f, "%d\t7\n", done.Remaining(indices)[0]); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			job.Progress, job.Resume = nil, true
		}
		if err := do(context.Background(), job); err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		done()
		// An adaptive run's samples, by index, join its lines.
		samples, err := certify.ReadSamples(out)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, line := range readLines(t, out)[1:] {
			line = line[:strings.LastIndex(line, "\t")]
			if samples != nil {
				line += fmt.Sprintf("\tsamples %d", samples[fieldInt(line)])
			}
			lines = append(lines, line)
		}
	}
	slices.SortStableFunc(lines, func(a, b string) int { return fieldInt(a) - fieldInt(b) })
	return lines
}

func fieldInt(line string) int {
	n, _ := strconv.Atoi(line[:strings.Index(line, "\t")])
	return n
}

// checkLayouts compares every layout's lines with the one-piece run's. With
// sensitive it also checks that the test can fail at all: another seed
// changes some line. (PREDICT's lines rarely change with the seed;
// TestStreamsIgnoreBatching checks its counts.)
func checkLayouts(t *testing.T, sigma float64, sensitive bool, do func(ctx context.Context, j Job) error) {
	whole := runCut(t, layout{name: "one piece", batch: 200, workers: 2}, 5, sigma, do)
	if len(whole) != len(reproIndices) {
		t.Fatalf("one piece: %d lines, want %d", len(whole), len(reproIndices))
	}
	t.Logf("one piece:\n%s", strings.Join(whole, "\n"))
	if sensitive {
		other := runCut(t, layout{name: "seed 6", batch: 200, workers: 2}, 6, sigma, do)
		if slices.Equal(other, whole) {
			t.Fatal("seed 6 gives the same lines as seed 5: the test cannot see the noise")
		}
	}
	for _, l := range layouts {
		got := runCut(t, l, 5, sigma, do)
		same := 0
		for i := range min(len(got), len(whole)) {
			if got[i] == whole[i] {
				same++
			}
		}
		t.Logf("%s: %d of %d lines identical", l.name, same, len(whole))
		if same != len(whole) || len(got) != len(whole) {
			t.Errorf("%s: %d of %d lines identical (%d lines):\n%s", l.name, same, len(whole), len(got), strings.Join(got, "\n"))
		}
	}
}

// TestCertifyIdenticalHoweverCut: one piece, shards, workers, group, batch
// and a stop + resume give the same lines, but for the time column.
func TestCertifyIdenticalHoweverCut(t *testing.T) {
	p := certify.CertifyParams{N0: 50, N: 250, Alpha: 0.01, Sigma: 1}
	checkLayouts(t, p.Sigma, true, func(ctx context.Context, j Job) error { return Certify(ctx, j, p) })
}

// TestAdaptiveCertifyIdenticalHoweverCut: the same for adaptive CERTIFY,
// with either radius rule, samples files included: each example's looks
// draw the same stretches of its estimation stream however the run is cut.
func TestAdaptiveCertifyIdenticalHoweverCut(t *testing.T) {
	for _, rule := range []certify.RadiusRule{certify.RadiusPA, certify.RadiusPB} {
		t.Run(string(rule), func(t *testing.T) {
			// Looks at 100, 200 and 400 samples.
			p := certify.CertifyParams{N0: 50, N: 400, Alpha: 0.01, Sigma: 1, Radius: rule, TargetRadius: certify.Targets{1.5}}
			checkLayouts(t, p.Sigma, true, func(ctx context.Context, j Job) error { return Certify(ctx, j, p) })
		})
	}
}

// TestPredictIdenticalHoweverCut is the same for PREDICT.
func TestPredictIdenticalHoweverCut(t *testing.T) {
	p := certify.PredictParams{N: 60, Alpha: 0.05}
	checkLayouts(t, 0.3, false, func(ctx context.Context, j Job) error {
		return Predict(ctx, j, p, BasePredictions(j.Sampler.Model, "cpu", j.Sampler.Shape))
	})
}

// TestStreamsIgnoreBatching compares the raw counts of every stage's
// streams across batch sizes, worker counts and groupings, and checks that
// the seed and the stage change them.
func TestStreamsIgnoreBatching(t *testing.T) {
	job, done := fashionJob(t, "", nil)
	defer done()
	s := job.Sampler
	s.Sigma = 0.5
	images := map[certify.Input][]float32{}
	for _, i := range []int{3, 40, 41, 977} {
		img := make([]float32, 784)
		if _, err := job.Dataset.Read(i, nil, img); err != nil {
			t.Fatal(err)
		}
		images[certify.Input(i)] = img
	}
	s.Image = func(x certify.Input) ([]float32, error) { return images[x], nil }
	xs := []certify.Input{3, 40, 41, 977}
	nums := []int{37, 250, 100, 301}
	ctx := context.Background()
	counts := func(stage certify.Stage, xs []certify.Input, nums []int) [][]int64 {
		t.Helper()
		c, err := s.SampleCountsMany(ctx, xs, stage, nums)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, stage := range []certify.Stage{certify.StageSelection, certify.StageEstimation, certify.StagePrediction, certify.StageAttack} {
		s.Batch, s.Workers, s.Seed = 200, 2, 9
		want := fmt.Sprint(counts(stage, xs, nums))
		for _, b := range []struct{ batch, workers int }{{1, 1}, {33, 1}, {99, 3}, {1000, 2}} {
			s.Batch, s.Workers = b.batch, b.workers
			if got := fmt.Sprint(counts(stage, xs, nums)); got != want {
				t.Errorf("%v, batch %d, %d workers: counts %s, want %s", stage, b.batch, b.workers, got, want)
			}
		}
		// One input at a time, in reverse order.
		var alone [][]int64
		for i := len(xs) - 1; i >= 0; i-- {
			alone = append([][]int64{counts(stage, xs[i:i+1], nums[i:i+1])[0]}, alone...)
		}
		if got := fmt.Sprint(alone); got != want {
			t.Errorf("%v, one input at a time: counts %s, want %s", stage, got, want)
		}
		s.Seed = 10
		if got := fmt.Sprint(counts(stage, xs, nums)); got == want {
			t.Errorf("%v: seeds 9 and 10 give the same counts %s", stage, got)
		}
		t.Logf("%v: %s", stage, want)
	}
	s.Seed = 9
	if fmt.Sprint(counts(certify.StageSelection, xs, nums)) == fmt.Sprint(counts(certify.StageEstimation, xs, nums)) {
		t.Error("selection and estimation streams give the same counts")
	}
}

// TestRangesContinueStreams: samples [from, from+num) of a stream are the
// continuation of its first from samples, whatever the batching, so adaptive
// CERTIFY's looks count exactly the first n samples of each estimation
// stream.
func TestRangesContinueStreams(t *testing.T) {
	job, done := fashionJob(t, "", nil)
	defer done()
	s := job.Sampler
	s.Sigma, s.Seed = 0.5, 9
	images := map[certify.Input][]float32{}
	xs := []certify.Input{3, 40, 977}
	for _, x := range xs {
		img := make([]float32, 784)
		if _, err := job.Dataset.Read(int(x), nil, img); err != nil {
			t.Fatal(err)
		}
		images[x] = img
	}
	s.Image = func(x certify.Input) ([]float32, error) { return images[x], nil }
	ctx := context.Background()
	s.Batch, s.Workers = 200, 2
	whole, err := s.SampleCountsMany(ctx, xs, certify.StageEstimation, []int{437, 437, 437})
	if err != nil {
		t.Fatal(err)
	}
	// 437 = 37 + 150 + 250: pieces that start and end inside noise chunks.
	for _, b := range []struct{ batch, workers int }{{200, 2}, {33, 3}, {1000, 1}} {
		s.Batch, s.Workers = b.batch, b.workers
		sum := make([][]int64, len(xs))
		for i := range sum {
			sum[i] = make([]int64, s.NumClasses)
		}
		for _, r := range [][2]int{{0, 37}, {37, 150}, {187, 250}} {
			c, err := s.SampleCountsRange(ctx, xs, certify.StageEstimation, r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			for i := range c {
				for k, n := range c[i] {
					sum[i][k] += n
				}
			}
		}
		if fmt.Sprint(sum) != fmt.Sprint(whole) {
			t.Errorf("batch %d, %d workers: ranges add up to %v, the first 437 samples count %v", b.batch, b.workers, sum, whole)
		}
	}
	t.Logf("first 437 estimation samples: %v", whole)
	if _, err := s.SampleCountsRange(ctx, xs, certify.StageEstimation, -1, 10); err == nil {
		t.Error("samples from -1: want an error")
	}
}
