package torchbind

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// fixedBatch is a deterministic Fashion-MNIST-shaped batch with labels.
func fixedBatch(t testing.TB, s *Scope, n int) (*Tensor, *Tensor) {
	t.Helper()
	g, err := NewGenerator("cpu", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	x := s.Rand(g, "cpu", int64(n), 1, 28, 28)
	labels := make([]int64, n)
	for i := range labels {
		labels[i] = int64(i % 10)
	}
	y := s.FromInt64(labels, "cpu", int64(n))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return x, y
}

// sgdStep is plain SGD (no momentum) written with the in-place operations.
func sgdStep(t testing.TB, s *Scope, params []Named, lr float64) {
	t.Helper()
	for _, p := range params {
		g := s.GradOf(p.T)
		if g == nil {
			t.Fatalf("%s has no gradient after backward", p.Name)
		}
		if err := p.T.AddInPlace(g, -lr); err != nil {
			t.Fatal(err)
		}
		if err := p.T.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSGDStepsLowerLossAndChangeParameters(t *testing.T) {
	m := loadModel(t, "fashion_cnn")
	if err := m.Train(true); err != nil {
		t.Fatal(err)
	}
	params, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(params)
	before, err := params[0].T.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	s := NewScope()
	defer s.Close()
	x, y := fixedBatch(t, s, 32)
	var losses []float64
	for step := 0; step < 5; step++ {
		loss := s.CrossEntropy(m.Forward(s, x), y, ReduceMean)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		v, err := loss.Item()
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, v)
		if err := loss.Backward(); err != nil {
			t.Fatal(err)
		}
		sgdStep(t, s, params, 0.1)
	}
	t.Logf("losses %v", losses)
	if !(losses[len(losses)-1] < losses[0]) {
		t.Errorf("loss did not fall: %v", losses)
	}
	after, err := params[0].T.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(before, after) == 0 {
		t.Error("parameters did not change")
	}
}

func TestTrainModeUpdatesBatchNormStatistics(t *testing.T) {
	m := loadModel(t, "fashion_cnn")
	bufs, err := m.Buffers()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(bufs)
	var mean *Tensor
	for _, b := range bufs {
		if b.Name == "1.bn1.running_mean" {
			mean = b.T
		}
	}
	if mean == nil {
		t.Fatal("no 1.bn1.running_mean")
	}
	before, _ := mean.Float32s()
	s := NewScope()
	defer s.Close()
	x, _ := fixedBatch(t, s, 8)
	for _, train := range []bool{false, true} {
		if err := m.Train(train); err != nil {
			t.Fatal(err)
		}
		m.Infer(s, x)
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		now, _ := mean.Float32s()
		changed := maxAbsDiff(before, now) > 0
		if changed != train {
			t.Errorf("train=%v: running mean changed=%v", train, changed)
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	m := loadModel(t, "cifar_resnet20")
	path := filepath.Join(t.TempDir(), "copy.pt")
	meta := []byte(`{"arch":"cifar_resnet20","noise_sd":0.25}`)
	if err := m.Save(path, meta); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadModule(path, "cpu")
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if string(m2.Meta()) != string(meta) {
		t.Errorf("metadata %q, want %q", m2.Meta(), meta)
	}
	for _, kind := range []string{"parameters", "buffers"} {
		get := func(m *Module) []Named {
			var ns []Named
			var err error
			if kind == "parameters" {
				ns, err = m.Parameters()
			} else {
				ns, err = m.Buffers()
			}
			if err != nil {
				t.Fatal(err)
			}
			return ns
		}
		a, b := get(m), get(m2)
		defer CloseAll(a)
		defer CloseAll(b)
		if len(a) != len(b) {
			t.Fatalf("%s: %d before, %d after", kind, len(a), len(b))
		}
		for i := range a {
			if a[i].Name != b[i].Name {
				t.Fatalf("%s %d: %q became %q", kind, i, a[i].Name, b[i].Name)
			}
			s := NewScope()
			va, vb := s.ToFloat32(a[i].T), s.ToFloat32(b[i].T)
			fa, _ := va.Float32s()
			fb, _ := vb.Float32s()
			s.Close()
			if len(fa) != len(fb) || maxAbsDiff(fa, fb) != 0 {
				t.Fatalf("%s %s differs after save and load", kind, a[i].Name)
			}
		}
	}
}

// TestGradMatchesAnalytic checks autograd on f(x) = sum(x^2 * w): df/dx = 2xw.
func TestGradMatchesAnalytic(t *testing.T) {
	s := NewScope()
	defer s.Close()
	xs := []float32{1, -2, 3, 0.5}
	ws := []float32{0.5, 1, -1, 2}
	x := s.FromFloat32(xs, "cpu", 4)
	w := s.FromFloat32(ws, "cpu", 4)
	if _, err := x.SetRequiresGrad(true); err != nil {
		t.Fatal(err)
	}
	f := s.Sum(s.Mul(s.Pow(x, 2), w))
	g := s.Grad(f, x)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	got, _ := g[0].Float32s()
	for i := range xs {
		if want := 2 * xs[i] * ws[i]; got[i] != want {
			t.Errorf("grad[%d] = %v, want %v", i, got[i], want)
		}
	}
}

func TestRenormAndNorms(t *testing.T) {
	s := NewScope()
	defer s.Close()
	// Two samples: norms 5 and 0.5; renorm to 1 scales only the first.
	x := s.FromFloat32([]float32{3, 4, 0.3, 0.4}, "cpu", 2, 2)
	n, _ := s.L2Norms(s.Renorm(x, 1)).Float32s()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(n[0])-1) > 1e-6 || math.Abs(float64(n[1])-0.5) > 1e-6 {
		t.Errorf("norms after renorm = %v, want [1 0.5]", n)
	}
}

func TestGroupCounts(t *testing.T) {
	s := NewScope()
	defer s.Close()
	labels := s.FromInt64([]int64{0, 2, 2, 1, 1, 1, 0}, "cpu", 7)
	c, err := s.GroupCounts(labels, []int64{3, 4}, 3).Int64s()
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 0, 2, 1, 3, 0}
	for i := range want {
		if c[i] != want[i] {
			t.Fatalf("counts = %v, want %v", c, want)
		}
	}
	bad := s.GroupCounts(labels, []int64{3, 3}, 3)
	if _, err := bad.Int64s(); err == nil || err != s.Err() {
		t.Error("group sizes that do not cover the labels gave no error")
	}
}

func TestGeneratorIsSeeded(t *testing.T) {
	draw := func(seed uint64) []float32 {
		g, err := NewGenerator("cpu", seed)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		s := NewScope()
		defer s.Close()
		v, err := s.Randn(g, 1, "cpu", 1000).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b, c := draw(1), draw(1), draw(2)
	if maxAbsDiff(a, b) != 0 {
		t.Error("same seed, different draws")
	}
	if maxAbsDiff(a, c) == 0 {
		t.Error("different seeds, same draws")
	}
	mean, sq := 0.0, 0.0
	for _, v := range a {
		mean += float64(v) / 1000
		sq += float64(v) * float64(v) / 1000
	}
	// 1000 standard normals: mean within 5 standard errors of 0, variance near 1.
	if math.Abs(mean) > 5/math.Sqrt(1000) || math.Abs(sq-1) > 0.25 {
		t.Errorf("mean %.3f, second moment %.3f", mean, sq)
	}
}

// rss is this process's resident memory in bytes (Linux).
func rss(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// TestMemoryFlatOverManyForwards runs 100,000 forward passes (10,000 with
// -short), freeing each iteration's tensors through a scope, and checks that
// resident memory does not grow with the number of passes.
func TestMemoryFlatOverManyForwards(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 10000
	}
	m := loadModel(t, "fashion_cnn")
	if err := m.Train(false); err != nil {
		t.Fatal(err)
	}
	g, err := NewGenerator("cpu", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	s := NewScope()
	defer s.Close()
	iterate := func(k int) {
		for i := 0; i < k; i++ {
			x := s.Rand(g, "cpu", 1, 1, 28, 28)
			s.Argmax(m.Infer(s, s.Add(x, s.RandnLike(x, 0.25, g))), 1)
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
	}
	iterate(n / 10) // warm up allocator caches
	runtime.GC()
	start := rss(t)
	iterate(n)
	runtime.GC()
	growth := rss(t) - start
	t.Logf("%d forward passes: resident memory grew %d KiB", n, growth/1024)
	// A leak of one small tensor per pass would add well over 20 MiB.
	if growth > 8<<20 {
		t.Errorf("resident memory grew %d MiB over %d forward passes", growth>>20, n)
	}
}
