package experiment

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/compare"
	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// comparisonFile holds the sentence comparing an experiment's two runs.
const comparisonFile = "comparison.txt"

// Methods as the papers name them.
const (
	smoothAdv = "SmoothAdv"
	gaussian  = "Gaussian augmentation"
)

var methodNames = map[string]string{settings.Gaussian: gaussian, settings.SmoothAdv: smoothAdv,
	settings.MACER: "MACER", settings.Consistency: "Consistency", settings.SmoothMix: "SmoothMix"}

// compareProblems checks analysis.compare_at against the number of runs.
func (a Analysis) compareProblems(runs int) []string {
	if a.CompareAt == nil {
		return nil
	}
	var problems []string
	if r := *a.CompareAt; math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		problems = append(problems, fmt.Sprintf("analysis.compare_at: %v, want a finite radius >= 0", r))
	}
	if runs != 2 {
		problems = append(problems, fmt.Sprintf("analysis.compare_at: compares two runs, the experiment has %d", runs))
	}
	return problems
}

// side is one run of a comparison.
type side struct {
	name   string // how the sentence names it
	method string // the method's name: smoothAdv, gaussian, ...
	log    *analysis.CertifyLog
}

// method names the run's training method.
func (r Run) method() string {
	t := r.Config.Training
	if t.Method == settings.Consistency && t.AdvTraining {
		return "Consistency (SmoothAdv)"
	}
	return methodNames[t.Method]
}

// compareRuns writes the sentence comparing the experiment's two certified
// runs to the log and to comparison.txt.
func (x *runner) compareRuns(radius float64) error {
	var sides [2]side
	for i, r := range x.exp.Runs {
		log, err := analysis.ReadCertifyLog(r.CertifyLog(x.dir))
		if err != nil {
			return err
		}
		sides[i] = side{name: r.method(), method: r.method(), log: log}
	}
	// Two runs of one method are told apart by their folders.
	if sides[0].method == sides[1].method {
		for i, r := range x.exp.Runs {
			sides[i].name = r.legend()
		}
	}
	s, err := compareSides(sides[0], sides[1], radius)
	if err != nil {
		return err
	}
	fmt.Fprintf(x.log, "\n%s\n", s)
	return atomicfile.Write(filepath.Join(x.dir, comparisonFile), []byte(s+"\n"))
}

// compareSides says which side certifies more of the images both logs hold
// at the radius, whether that agrees with the paper (SmoothAdv ahead of
// Gaussian augmentation at radii above 0), and whether the difference could
// be chance: McNemar's exact test on the images only one side certifies.
func compareSides(a, b side, radius float64) (string, error) {
	byIndex := make(map[int]analysis.CertifyRecord, len(b.log.Records))
	for _, rec := range b.log.Records {
		byIndex[rec.Index] = rec
	}
	var n, countA, countB, onlyA, onlyB int
	for _, ra := range a.log.Records {
		rb, ok := byIndex[ra.Index]
		if !ok {
			continue
		}
		n++
		ca, cb := ra.Certified(radius), rb.Certified(radius)
		countA += b2i(ca)
		countB += b2i(cb)
		onlyA += b2i(ca && !cb)
		onlyB += b2i(cb && !ca)
	}
	if n == 0 {
		return "", fmt.Errorf("compare at r = %g: %s and %s certified no image in common", radius, a.log.Path, b.log.Path)
	}
	if countB > countA {
		a, b = b, a
		countA, countB, onlyA, onlyB = countB, countA, onlyB, onlyA
	}
	accA, accB := float64(countA)/float64(n), float64(countB)/float64(n)
	s := fmt.Sprintf("At r = %g, on the same %d images, ", radius, n)
	paperPair := radius > 0 && (a.method == smoothAdv && b.method == gaussian || a.method == gaussian && b.method == smoothAdv)
	if countA == countB {
		s += fmt.Sprintf("%s and %s both certify %.3f: neither is ahead", a.name, b.name, accA)
		if paperPair {
			s += " (the paper reports SmoothAdv ahead)"
		}
		return s + ".", nil
	}
	s += fmt.Sprintf("%s certifies %.3f of them and %s %.3f: %s is ahead", a.name, accA, b.name, accB, a.name)
	switch {
	case paperPair && a.method == smoothAdv:
		s += ", as the paper reports"
	case paperPair:
		s += ", unlike the paper, which reports SmoothAdv ahead"
	}
	p := compare.McNemar(onlyA, onlyB)
	s += fmt.Sprintf(". %d images are certified by %s only, %d by %s only (McNemar's exact test: p = %.2g", onlyA, a.name, onlyB, b.name, p)
	if p >= 0.05 {
		return s + "; on this many images the difference could be chance).", nil
	}
	return s + ").", nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
