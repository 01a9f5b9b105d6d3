package attack

import (
	"math"
	"testing"
)

// The reference's rules written out in float64 for the linear fixture, whose
// input gradient has a closed form: with p = softmax(Wv + b),
// d(cross-entropy)/dv = W^T (p - e_y) and d p_y / dv = p_y W^T (e_y - p).

// direction is each image's ascent direction at deltas: the gradient of the
// reference loss (m = 1: cross-entropy summed over images; m > 1: NLL of the
// softmax averaged over the copies, mean over images) or, with stein, the
// mean over the copies of -softmax_y(x + delta + n_i) n_i.
func (l linear) direction(p problem, deltas [][]float64, stein bool) [][]float64 {
	out := make([][]float64, len(p.images))
	for b, x := range p.images {
		y := p.labels[b]
		g := make([]float64, size)
		accumulate := func(coef float64, v []float64) {
			for j := range g {
				g[j] += coef * v[j]
			}
		}
		ps := make([][]float64, p.m)
		avg := 0.0
		for i, n := range p.noise[b] {
			ps[i] = l.probs(add(x, deltas[b], n))
			avg += ps[i][y] / float64(p.m)
		}
		for i, pr := range ps {
			for k := range classes {
				onehot := 0.0
				if k == y {
					onehot = 1
				}
				switch {
				case stein:
					if k == y {
						accumulate(-pr[y]/float64(p.m), p.noise[b][i])
					}
				case p.m == 1:
					accumulate(pr[k]-onehot, l.w[k])
				default:
					scale := -1 / (float64(len(p.images)*p.m) * avg)
					accumulate(scale*pr[y]*(onehot-pr[k]), l.w[k])
				}
			}
		}
		out[b] = g
	}
	return out
}

// prediction is the label the classifier gives image b at delta: the argmax,
// or for m > 1 the most frequent argmax over the copies, smallest among ties.
func (l linear) prediction(p problem, b int, delta []float64) int {
	votes := make([]int, classes)
	for _, n := range p.noise[b] {
		votes[argmax(l.probs(add(p.images[b], delta, n)))]++
	}
	best := 0
	for k := range votes {
		if votes[k] > votes[best] {
			best = k
		}
	}
	return best
}

func scaled(v []float64, c float64) []float64 {
	out := make([]float64, len(v))
	for j := range v {
		out[j] = c * v[j]
	}
	return out
}

func unit(v []float64) []float64 { return scaled(v, 1/norm(v)) }

// boxed is clamp(x + d, 0, 1) - x.
func boxed(x, d []float64) []float64 {
	out := make([]float64, len(d))
	for j := range d {
		out[j] = min(1, max(0, x[j]+d[j])) - x[j]
	}
	return out
}

// renormed is torch.renorm's rule: a norm above eps is scaled by
// eps / (norm + 1e-7).
func renormed(d []float64, eps float64) []float64 {
	if n := norm(d); n > eps {
		return scaled(d, eps/(n+1e-7))
	}
	return d
}

func handPGD(l linear, c Config, p problem) [][]float64 {
	deltas := zeros(len(p.images))
	lr := 2 * c.Epsilon / float64(c.Steps)
	for range c.Steps {
		dirs := l.direction(p, deltas, c.NoGrad && p.m > 1)
		for b, x := range p.images {
			deltas[b] = renormed(boxed(x, add(deltas[b], scaled(unit(dirs[b]), lr))), c.Epsilon)
		}
	}
	return deltas
}

// level rounds v to the nearest of 256 levels (half to even, as
// torch.round), failing the test when v lies so close to half-way that
// float32 and float64 could round it differently.
func level(t *testing.T, v float64) float64 {
	r := v * 255
	if math.Abs(r-math.Floor(r)-0.5) < 1e-3 {
		t.Fatalf("the fixture lands within 1e-3 of a rounding boundary (%v levels); pick another seed", r)
	}
	return math.RoundToEven(r) / 255
}

func handDDN(t *testing.T, l linear, c Config, p problem) [][]float64 {
	n := len(p.images)
	deltas, best := zeros(n), zeros(n)
	norms, worst, bestNorm := make([]float64, n), make([]float64, n), make([]float64, n)
	for b, x := range p.images {
		far := make([]float64, size)
		for j, v := range x {
			far[j] = max(v, 1-v)
		}
		worst[b], bestNorm[b], norms[b] = norm(far), norm(far), c.InitNorm
	}
	for i := range c.Steps {
		lr := 0.01 + 0.99*(1+math.Cos(math.Pi*float64(i+1)/float64(c.Steps)))/2
		dirs := l.direction(p, deltas, false)
		for b, x := range p.images {
			adv := l.prediction(p, b, deltas[b]) != p.labels[b]
			if d := norm(deltas[b]); adv && d < bestNorm[b] {
				bestNorm[b], best[b] = d, deltas[b]
			}
			if adv {
				norms[b] *= 1 - c.Gamma
			} else {
				norms[b] *= 1 + c.Gamma
			}
			norms[b] = min(norms[b], worst[b])
			d := add(deltas[b], scaled(unit(dirs[b]), lr))
			d = scaled(d, norms[b]/norm(d))
			for j := range d {
				d[j] = min(1, max(0, level(t, x[j]+d[j]))) - x[j]
			}
			deltas[b] = d
		}
	}
	for b := range best {
		d := renormed(best[b], c.Epsilon)
		best[b] = make([]float64, size)
		for j := range d {
			best[b][j] = level(t, d[j])
		}
	}
	return best
}

func maxDiff(a, b [][]float64) float64 {
	worst := 0.0
	for i := range a {
		for j := range a[i] {
			worst = max(worst, math.Abs(a[i][j]-b[i][j]))
		}
	}
	return worst
}
