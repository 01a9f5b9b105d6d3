package smoothing

import (
	"context"
	"slices"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/torchbind"
)

// fashionSampler samples the exported Fashion-MNIST CNN at sigma 0.25 on the
// first test images, with the model copy UseOptimized picks for infer.
func fashionSampler(t *testing.T, infer torchbind.InferOptions) (*Sampler, []certify.Input) {
	t.Helper()
	ds, err := data.Open("fashion-mnist", "", data.Test)
	if err != nil {
		t.Skipf("Fashion-MNIST: %v", err)
	}
	m, err := torchbind.LoadModule(testenv.Model("fashion_cnn"), "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	const n = 20
	images := make([][]float32, n)
	xs := make([]certify.Input, n)
	for i := range images {
		images[i] = make([]float32, 28*28)
		if _, err := ds.Read(i, nil, images[i]); err != nil {
			t.Fatal(err)
		}
		xs[i] = certify.Input(i)
	}
	s := &Sampler{Model: m, Name: "fashion_cnn", Device: "cpu", Sigma: 0.25, Batch: 500, NumClasses: 10,
		Shape: []int64{1, 28, 28}, Seed: 7, Workers: 2, Infer: infer,
		Image: func(x certify.Input) ([]float32, error) { return images[x], nil }}
	if err := s.UseOptimized(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, xs
}

// noisyArgmax returns the class the sampler's model gives each of the
// first num noisy copies of every x, in precision p.
func noisyArgmax(t *testing.T, s *Sampler, xs []certify.Input, num int, p torchbind.Precision) []int64 {
	t.Helper()
	images, err := s.upload(xs)
	if err != nil {
		t.Fatal(err)
	}
	defer images.Close()
	sc := torchbind.NewScope()
	defer sc.Close()
	pieces := make([]piece, len(xs))
	copies := make([]torchbind.Copies, len(xs))
	for i := range xs {
		pieces[i] = piece{idx: i, take: int64(num)}
		copies[i] = torchbind.Copies{Image: int64(i), Count: int64(num)}
	}
	noisy := sc.NoisyCopies(images, copies, s.segments(xs, certify.StageEstimation, pieces), noiseChunk, s.Sigma)
	classes := sc.Argmax(s.Model.(inferrer).InferWith(sc, noisy, torchbind.InferOptions{Precision: p}), 1)
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out, err := classes.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBF16AgreesWithFP32 measures, on real Fashion-MNIST test images under
// the sampler's own noise, how often the bf16 base classifier picks the
// float32 one's class (README: 98.6% of 2000 noisy copies; the others are
// near ties), and checks that a bf16 sampler counts the bf16 classes, not
// the float32 ones.
func TestBF16AgreesWithFP32(t *testing.T) {
	testenv.SkipBF16UnderISACap(t)
	s, xs := fashionSampler(t, torchbind.InferOptions{Precision: torchbind.BF16})
	const num = 100
	fp32 := noisyArgmax(t, s, xs, num, torchbind.FP32)
	bf16 := noisyArgmax(t, s, xs, num, torchbind.BF16)
	same := 0
	for i := range fp32 {
		if fp32[i] == bf16[i] {
			same++
		}
	}
	rate := float64(same) / float64(len(fp32))
	t.Logf("bf16 agrees with fp32 on %d of %d noisy copies (%.2f%%)", same, len(fp32), 100*rate)
	if rate < 0.97 {
		t.Errorf("bf16 agrees with fp32 on %.2f%% of noisy copies, want >= 97%%", 100*rate)
	}

	counts, err := s.SampleCountsMany(context.Background(), xs, certify.StageEstimation, slices.Repeat([]int{num}, len(xs)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range counts {
		want := make([]int64, 10)
		for _, k := range bf16[i*num : (i+1)*num] {
			want[k]++
		}
		if !slices.Equal(c, want) {
			t.Errorf("example %d: the bf16 sampler counts %v, its copies' bf16 classes %v", i, c, want)
		}
	}
}

// TestChannelsLastCountsMatch: channels-last changes the memory layout,
// not the counts, on the optimised model the sampler uses by default.
func TestChannelsLastCountsMatch(t *testing.T) {
	nums := slices.Repeat([]int{150}, 20)
	var got [2][][]int64
	for i, cl := range []bool{false, true} {
		s, xs := fashionSampler(t, torchbind.InferOptions{ChannelsLast: cl})
		c, err := s.SampleCountsMany(context.Background(), xs, certify.StageEstimation, nums)
		if err != nil {
			t.Fatal(err)
		}
		got[i] = c
	}
	for i := range got[0] {
		if !slices.Equal(got[0][i], got[1][i]) {
			t.Errorf("example %d: counts %v, channels-last %v", i, got[0][i], got[1][i])
		}
	}
}

func TestSamplerRefusesFP16OnCPU(t *testing.T) {
	s := &Sampler{Model: linearModel(t, 0), Device: "cpu", Sigma: 0.5, Batch: 10, NumClasses: 2,
		Shape: []int64{1, 2, 2}, Infer: torchbind.InferOptions{Precision: torchbind.FP16},
		Image: func(certify.Input) ([]float32, error) { return make([]float32, 4), nil }}
	if _, err := s.SampleCounts(context.Background(), 0, certify.StageEstimation, 10); err == nil {
		t.Error("fp16 sampling on cpu was not refused")
	}
}
