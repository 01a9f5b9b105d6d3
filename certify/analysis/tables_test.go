package analysis

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify"
)

// handModels are three small logs whose accuracies are easy to work out by
// hand. At radii 0, 0.25, 0.5, 0.75:
//
//	A: 0.50 0.50 0.25 0.00  (abstains on 1 of 4)
//	B: 0.50 0.25 0.25 0.25  (abstains on 2 of 4)
//	C: 0.75 0.25 0.25 0.00
func handModels(t *testing.T) []Model {
	t.Helper()
	logs := map[string]string{
		"A": "0\t1\t1\t0.5\t1\t0:00:01\n1\t2\t2\t0.3\t1\t0:00:01\n2\t3\t4\t0.9\t0\t0:00:01\n3\t5\t-1\t0.0\t0\t0:00:01\n",
		"B": "0\t1\t1\t1.0\t1\t0:00:01\n1\t2\t-1\t0.0\t0\t0:00:01\n2\t3\t-1\t0.0\t0\t0:00:01\n3\t5\t5\t0.2\t1\t0:00:01\n",
		"C": "0\t1\t1\t0.6\t1\t0:00:01\n1\t2\t2\t0.1\t1\t0:00:01\n2\t3\t3\t0.1\t1\t0:00:01\n3\t5\t-1\t0.0\t0\t0:00:01\n",
	}
	var models []Model
	for _, name := range []string{"A", "B", "C"} {
		log, err := ParseCertifyLog(strings.NewReader(certify.CertifyHeader+"\n"+logs[name]), name)
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, Model{Legend: name, Log: log})
	}
	return models
}

func TestMeasures(t *testing.T) {
	m := handModels(t)
	if got := m[0].Log.CertifiedAccuracies([]float64{0, 0.25, 0.3, 0.5, 0.75}); !equal(got, []float64{0.5, 0.5, 0.5, 0.25, 0}) {
		t.Errorf("A's certified accuracies %v", got)
	}
	for i, want := range []float64{0.9, 1.0, 0.6} {
		if got := m[i].Log.MaxRadius(); got != want {
			t.Errorf("%s's largest radius %v, want %v", m[i].Legend, got, want)
		}
	}
	if got := (&CertifyLog{Records: []CertifyRecord{{Radius: 0}}}).MaxRadius(); got != 0 {
		t.Errorf("largest radius of an all-abstaining log %v, want 0", got)
	}
	if got := m[1].Log.AbstentionRate(); got != 50 {
		t.Errorf("B's abstention rate %v, want 50", got)
	}
	// 0.08132208530677093: the reference's HighProbAccuracy formula evaluated
	// by CPython for mean 0.5, n 4, alpha 0.001, rho 0.01.
	got, err := m[0].Log.HighProbAccuracy(0.25, 0.001, 0.01)
	if err != nil || math.Abs(got-0.08132208530677093) > 1e-15 {
		t.Errorf("high-probability accuracy %v, %v", got, err)
	}
	if _, err := m[0].Log.HighProbAccuracy(0.25, 0.001, 0); err == nil {
		t.Error("rho 0 accepted")
	}
	// 0.5/sqrt(3*32*32) by CPython: an L2 radius of 0.5 on CIFAR-10.
	if got := LinfRadius(0.5, 3*32*32); math.Abs(got-0.009021097956087904) > 1e-18 {
		t.Errorf("L-infinity radius %v", got)
	}
	pred, err := ParsePredictLog(strings.NewReader(certify.PredictHeader+"\n0\t1\t1\t1\t1\t0:00:01\n1\t1\t2\t1\t0\t0:00:01\n2\t1\t1\t1\t1\t0:00:01\n3\t1\t-1\t1\t0\t0:00:01\n"), "p")
	if err != nil {
		t.Fatal(err)
	}
	if got := pred.EmpiricalAccuracy(); got != 0.5 {
		t.Errorf("empirical accuracy %v, want 0.5", got)
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTableFormats checks the per-model table in each format against text
// written by hand from the reference's rules: the column maximum (the first
// one on ties, like numpy's argmax) is bold in LaTeX and starred in Markdown.
func TestTableFormats(t *testing.T) {
	table := NewTable(handModels(t)[:2], []float64{0.25, 0.5, 0.75})
	for f, want := range map[Format]string{
		LaTeX: `$\ell_2$ Radius& $0.25$& $0.5$& $0.75$\\` + "\n" + `\midrule` + "\n" +
			`A & \textbf{0.50} & \textbf{0.25} & 0.00\\` + "\n" +
			`B & 0.25 & 0.25 & \textbf{0.25}\\` + "\n",
		Markdown: "|  | r = 0.25 |r = 0.5 |r = 0.75 |\n| --- |  --- | --- | --- |\n" +
			"<b> A </b>| 0.50<b>*</b> |0.25<b>*</b> |0.00 |\n" +
			"<b> B </b>| 0.25 |0.25 |0.25<b>*</b> |\n",
		CSV: "model,0.25,0.5,0.75\nA,0.5,0.25,0.0\nB,0.25,0.25,0.25\n",
		Text: "model  r=0.25   r=0.5    r=0.75\n" +
			"A      0.5000*  0.2500*  0.0000\n" +
			"B      0.2500   0.2500   0.2500*\n",
	} {
		var buf bytes.Buffer
		if err := table.Write(&buf, f); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", f, buf.String(), want)
		}
	}
	if err := table.Write(&bytes.Buffer{}, "html"); err == nil {
		t.Error("unknown format accepted")
	}
}

// TestEnvelopeTieBreak: at radius 0.5 all three models reach 0.25; the
// envelope takes C, the most accurate at radius 0, where the best-model list
// takes the first, A, as the reference's two functions do.
func TestEnvelopeTieBreak(t *testing.T) {
	models := handModels(t)
	radii := []float64{0.25, 0.5, 0.75}
	var buf bytes.Buffer
	if err := UpperEnvelope(models, radii).Write(&buf, LaTeX); err != nil {
		t.Fatal(err)
	}
	want := `$\ell_2$ Radius& $0.25$& $0.5$& $0.75$\\` + "\n" + `\midrule` + "\n" +
		` & $^{(0.50)}$0.50 & $^{(0.75)}$0.25 & $^{(0.50)}$0.25\\` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	var legends []string
	for _, p := range BestModels(models, radii) {
		legends = append(legends, p.Legend)
	}
	if strings.Join(legends, " ") != "A A B" {
		t.Errorf("best models %v, want A A B", legends)
	}
	if e := UpperEnvelope(nil, radii); len(e) != 0 {
		t.Errorf("envelope of no models: %v", e)
	}
	buf.Reset()
	if err := UpperEnvelope(models, radii).Write(&buf, CSV); err != nil {
		t.Fatal(err)
	}
	wantCSV := "radius,certified_accuracy,clean_accuracy,model\n0.25,0.5,0.5,A\n0.5,0.25,0.75,C\n0.75,0.25,0.5,B\n"
	if buf.String() != wantCSV {
		t.Errorf("csv:\n%s\nwant\n%s", buf.String(), wantCSV)
	}
}

func TestModelArgs(t *testing.T) {
	for _, c := range []struct{ arg, path, legend string }{
		{"a/b=$\\sigma = 0.25$", "a/b", "$\\sigma = 0.25$"},
		{"data/certify/cifar10/x/noise_0.25/test/sigma_0.25", "data/certify/cifar10/x/noise_0.25/test/sigma_0.25", "cifar10/x/noise_0.25"},
		{"runs/log.tsv", "runs/log.tsv", "runs/log.tsv"},
	} {
		path, legend := ParseModelArg(c.arg)
		if path != c.path || legend != c.legend {
			t.Errorf("ParseModelArg(%q) = %q, %q; want %q, %q", c.arg, path, legend, c.path, c.legend)
		}
	}
	if _, err := LoadModels(nil); err == nil {
		t.Error("no logs accepted")
	}
}

// A log named twice, with different legends, is read once and shared.
func TestLoadModelsReadsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte(certify.CertifyHeader+"\n0\t1\t1\t0.5\t1\t0:00:01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	models, err := LoadModels([]string{path + "=a", path + "=b"})
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || models[0].Log != models[1].Log || models[0].Legend != "a" || models[1].Legend != "b" {
		t.Errorf("models %+v: want one log under legends a and b", models)
	}
	if _, err := LoadModels([]string{path, filepath.Join(path, "missing")}); err == nil {
		t.Error("a missing log accepted")
	}
}
