package experiment

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
)

// certifyLog is a log of label-0 images: those in certified get radius 0.6,
// wrong ones a prediction of 1 with radius 0.9 (not certified), the rest
// radius 0.3.
func certifyLog(path string, indices []int, certified, wrong map[int]bool) *analysis.CertifyLog {
	l := &analysis.CertifyLog{Path: path}
	for _, i := range indices {
		rec := analysis.CertifyRecord{Index: i, Label: 0, Predict: 0, Radius: 0.3}
		switch {
		case certified[i]:
			rec.Radius = 0.6
		case wrong[i]:
			rec.Predict, rec.Radius = 1, 0.9
		}
		l.Records = append(l.Records, rec)
	}
	return l
}

func set(indices ...int) map[int]bool {
	m := map[int]bool{}
	for _, i := range indices {
		m[i] = true
	}
	return m
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestCompareSides checks the sentence against counts done by hand. Both
// logs hold images 0-9; SmoothAdv's also 10 and Gaussian's 11, which are
// not compared. At r = 0.5 SmoothAdv certifies 0-7 (8 of 10), Gaussian
// 0-2 and 8 (4): 5 images only in SmoothAdv, 1 only in Gaussian, so
// McNemar's p = 2 P(Binomial(6, 1/2) <= 1) = 2 * 7/64 = 0.21875. Gaussian's
// image 9 is predicted wrongly with a large radius and must not count.
func TestCompareSides(t *testing.T) {
	adv := side{name: smoothAdv, method: smoothAdv, log: certifyLog("adv", append(upTo(10), 10), set(0, 1, 2, 3, 4, 5, 6, 7, 10), nil)}
	gauss := side{name: gaussian, method: gaussian, log: certifyLog("gauss", append(upTo(10), 11), set(0, 1, 2, 8, 11), set(9))}
	want := "At r = 0.5, on the same 10 images, SmoothAdv certifies 0.800 of them and Gaussian augmentation 0.400: " +
		"SmoothAdv is ahead, as the paper reports. 5 images are certified by SmoothAdv only, 1 by Gaussian augmentation only " +
		"(McNemar's exact test: p = 0.22; on this many images the difference could be chance)."
	for _, order := range [][2]side{{adv, gauss}, {gauss, adv}} {
		got, err := compareSides(order[0], order[1], 0.5)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("compareSides(%s, %s):\n got %s\nwant %s", order[0].name, order[1].name, got, want)
		}
	}

	// At r = 0.25 every correct image counts: SmoothAdv 10 of 10, Gaussian 9
	// (image 9 is wrong): 1 discordant image, p = 1.
	got, err := compareSides(gauss, adv, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SmoothAdv certifies 1.000 of them and Gaussian augmentation 0.900: SmoothAdv is ahead, as the paper reports."; !strings.Contains(got, want) {
		t.Errorf("at r = 0.25: %s\nwant it to contain %s", got, want)
	}
}

// TestCompareSidesVerdicts covers the other outcomes: Gaussian ahead
// (against the paper) and significantly so, a tie, radius 0 (where the
// paper makes no claim) and two runs of one method.
func TestCompareSidesVerdicts(t *testing.T) {
	// Gaussian certifies all 12 images, SmoothAdv none: p = 2 / 2^12.
	adv := side{name: smoothAdv, method: smoothAdv, log: certifyLog("adv", upTo(12), nil, nil)}
	gauss := side{name: gaussian, method: gaussian, log: certifyLog("gauss", upTo(12), set(upTo(12)...), nil)}
	tests := []struct {
		a, b   side
		radius float64
		want   string
	}{
		{adv, gauss, 0.5, "At r = 0.5, on the same 12 images, Gaussian augmentation certifies 1.000 of them and SmoothAdv 0.000: " +
			"Gaussian augmentation is ahead, unlike the paper, which reports SmoothAdv ahead. " +
			"12 images are certified by Gaussian augmentation only, 0 by SmoothAdv only (McNemar's exact test: p = 0.00049)."},
		{adv, side{name: gaussian, method: gaussian, log: adv.log}, 0.5,
			"At r = 0.5, on the same 12 images, SmoothAdv and Gaussian augmentation both certify 0.000: neither is ahead (the paper reports SmoothAdv ahead)."},
		// Every image is correct, so radius 0 certifies all of both: a tie,
		// and no word about the paper, which claims nothing there.
		{adv, gauss, 0, "At r = 0, on the same 12 images, SmoothAdv and Gaussian augmentation both certify 1.000: neither is ahead."},
		{side{name: "gaussian/noise_0.25", method: gaussian, log: adv.log}, side{name: "gaussian/noise_0.50", method: gaussian, log: gauss.log}, 0.5,
			"gaussian/noise_0.50 certifies 1.000 of them and gaussian/noise_0.25 0.000: gaussian/noise_0.50 is ahead. 12 images"},
	}
	for _, tc := range tests {
		got, err := compareSides(tc.a, tc.b, tc.radius)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("compareSides(%s, %s, %v):\n got %s\nwant %s", tc.a.name, tc.b.name, tc.radius, got, tc.want)
		}
	}

	if _, err := compareSides(adv, side{name: gaussian, method: gaussian, log: certifyLog("other", []int{20}, nil, nil)}, 0.5); err == nil ||
		!strings.Contains(err.Error(), "no image in common") {
		t.Errorf("logs without common images: error %v, want one saying so", err)
	}
}

// TestComparisonWritten runs a two-run experiment with compare_at: the
// sentence ends the log and is written to comparison.txt.
func TestComparisonWritten(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	e := parse(t, strings.Replace(twoRuns, "  plot: false\n", "  plot: false\n  compare_at: 0.25\n", 1))
	out := t.TempDir()
	var log strings.Builder
	if err := e.Run(context.Background(), Options{Out: out, Worker: &fakeWorker{}, Log: &log}); err != nil {
		t.Fatal(err)
	}
	// The fake worker certifies the same radii in both runs: 6 of its 10
	// images have radius >= 0.25 (see fakeWorker.Certify).
	want := "At r = 0.25, on the same 10 images, gaussian/noise_0.25 and gaussian/noise_0.50 both certify 0.600: neither is ahead.\n"
	if !strings.HasSuffix(log.String(), want) {
		t.Errorf("log does not end with the comparison %q:\n%s", want, log.String())
	}
	if got := filetest.Read(t, filepath.Join(out, "two", comparisonFile)); got != want {
		t.Errorf("%s: %q, want %q", comparisonFile, got, want)
	}
}

func TestCompareAtChecked(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{minimal + "analysis:\n  compare_at: 0.5\n", "analysis.compare_at: compares two runs, the experiment has 1"},
		{strings.Replace(twoRuns, "  plot: false\n", "  plot: false\n  compare_at: -0.5\n", 1), "analysis.compare_at: -0.5, want a finite radius >= 0"},
	} {
		if _, err := Parse([]byte(tc.text), "test.yaml", t.TempDir(), 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
