package analysis

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify/analysis/internal/reftest"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// loadSet reads the certify logs sets.json lists under name.
func loadSet(t *testing.T, name string) []Model {
	t.Helper()
	models, err := LoadModels(reftest.Set(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return models
}

// TestEnvelopeMatchesReference rebuilds the paper's Table 2 rows from the
// published logs and compares them byte for byte with what the reference
// code printed.
func TestEnvelopeMatchesReference(t *testing.T) {
	radii, err := ParseRadii("0.25:2.25:0.25")
	if err != nil {
		t.Fatal(err)
	}
	for set, file := range map[string]string{
		"all_cifar_cohen_fulldataset": "cohen_cifar10_certified_outer_envelop",
		"best_cifar10":                "our_cifar10_certified_outer_envelop",
	} {
		want, err := os.ReadFile(filepath.Join(reftest.Dir(t), "analysis", "latex_new", file))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := UpperEnvelope(loadSet(t, set), radii).Write(&got, LaTeX); err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want) {
			t.Errorf("%s:\ngot\n%s\nreference printed\n%s", file, got.String(), want)
		}
	}
}

// TestBestModelsMatchReference compares with the reference's
// radii_to_best_models files: same radii, same accuracies (as Python printed
// them), and the same model. The reference names a model by its path in its
// own folder layout, which is a suffix of the shared log's name.
func TestBestModelsMatchReference(t *testing.T) {
	radii, err := Radii(0, 2.25, 0.125)
	if err != nil {
		t.Fatal(err)
	}
	for set, file := range map[string]string{
		"all_cifar_cohen_fulldataset": "cifar10_original",
		"best_cifar10":                "cifar10_ours",
	} {
		want := readTSV(t, filepath.Join(reftest.Dir(t), "analysis", "radii_to_best_models", file))
		var buf bytes.Buffer
		if err := WriteBest(&buf, BestModels(loadSet(t, set), radii)); err != nil {
			t.Fatal(err)
		}
		got := readTSVString(t, buf.String())
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, reference has %d", file, len(got), len(want))
		}
		if strings.Join(got[0], "\t") != strings.Join(want[0], "\t") {
			t.Errorf("%s: header %q, reference %q", file, got[0], want[0])
		}
		for i := 1; i < len(want); i++ {
			g, w := got[i], want[i]
			if g[0] != w[0] || g[1] != w[1] || !strings.HasSuffix(g[2], w[2]) {
				t.Errorf("%s line %d: got %q, reference %q", file, i+1, g, w)
			}
		}
	}
}

func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readTSVString(t, string(data))
}

func readTSVString(t *testing.T, s string) [][]string {
	t.Helper()
	var rows [][]string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		row := strings.Split(sc.Text(), "\t")
		if len(row) != 3 {
			t.Fatalf("line %q: want 3 fields", sc.Text())
		}
		rows = append(rows, row)
	}
	return rows
}

// TestCertifiedAccuracyMatchesReference checks single values against the
// reference's radii_to_best_models (Cohen et al.'s sigma 0.12 model is the
// best at radius 0 with 0.8317, sigma 1.00 at radius 2.25 with 0.0431).
func TestCertifiedAccuracyMatchesReference(t *testing.T) {
	models := loadSet(t, "all_cifar_cohen_fulldataset")
	for _, c := range []struct {
		model  int
		radius float64
		want   string
	}{{0, 0, "0.8317"}, {3, 2.25, "0.0431"}, {2, 0.625, "0.376"}} {
		if got := pyfmt.Repr(models[c.model].Log.CertifiedAccuracy(c.radius)); got != c.want {
			t.Errorf("%s at %v: %s, reference %s", models[c.model].Legend, c.radius, got, c.want)
		}
	}
}
