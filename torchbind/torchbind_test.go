package torchbind

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

// modelsDir holds the TorchScript exports and PyTorch golden logits that
// `make models` writes (smoothadv/models/export_models.py).
var modelsDir = testenv.ModelsDir()

type golden struct {
	Model       string  `json:"model"`
	Input       string  `json:"input"`
	InputShape  []int64 `json:"input_shape"`
	Logits      string  `json:"logits"`
	LogitsShape []int64 `json:"logits_shape"`
	Parameters  int     `json:"parameters"`
	Buffers     int     `json:"buffers"`
}

// exports is a folder of models exported by export_models.py, with the
// logits the exporting PyTorch computed for them.
type exports struct {
	Torch  string            `json:"torch"`
	Models map[string]golden `json:"models"`
}

func loadExports(t testing.TB, dir string) exports {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("exported models missing (run make models): %v", err)
	}
	var m exports
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func loadManifest(t testing.TB) map[string]golden { return loadExports(t, modelsDir).Models }

func readF32(t testing.TB, name string) []float32 { return readF32In(t, modelsDir, name) }

func readF32In(t testing.TB, dir, name string) []float32 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func loadModel(t testing.TB, arch string) *Module {
	t.Helper()
	m, err := LoadModule(filepath.Join(modelsDir, arch+".pt"), "cpu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// TestForwardMatchesPyTorch compares Go-driven libtorch logits with the
// logits PyTorch computed for the same weights and inputs at export.
func TestForwardMatchesPyTorch(t *testing.T) { forwardMatchesPyTorch(t, modelsDir) }

// TestModelsFromAnotherPyTorch runs the models another PyTorch exported
// ($SMOOTHADV_CROSS_MODELS: make test-torch hands Debian's 1.13 exports to
// the 2.x build and the 2.x exports to Debian's) against that PyTorch's
// logits: TorchScript travels between the versions labs have.
func TestModelsFromAnotherPyTorch(t *testing.T) {
	dir := os.Getenv("SMOOTHADV_CROSS_MODELS")
	if dir == "" {
		t.Skip("SMOOTHADV_CROSS_MODELS names no other PyTorch's exports (make test-torch sets it)")
	}
	t.Logf("models exported by PyTorch %s, run on libtorch %s", loadExports(t, dir).Torch, Version())
	forwardMatchesPyTorch(t, dir)
}

func forwardMatchesPyTorch(t *testing.T, dir string) {
	for arch, g := range loadExports(t, dir).Models {
		t.Run(arch, func(t *testing.T) {
			m, err := LoadModule(filepath.Join(dir, arch+".pt"), "cpu")
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := m.Train(false); err != nil {
				t.Fatal(err)
			}
			s := NewScope()
			defer s.Close()
			want := readF32In(t, dir, g.Logits)
			fast, err := m.OptimizedForInference()
			if err != nil {
				t.Fatal(err)
			}
			defer fast.Close()
			for layout, mod := range map[string]*Module{"scripted": m, "optimized for inference": fast} {
				x := s.FromFloat32(readF32In(t, dir, g.Input), "cpu", g.InputShape...)
				got, err := mod.Infer(s, x).Float32s()
				if err != nil || s.Err() != nil {
					t.Fatal(err, s.Err())
				}
				if len(got) != len(want) {
					t.Fatalf("got %d logits, want %d", len(got), len(want))
				}
				d := maxAbsDiff(got, want)
				t.Logf("%s (%s): max |go - pytorch| = %.3g over %d logits", arch, layout, d, len(got))
				if d > 1e-4 {
					t.Errorf("%s: max abs diff %.3g > 1e-4", layout, d)
				}
			}
		})
	}
}

func TestMetadataAndParameters(t *testing.T) {
	g := loadManifest(t)["cifar_resnet20"]
	m := loadModel(t, "cifar_resnet20")
	var meta struct {
		Arch          string `json:"arch"`
		Normalization string `json:"normalization"`
	}
	if err := json.Unmarshal(m.Meta(), &meta); err != nil {
		t.Fatalf("metadata %q: %v", m.Meta(), err)
	}
	if meta.Arch != "cifar_resnet20" || meta.Normalization != "normalize" {
		t.Errorf("metadata = %+v", meta)
	}
	ps, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(ps)
	bs, err := m.Buffers()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(bs)
	if len(ps) != g.Parameters || len(bs) != g.Buffers {
		t.Errorf("%d parameters and %d buffers, PyTorch counted %d and %d", len(ps), len(bs), g.Parameters, g.Buffers)
	}
	// The reference's state_dict layout: NormalizeLayer holds nothing.
	if ps[0].Name != "1.conv1.weight" {
		t.Errorf("first parameter %q, want 1.conv1.weight", ps[0].Name)
	}
	if shape := ps[0].T.Shape(); len(shape) != 4 || shape[0] != 16 || shape[1] != 3 {
		t.Errorf("1.conv1.weight shape %v", shape)
	}
	var sawRunningMean bool
	for _, b := range bs {
		sawRunningMean = sawRunningMean || b.Name == "1.layer1.0.bn1.running_mean"
	}
	if !sawRunningMean {
		t.Error("no buffer 1.layer1.0.bn1.running_mean")
	}
}

func TestResNet50Keys(t *testing.T) {
	m := loadModel(t, "resnet50")
	ps, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer CloseAll(ps)
	for _, p := range ps {
		if !strings.HasPrefix(p.Name, "1.module.") {
			t.Fatalf("resnet50 parameter %q lacks the DataParallel prefix 1.module.", p.Name)
		}
	}
}

func TestBadModelFiles(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(filepath.Join(modelsDir, "fashion_cnn.pt"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		"missing":   filepath.Join(dir, "nope.pt"),
		"empty":     write("empty.pt", nil),
		"truncated": write("truncated.pt", good[:len(good)/2]),
		"text":      write("text.pt", []byte("this is not a model\n")),
		"directory": dir,
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := LoadModule(path, "cpu")
			if err == nil {
				m.Close()
				t.Fatal("loaded without error")
			}
			t.Logf("%v", err)
		})
	}
}

func TestShapeMismatchIsAnError(t *testing.T) {
	m := loadModel(t, "fashion_cnn")
	s := NewScope()
	defer s.Close()
	x := s.Zeros(Float32, "cpu", 2, 3, 32, 32) // CIFAR-shaped input to a 1x28x28 model
	if y := m.Infer(s, x); s.Err() == nil {
		t.Fatal("forward on a wrong-shaped input gave no error")
	} else if _, err := y.Float32s(); err != s.Err() {
		t.Errorf("its result reports %v, want the scope's error", err)
	}
	t.Logf("%v", s.Err())
	// The error is sticky and later operations are no-ops.
	before := s.Len()
	if z := s.Add(x, x); s.Len() != before {
		t.Error("an operation after an error made a tensor")
	} else if _, err := z.Float32s(); err != s.Err() {
		t.Errorf("an operation after an error reports %v, want the first error", err)
	}
}

func TestUnknownDeviceIsAnError(t *testing.T) {
	if _, err := LoadModule(filepath.Join(modelsDir, "fashion_cnn.pt"), "tpu:7"); err == nil {
		t.Fatal("no error for device tpu:7")
	}
	if _, err := NewGenerator("nonsense", 1); err == nil {
		t.Fatal("no error for device nonsense")
	}
}

// TestUseCores: concurrent passes times their intra-op threads never exceed
// the cores, and each pass has at least one thread.
func TestUseCores(t *testing.T) {
	before := NumThreads()
	defer SetNumThreads(before)
	cores := runtime.NumCPU()
	for _, c := range []int{1, 2, cores, 2 * cores} {
		if err := UseCores(c); err != nil {
			t.Fatal(err)
		}
		n := NumThreads()
		if n < 1 || (c <= cores && n*c > cores) || (c == 1 && n != cores) {
			t.Errorf("%d concurrent passes on %d cores: %d threads each", c, cores, n)
		}
	}
}

// TestFailedScopeReportsItsError: after an operation fails, the tensors the
// scope returns and the scopes they are handed to report libtorch's message,
// not a nil tensor, whatever is called next.
func TestFailedScopeReportsItsError(t *testing.T) {
	s := NewScope()
	defer s.Close()
	x := s.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, "cpu", 2, 3)
	bad := s.Reshape(x, 4, 4) // 6 values are no 4x4
	first := s.Err()
	if first == nil {
		t.Fatal("reshaping 6 values to 4x4 did not fail")
	}
	if strings.Contains(first.Error(), "nil or closed") {
		t.Fatalf("the failure says %q, not libtorch's reason", first)
	}
	_, itemErr := s.Max(s.Neg(bad)).Item()
	_, valuesErr := bad.Float32s()
	other := NewScope()
	defer other.Close()
	other.Add(bad, bad)
	for what, err := range map[string]error{"Item after more operations": itemErr, "Float32s": valuesErr, "another scope": other.Err()} {
		if err != first {
			t.Errorf("%s: %v, want the scope's first error %v", what, err, first)
		}
	}
}

// TestUncompilableModelSaysSoInOneLine: a TorchScript archive whose code
// does not compile is refused in one line that says so, not with a page of
// TorchScript's serialized code.
func TestUncompilableModelSaysSoInOneLine(t *testing.T) {
	r, err := zip.OpenReader(filepath.Join(modelsDir, "fashion_cnn.pt"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	path := filepath.Join(t.TempDir(), "bad.pt")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := zip.NewWriter(f)
	broken := false
	for _, entry := range r.File {
		b, err := readZipEntry(entry)
		if err != nil {
			t.Fatal(err)
		}
		if !broken && strings.HasSuffix(entry.Name, ".py") && bytes.Contains(b, []byte("def forward(")) {
			b, broken = bytes.Replace(b, []byte("def forward("), []byte("def forward(("), 1), true
		}
		out, err := w.CreateHeader(&zip.FileHeader{Name: entry.Name, Method: zip.Store})
		if err == nil {
			_, err = out.Write(b)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !broken {
		t.Fatal("no forward to break")
	}
	_, err = LoadModule(path, "cpu")
	if err == nil || !strings.Contains(err.Error(), "its code does not compile in libtorch") || strings.Contains(err.Error(), "\n") {
		t.Errorf("loading a model whose code does not compile: %v", err)
	}
}

func readZipEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
