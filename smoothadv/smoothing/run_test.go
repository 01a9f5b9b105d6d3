package smoothing

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/models"
)

// certifyLine is a line of the reference's certify log: radius in '{:.3}',
// time as a timedelta string.
var certifyLine = regexp.MustCompile(`^\d+\t\d+\t-?\d+\t(0\.0|\d\.\d+|\d\.\d+e-\d+|\d+\.\d*)\t[01]\t\d+:\d\d:\d\d(\.\d{6})?$`)

func fashionJob(t *testing.T, out string, indices []int) (Job, func()) {
	t.Helper()
	ds, err := data.Open("fashion-mnist", "", data.Test)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.New("fashion_cnn", 3, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Train(false); err != nil {
		t.Fatal(err)
	}
	s := &Sampler{Model: m, Device: "cpu", Sigma: 0.25, Batch: 200, NumClasses: 10, Shape: []int64{1, 28, 28}, Workers: 2}
	return Job{Dataset: ds, Sampler: s, Indices: indices, Out: out}, func() { s.Close(); m.Close() }
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestCertifyWritesReferenceLogAndResumes certifies real test images, then
// tears the last line as a crash would and resumes: the log ends complete,
// each example once, in order.
func TestCertifyWritesReferenceLogAndResumes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "certify.tsv")
	indices := []int{0, 7, 14, 21, 28}
	job, done := fashionJob(t, out, indices)
	defer done()
	p := certify.CertifyParams{N0: 50, N: 300, Alpha: 0.001, Sigma: 0.25}
	if err := Certify(context.Background(), job, p); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, out)
	if lines[0] != certify.CertifyHeader || len(lines) != 1+len(indices) {
		t.Fatalf("log:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines[1:] {
		if !certifyLine.MatchString(l) {
			t.Errorf("line %q is not in the reference's format", l)
		}
	}
	// A crash in the middle of writing the last line.
	b, _ := os.ReadFile(out)
	if err := os.WriteFile(out, b[:len(b)-5], 0o644); err != nil {
		t.Fatal(err)
	}
	job.Resume = true
	if err := Certify(context.Background(), job, p); err != nil {
		t.Fatal(err)
	}
	resumed := readLines(t, out)
	if len(resumed) != len(lines) {
		t.Fatalf("after resume %d lines, want %d:\n%s", len(resumed), len(lines), strings.Join(resumed, "\n"))
	}
	for i, l := range resumed[1:] {
		if got := strings.Split(l, "\t")[0]; got != strings.Split(lines[i+1], "\t")[0] {
			t.Errorf("line %d has index %s, want %s", i+1, got, strings.Split(lines[i+1], "\t")[0])
		}
	}
	if strings.Join(resumed[:len(resumed)-1], "\n") != strings.Join(lines[:len(lines)-1], "\n") {
		t.Error("resume rewrote finished lines")
	}
}

func TestPredictWritesBasePredictions(t *testing.T) {
	out := filepath.Join(t.TempDir(), "predictions")
	job, done := fashionJob(t, out, []int{1, 2, 3})
	defer done()
	m := job.Sampler.Model
	if err := Predict(context.Background(), job, certify.PredictParams{N: 200, Alpha: 0.001},
		BasePredictions(m, "cpu", job.Sampler.Shape)); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, out)
	if lines[0] != certify.PredictHeader || len(lines) != 4 {
		t.Fatalf("log:\n%s", strings.Join(lines, "\n"))
	}
}
