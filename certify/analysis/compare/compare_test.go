package compare

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/internal/reftest"
	"github.com/smoothadv/smoothadv/certify/stats"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

func cohenLogs(t *testing.T) []*analysis.CertifyLog {
	t.Helper()
	var logs []*analysis.CertifyLog
	for _, p := range reftest.Set(t, "all_cifar_cohen_fulldataset") {
		l, err := analysis.ReadCertifyLog(p)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	return logs
}

// TestDifferentModelsDiffer: Cohen et al.'s sigma 0.25 and sigma 0.50
// models are different smoothed classifiers.
func TestDifferentModelsDiffer(t *testing.T) {
	logs := cohenLogs(t)
	res, err := Compare(logs[1], logs[2], Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Consistent {
		t.Errorf("sigma 0.25 and 0.50 called consistent:\n%s", write(t, res))
	}
	if res.Shared != 10000 || res.LabelMismatch != 0 {
		t.Errorf("shared %d, label mismatches %d; want 10000 and 0", res.Shared, res.LabelMismatch)
	}
}

// TestSameLogIsConsistent: a log against itself has no discordant pairs.
func TestSameLogIsConsistent(t *testing.T) {
	l := cohenLogs(t)[0]
	res, err := Compare(l, l, Options{Radii: []float64{0, 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Consistent || res.SamePredict != 10000 || res.Radii[1].OnlyA+res.Radii[1].OnlyB != 0 {
		t.Errorf("a log against itself:\n%s", write(t, res))
	}
}

// smoothed is a made-up smoothed classifier on the examples of a real log:
// on example i the noisy base classifier returns top[i] with probability
// p[i] and another class otherwise.
type smoothed struct {
	labels, top []int
	p           []float64
}

// fromLog builds one whose certificates look like those of the log: the top
// class has the probability Phi(radius/sigma) that the log's radius implies,
// and a random one in [0.3, 0.55] where the log abstains.
func fromLog(l *analysis.CertifyLog, sigma float64, rng *rand.Rand) smoothed {
	var g smoothed
	for _, r := range l.Records {
		top, p := r.Predict, distuv.UnitNormal.CDF(r.Radius/sigma)
		if r.Predict == certify.Abstain {
			top, p = r.Label, 0.3+0.25*rng.Float64()
		}
		g.labels, g.top, g.p = append(g.labels, r.Label), append(g.top, top), append(g.p, p)
	}
	return g
}

// certify runs the reference's CERTIFY (N0 = 100, N = 100000,
// alpha = 0.001) on g with fresh Monte Carlo samples, drawn as binomial
// counts, and returns the log it would write.
func (g smoothed) certify(t *testing.T, sigma float64, seed uint64) *analysis.CertifyLog {
	t.Helper()
	const n0, n, alpha = 100, 100000, 0.001
	src := rand.New(rand.NewPCG(seed, 7))
	l := &analysis.CertifyLog{Path: "simulated-" + strconv.FormatUint(seed, 10)}
	for i := range g.labels {
		other := (g.top[i] + 1) % 10
		pick, pA := g.top[i], g.p[i]
		if (distuv.Binomial{N: n0, P: g.p[i], Src: src}).Rand() < n0/2 {
			pick, pA = other, 1-g.p[i]
		}
		nA := int(distuv.Binomial{N: n, P: pA, Src: src}.Rand())
		lower, err := stats.ClopperPearsonLower(nA, n, alpha) // CERTIFY's bound
		if err != nil {
			t.Fatal(err)
		}
		rec := analysis.CertifyRecord{Index: i, Label: g.labels[i], Predict: certify.Abstain}
		if lower >= 0.5 {
			// The log keeps the radius to Python's '{:.3}'.
			rec.Radius, _ = strconv.ParseFloat(pyfmt.G(sigma*distuv.UnitNormal.Quantile(lower), 3), 64)
			rec.Predict = pick
		}
		l.Records = append(l.Records, rec)
	}
	return l
}

// TestSameClassifierIsConsistent: two CERTIFY runs on one smoothed
// classifier pass; a classifier whose top-class probabilities are 0.02
// lower is caught.
func TestSameClassifierIsConsistent(t *testing.T) {
	const sigma = 0.25
	g := fromLog(cohenLogs(t)[1], sigma, rand.New(rand.NewPCG(1, 2)))
	a, b := g.certify(t, sigma, 1), g.certify(t, sigma, 2)
	res, err := Compare(a, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Consistent {
		t.Errorf("two runs of one classifier called inconsistent:\n%s", write(t, res))
	}
	if res.SamePredict == res.Shared {
		t.Error("the simulated runs never differ: the test has no teeth")
	}
	worse := smoothed{labels: g.labels, top: g.top}
	for _, p := range g.p {
		worse.p = append(worse.p, math.Max(0, p-0.02))
	}
	res, err = Compare(a, worse.certify(t, sigma, 3), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Consistent {
		t.Errorf("a weaker classifier called consistent:\n%s", write(t, res))
	}
}

func TestCompareErrors(t *testing.T) {
	rec := analysis.CertifyRecord{Index: 1, Label: 2, Predict: 2, Radius: 0.5}
	a := &analysis.CertifyLog{Path: "a", Records: []analysis.CertifyRecord{rec}}
	dup := &analysis.CertifyLog{Path: "dup", Records: []analysis.CertifyRecord{rec, rec}}
	rec.Index = 2
	disjoint := &analysis.CertifyLog{Path: "disjoint", Records: []analysis.CertifyRecord{rec}}
	rec.Index, rec.Label = 1, 3
	relabelled := &analysis.CertifyLog{Path: "relabelled", Records: []analysis.CertifyRecord{rec}}
	for _, c := range []struct {
		b    *analysis.CertifyLog
		opt  Options
		want string
	}{
		{dup, Options{}, "dup: index 1 appears twice"},
		{disjoint, Options{}, "no shared indices"},
		{a, Options{Level: 2, Radii: []float64{-1}}, "level 2 not in (0, 1); radius -1"},
	} {
		if _, err := Compare(a, c.b, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("compare with %s: error %v, want %q", c.b.Path, err, c.want)
		}
	}
	res, err := Compare(a, relabelled, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Consistent || !strings.Contains(write(t, res), "labels differ on 1 shared indices") {
		t.Errorf("different labels not caught:\n%s", write(t, res))
	}
}

func write(t *testing.T, r *Result) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
