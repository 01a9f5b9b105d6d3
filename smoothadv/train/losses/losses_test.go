package losses

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/smoothadv/smoothadv/torchbind"
)

// The fixture: a linear classifier logits = W v + c on D-dimensional
// inputs, B images with m noisy copies each and K classes. Each loss is
// computed by hand in float64 from W, and its gradient with respect to W by
// central differences of that computation; the losses above, in float32
// through autograd, must agree in value and in the gradient's direction.
const (
	nImages  = 4
	nCopies  = 3
	nClasses = 4
	nInputs  = 5
)

type fixture struct {
	w      []float64 // [K, D], row-major
	c      []float64 // [K]
	inputs [][]float64
	labels []int64
}

// newFixture draws inputs [nImages*nCopies][D] (image-major) and a
// classifier from seed; scale sets how peaked the logits are.
func newFixture(seed uint64, scale float64) fixture {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := fixture{w: make([]float64, nClasses*nInputs), c: make([]float64, nClasses)}
	for i := range f.w {
		f.w[i] = scale * rng.NormFloat64()
	}
	for i := range f.c {
		f.c[i] = 0.3 * rng.NormFloat64()
	}
	for range nImages * nCopies {
		v := make([]float64, nInputs)
		for j := range v {
			v[j] = rng.Float64()
		}
		f.inputs = append(f.inputs, v)
	}
	for range nImages {
		f.labels = append(f.labels, int64(rng.IntN(nClasses)))
	}
	return f
}

// logits are the classifier's logits [image][copy][class] for inputs
// under weights w.
func (f fixture) logits(w []float64, inputs [][]float64) [][][]float64 {
	out := make([][][]float64, nImages)
	for b := range out {
		out[b] = make([][]float64, nCopies)
		for i := range out[b] {
			v := inputs[b*nCopies+i]
			l := make([]float64, nClasses)
			for k := range l {
				l[k] = f.c[k]
				for j, x := range v {
					l[k] += w[k*nInputs+j] * x
				}
			}
			out[b][i] = l
		}
	}
	return out
}

func softmax(l []float64, beta float64) []float64 {
	hi := math.Inf(-1)
	for _, v := range l {
		hi = max(hi, beta*v)
	}
	out := make([]float64, len(l))
	sum := 0.0
	for k, v := range l {
		out[k] = math.Exp(beta*v - hi)
		sum += out[k]
	}
	for k := range out {
		out[k] /= sum
	}
	return out
}

// meanSoftmax averages the copies' softmax (of beta times the logits).
func meanSoftmax(copies [][]float64, beta float64) []float64 {
	avg := make([]float64, nClasses)
	for _, l := range copies {
		for k, p := range softmax(l, beta) {
			avg[k] += p / float64(len(copies))
		}
	}
	return avg
}

func logSoftmax(l []float64) []float64 {
	p := softmax(l, 1)
	for k := range p {
		p[k] = math.Log(p[k])
	}
	return p
}

func argmax(v []float64) int {
	best := 0
	for k := range v {
		if v[k] > v[best] {
			best = k
		}
	}
	return best
}

// kl is KL(p || q) from p and log q.
func kl(p, logq []float64) float64 {
	sum := 0.0
	for k := range p {
		if p[k] > 0 {
			sum += p[k] * (math.Log(p[k]) - logq[k])
		}
	}
	return sum
}

// meanXent is the mean cross-entropy over every copy.
func meanXent(logits [][][]float64, labels []int64) float64 {
	sum := 0.0
	for b, copies := range logits {
		for _, l := range copies {
			sum -= logSoftmax(l)[labels[b]]
		}
	}
	return sum / (nImages * nCopies)
}

// macerCounts says which images MACER's robustness loss keeps.
type macerCounts struct{ kept, wrongTop, hinged int }

func (f fixture) handMACER(p MACER, w []float64) (float64, macerCounts) {
	var n macerCounts
	cls, rob := 0.0, 0.0
	for b, copies := range f.logits(w, f.inputs) {
		y := int(f.labels[b])
		cls -= math.Log(meanSoftmax(copies, 1)[y] + 1e-10)
		q := meanSoftmax(copies, p.Beta)
		top1 := argmax(q)
		q1 := q[top1]
		q[top1] = math.Inf(-1)
		q2 := q[argmax(q)]
		if top1 != y {
			n.wrongTop++
			continue
		}
		r := distuv.UnitNormal.Quantile(q2) - distuv.UnitNormal.Quantile(q1)
		if math.IsNaN(r) || math.IsInf(r, 0) || math.Abs(r) > p.Gamma {
			n.hinged++
			continue
		}
		n.kept++
		rob += r + p.Gamma
	}
	return (cls + p.Lambda*p.Sigma/2*rob) / nImages, n
}

func (f fixture) handConsistency(lambda, eta float64, w []float64) float64 {
	logits := f.logits(w, f.inputs)
	reg := 0.0
	for _, copies := range logits {
		avg := meanSoftmax(copies, 1)
		div, ent := 0.0, 0.0
		for _, l := range copies {
			div += kl(avg, logSoftmax(l)) / nCopies
		}
		for _, p := range avg {
			ent -= p * math.Log(max(p, 1e-20))
		}
		reg += (lambda*div + eta*ent) / nImages
	}
	return meanXent(logits, f.labels) + reg
}

// handSmoothMix is SmoothMix's loss with the mixed inputs mixedInputs; with
// targetW set, the target y_mix is computed under targetW rather than w (a
// detached target).
func (f fixture) handSmoothMix(mixedInputs [][]float64, lam []float64, weight float64, w, targetW []float64) float64 {
	clean, mixed := f.logits(w, f.inputs), f.logits(w, mixedInputs)
	targetLogits := clean
	if targetW != nil {
		targetLogits = f.logits(targetW, f.inputs)
	}
	mix := 0.0
	for b := range clean {
		pc := meanSoftmax(targetLogits[b], 1)
		if argmax(pc) != int(f.labels[b]) {
			continue
		}
		target := make([]float64, nClasses)
		for k := range target {
			target[k] = (1-lam[b])*pc[k] + lam[b]/nClasses
		}
		for _, l := range mixed[b] {
			mix += kl(target, logSoftmax(l)) / (nImages * nCopies)
		}
	}
	return meanXent(clean, f.labels) + weight*mix
}

// numericGrad is the gradient of loss at w by central differences.
func numericGrad(loss func(w []float64) float64, w []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(w))
	for i := range w {
		plus, minus := append([]float64(nil), w...), append([]float64(nil), w...)
		plus[i] += h
		minus[i] -= h
		g[i] = (loss(plus) - loss(minus)) / (2 * h)
	}
	return g
}

// torchLoss evaluates a loss of this package on the fixture's classifier
// in float32 and returns its value and its gradient with respect to W.
// loss gets the logits [B, m, K] of each input set.
func (f fixture) torchLoss(t *testing.T, inputSets [][][]float64, loss func(s *torchbind.Scope, logits []*torchbind.Tensor) *torchbind.Tensor) (float64, []float64) {
	t.Helper()
	s := torchbind.NewScope()
	defer s.Close()
	w := s.FromFloat32(float32s(f.w), "cpu", nClasses, nInputs)
	if _, err := w.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	c := s.FromFloat32(float32s(f.c), "cpu", 1, nClasses)
	var logits []*torchbind.Tensor
	for _, inputs := range inputSets {
		var flat []float64
		for _, v := range inputs {
			flat = append(flat, v...)
		}
		x := s.FromFloat32(float32s(flat), "cpu", nImages*nCopies, 1, nInputs)
		l := s.Add(s.SumDim(s.Mul(x, s.Reshape(w, 1, nClasses, nInputs)), 2, false), c)
		logits = append(logits, s.Reshape(l, nImages, nCopies, nClasses))
	}
	l := loss(s, logits)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	value, err := l.Item()
	if err != nil {
		t.Fatal(err)
	}
	g := s.Grad(l, w)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	grad, err := g[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(grad))
	for i, v := range grad {
		out[i] = float64(v)
	}
	return value, out
}

func (f fixture) labelTensor(s *torchbind.Scope) *torchbind.Tensor {
	return s.FromInt64(f.labels, "cpu", nImages)
}

func float32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// checkAgrees compares torch's value and gradient with the hand ones: the
// value to a relative 1e-5, the gradient's direction to a cosine of
// 1 - 1e-6 and each entry to 1e-4 of the gradient's largest.
func checkAgrees(t *testing.T, value, hand float64, grad, handGrad []float64) {
	t.Helper()
	if math.Abs(value-hand) > 1e-5*max(1, math.Abs(hand)) {
		t.Errorf("loss %.8g, by hand %.8g", value, hand)
	}
	if cos := cosine(grad, handGrad); !(cos > 1-1e-6) {
		t.Errorf("gradient's cosine with the hand gradient: %v\ngot  %v\nhand %v", cos, grad, handGrad)
	}
	if d, scale := maxAbsDiff(grad, handGrad), maxAbs(handGrad); !(d <= 1e-4*scale) {
		t.Errorf("gradient differs from the hand one by up to %g (largest entry %g)", d, scale)
	}
}

func cosine(a, b []float64) float64 {
	dot, na, nb := 0.0, 0.0, 0.0
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	return dot / math.Sqrt(na*nb)
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

func maxAbs(a []float64) float64 {
	m := 0.0
	for _, v := range a {
		m = max(m, math.Abs(v))
	}
	return m
}

// TestMACER checks MACER's loss on a batch where one image is kept by the
// robustness loss, one is dropped for a wrong top class and one by the
// hinge.
func TestMACER(t *testing.T) {
	f := newFixture(13, 1)
	p := MACER{Sigma: 0.25, Lambda: 12, Gamma: 0.6, Beta: 2}
	hand, n := f.handMACER(p, f.w)
	if n.kept == 0 || n.wrongTop == 0 || n.hinged == 0 {
		t.Fatalf("the fixture does not exercise every case: %+v", n)
	}
	value, grad := f.torchLoss(t, [][][]float64{f.inputs}, func(s *torchbind.Scope, l []*torchbind.Tensor) *torchbind.Tensor {
		return p.Loss(s, l[0], f.labelTensor(s))
	})
	handGrad := numericGrad(func(w []float64) float64 { v, _ := f.handMACER(p, w); return v }, f.w)
	checkAgrees(t, value, hand, grad, handGrad)
}

func TestConsistency(t *testing.T) {
	f := newFixture(5, 1)
	const lambda, eta = 10, 0.5
	value, grad := f.torchLoss(t, [][][]float64{f.inputs}, func(s *torchbind.Scope, l []*torchbind.Tensor) *torchbind.Tensor {
		return Consistency(s, l[0], f.labelTensor(s), lambda, eta)
	})
	hand := f.handConsistency(lambda, eta, f.w)
	handGrad := numericGrad(func(w []float64) float64 { return f.handConsistency(lambda, eta, w) }, f.w)
	checkAgrees(t, value, hand, grad, handGrad)
}

// TestSmoothMix checks SmoothMix's loss on a batch where the indicator
// drops an image, and that the gradient flows through the mixup target as
// in the reference: the hand gradient with a detached target is clearly
// another one.
func TestSmoothMix(t *testing.T) {
	f := newFixture(15, 1)
	mixed := newFixture(16, 1).inputs
	lam := []float64{0.1, 0.45, 0.3, 0.2}
	const weight = 0.8
	wrong := 0
	for b, copies := range f.logits(f.w, f.inputs) {
		if argmax(meanSoftmax(copies, 1)) != int(f.labels[b]) {
			wrong++
		}
	}
	if wrong == 0 || wrong == nImages {
		t.Fatalf("the fixture's indicator is %d of %d images off: want some but not all", wrong, nImages)
	}
	value, grad := f.torchLoss(t, [][][]float64{f.inputs, mixed}, func(s *torchbind.Scope, l []*torchbind.Tensor) *torchbind.Tensor {
		return SmoothMix(s, l[0], l[1], f.labelTensor(s), s.FromFloat32(float32s(lam), "cpu", nImages), weight)
	})
	hand := f.handSmoothMix(mixed, lam, weight, f.w, nil)
	handGrad := numericGrad(func(w []float64) float64 { return f.handSmoothMix(mixed, lam, weight, w, nil) }, f.w)
	checkAgrees(t, value, hand, grad, handGrad)
	detached := numericGrad(func(w []float64) float64 { return f.handSmoothMix(mixed, lam, weight, w, f.w) }, f.w)
	if d := maxAbsDiff(detached, handGrad); !(d > 1e-2*maxAbs(handGrad)) {
		t.Errorf("a detached target changes the gradient by only %g: the fixture cannot tell", d)
	}
}

// TestBadLogits: logits that are not [B, m, K] are an error, not a panic.
func TestBadLogits(t *testing.T) {
	cases := map[string]func(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor{
		"macer": func(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor {
			return MACER{Sigma: 1, Gamma: 1, Beta: 1}.Loss(s, logits, labels)
		},
		"consistency": func(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor {
			return Consistency(s, logits, labels, 1, 1)
		},
		"smoothmix": func(s *torchbind.Scope, logits, labels *torchbind.Tensor) *torchbind.Tensor {
			return SmoothMix(s, logits, logits, labels, s.FromFloat32([]float32{0, 0}, "cpu", 2), 1)
		},
	}
	for name, loss := range cases {
		s := torchbind.NewScope()
		labels := s.FromInt64([]int64{0, 1}, "cpu", 2)
		if loss(s, s.FromFloat32(make([]float32, 6), "cpu", 2, 3), labels) != nil || s.Err() == nil {
			t.Errorf("%s: [2, 3] logits: no error", name)
		}
		s.Close()
	}
	s := torchbind.NewScope()
	defer s.Close()
	one := MACER{Sigma: 1, Gamma: 1, Beta: 1}.Loss(s, s.FromFloat32(make([]float32, 2), "cpu", 2, 1, 1), s.FromInt64([]int64{0, 0}, "cpu", 2))
	if one != nil || s.Err() == nil {
		t.Error("MACER with one class: no error")
	}
}
