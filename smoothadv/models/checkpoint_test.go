package models

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/torchbind"
)

// python is the Debian interpreter that has torch (make deps installs it);
// the python3 first on PATH may not.
var python = testenv.Python()

// templates is where `make models` exported the architectures.
var templates = testenv.ModelsDir()

// tolerance bounds the logit differences between libtorch driven from Go and
// PyTorch.
const tolerance = 1e-4

var interopArchs = []string{"cifar_resnet20", "cifar_resnet110", "resnet50"}

// interop runs testdata/interop.py (write or check) on dir.
func interop(t *testing.T, mode, dir string) []byte {
	t.Helper()
	cmd := exec.Command(python, "testdata/interop.py", mode, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("interop.py %s (needs %s with torch: make deps): %v\n%s", mode, python, err, stderr.Bytes())
	}
	return out
}

// golden is an input batch and PyTorch's logits for it, as interop.py writes
// them.
type golden struct {
	Input      string  `json:"input"`
	InputShape []int64 `json:"input_shape"`
	Logits     string  `json:"logits"`
}

type fixtureManifest struct {
	Archs  map[string]golden `json:"archs"`
	Center golden            `json:"center"`
	MACER  golden            `json:"macer"`
	Marker string            `json:"marker"`
}

func writeFixtures(t *testing.T, dir string) fixtureManifest {
	t.Helper()
	interop(t, "write", dir)
	var m fixtureManifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readF32 and writeF32 handle the little-endian float32 files that
// interop.py reads and writes.
func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	if err := binary.Read(bytes.NewReader(b), binary.LittleEndian, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeF32(t *testing.T, path string, v []float32) {
	t.Helper()
	b, err := binary.Append(nil, binary.LittleEndian, v)
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// logits runs m in eval mode on the golden input.
func logits(t *testing.T, m *Model, dir string, g golden) []float32 {
	t.Helper()
	if err := m.Train(false); err != nil {
		t.Fatal(err)
	}
	s := torchbind.NewScope()
	defer s.Close()
	y := m.Infer(s, s.FromFloat32(readF32(t, filepath.Join(dir, g.Input)), m.Device(), g.InputShape...))
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	out, err := y.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func maxAbsDiff(t *testing.T, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d logits, want %d", len(got), len(want))
	}
	d := 0.0
	for i := range got {
		d = max(d, math.Abs(float64(got[i])-float64(want[i])))
	}
	return d
}

// TestReferenceCheckpoints checks both directions against PyTorch: the
// reference's checkpoints (legacy and zip format) load here and give
// PyTorch's logits, and checkpoints saved here load in the reference's way
// (torch.load, load_state_dict, SGD.load_state_dict) and give ours.
func TestReferenceCheckpoints(t *testing.T) {
	dir := t.TempDir()
	fx := writeFixtures(t, dir)
	opt := Options{Dir: templates}
	loaded := map[string]*Model{}
	t.Cleanup(func() {
		for _, m := range loaded {
			m.Close()
		}
	})

	for _, arch := range interopArchs {
		for _, format := range []string{"legacy", "zip"} {
			path := filepath.Join(dir, arch+"_"+format+".pth.tar")
			m, err := Load(path, opt)
			if err != nil {
				t.Fatalf("%s %s: %v", arch, format, err)
			}
			if m.Meta.Arch != arch || m.Meta.Epoch != 7 || m.Meta.Normalization != inputlayer.Normalize {
				t.Errorf("%s %s: meta %+v", arch, format, m.Meta)
			}
			g := fx.Archs[arch]
			d := maxAbsDiff(t, logits(t, m, dir, g), readF32(t, filepath.Join(dir, g.Logits)))
			t.Logf("%s %s: PyTorch -> Go logits max abs diff %.3g", arch, format, d)
			if d > tolerance {
				t.Errorf("%s %s: logits differ from PyTorch's by %g", arch, format, d)
			}
			if format == "legacy" {
				m.Close()
			} else {
				loaded[arch] = m
			}
		}
	}

	t.Run("center", func(t *testing.T) {
		path := filepath.Join(dir, "center_zip.pth.tar")
		want := readF32(t, filepath.Join(dir, fx.Center.Logits))
		for _, kind := range []string{inputlayer.Center, inputlayer.Normalize} {
			m, err := Load(path, Options{Dir: templates, Normalization: kind})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Meta.Normalization != kind {
				t.Errorf("meta says %s, want %s", m.Meta.Normalization, kind)
			}
			d := maxAbsDiff(t, logits(t, m, dir, fx.Center), want)
			t.Logf("InputCenterLayer net loaded as %s: max abs diff %.3g", kind, d)
			if kind == inputlayer.Center && d > tolerance {
				t.Errorf("center: logits differ from PyTorch's by %g", d)
			}
			if kind == inputlayer.Center { // what smoothadv import does
				imported := filepath.Join(t.TempDir(), "center.pt")
				if err := m.Save(imported); err != nil {
					t.Fatal(err)
				}
				back, err := Load(imported, Options{Dir: templates})
				if err != nil {
					t.Fatal(err)
				}
				defer back.Close()
				if d := maxAbsDiff(t, logits(t, back, dir, fx.Center), want); d > tolerance || back.Meta.Normalization != inputlayer.Center {
					t.Errorf("imported as TorchScript: %s input layer, logits differ by %g", back.Meta.Normalization, d)
				}
			}
			if kind == inputlayer.Normalize && d < 0.1 {
				t.Errorf("the wrong input layer changes the logits by only %g", d)
			}
		}
	})

	t.Run("macer", func(t *testing.T) {
		want := readF32(t, filepath.Join(dir, fx.MACER.Logits))
		for _, format := range []string{"legacy", "zip"} {
			path := filepath.Join(dir, "macer_"+format+".pth.tar")
			if _, err := Load(path, Options{Dir: templates}); !errors.Is(err, ErrNoArch) {
				t.Errorf("%s without an architecture: %v, want ErrNoArch", format, err)
			}
			m, err := Load(path, Options{Dir: templates, Arch: "cifar_resnet20"})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if m.Meta.Arch != "cifar_resnet20" || m.Meta.Normalization != inputlayer.None || m.Meta.Epoch != 440 {
				t.Errorf("%s: meta %+v, want cifar_resnet20, no input layer, epoch 440", format, m.Meta)
			}
			d := maxAbsDiff(t, logits(t, m, dir, fx.MACER), want)
			t.Logf("MACER %s: PyTorch -> Go logits max abs diff %.3g", format, d)
			if d > tolerance {
				t.Errorf("MACER %s: logits differ from PyTorch's by %g", format, d)
			}
		}
		// Behind NormalizeLayer the net sees other inputs; back to none, its own.
		m, err := Load(filepath.Join(dir, "macer_zip.pth.tar"), Options{Dir: templates, Arch: "cifar_resnet20", Normalization: inputlayer.Normalize})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if d := maxAbsDiff(t, logits(t, m, dir, fx.MACER), want); d < 0.1 {
			t.Errorf("NormalizeLayer changes the MACER net's logits by only %g", d)
		}
		if err := m.SetNormalization(inputlayer.None); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(t, logits(t, m, dir, fx.MACER), want); d > tolerance {
			t.Errorf("switched back to no input layer: logits differ from PyTorch's by %g", d)
		}
	})

	t.Run("bad files", func(t *testing.T) {
		truncated := filepath.Join(t.TempDir(), "truncated.pth.tar")
		b, err := os.ReadFile(filepath.Join(dir, "cifar_resnet20_legacy.pth.tar"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			file, arch, want string
		}{
			{"cifar_resnet20_zip.pth.tar", "cifar_resnet110", "is a cifar_resnet20 checkpoint, not cifar_resnet110"},
			{"claims110.pth.tar", "", `state dict does not match the model: missing "1.layer1.3.conv1.weight"`},
			{"fc100.pth.tar", "", `"1.fc.weight": checkpoint has float32 [100 64], model wants float32 [10 64]`},
			{"vgg16.pth.tar", "", `unknown architecture "vgg16"`},
			{"evil_legacy.pth.tar", "", "refusing global posix.system"},
			{"evil_zip.pth.tar", "", "refusing global posix.system"},
			{"evil.pkl", "", "neither a TorchScript archive nor a torch.save checkpoint"},
			{truncated, "", "unexpected EOF"},
		} {
			path := c.file
			if !filepath.IsAbs(path) {
				path = filepath.Join(dir, path)
			}
			m, err := Load(path, Options{Dir: templates, Arch: c.arch})
			if err == nil {
				m.Close()
				t.Errorf("%s loaded", c.file)
				continue
			}
			t.Logf("%s: %v", filepath.Base(c.file), err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q does not say %q", c.file, err, c.want)
			}
		}
		if _, err := os.Stat(fx.Marker); err == nil {
			t.Errorf("a malicious pickle ran its command")
		}
	})

	t.Run("save", func(t *testing.T) { testSave(t, dir, fx, loaded) })
}

// goCase is one checkpoint saved here, for interop.py check.
type goCase struct {
	Name       string  `json:"name"`
	Path       string  `json:"path"`
	Input      string  `json:"input"`
	InputShape []int64 `json:"input_shape"`
	Logits     string  `json:"logits"`
	Original   string  `json:"original,omitempty"`
}

// pyResult is what PyTorch saw in a checkpoint saved here.
type pyResult struct {
	Keys            []string          `json:"keys"`
	Types           map[string]string `json:"types"`
	Devices         []string          `json:"devices"`
	KeyOrderMatches bool              `json:"key_order_matches"`
	MaxAbsDiff      float64           `json:"max_abs_diff"`
	Meta            Meta              `json:"meta"`
	SGD             *struct {
		LR, Momentum, Dampening float64
		WeightDecay             float64 `json:"weight_decay"`
		Nesterov                bool
	} `json:"sgd"`
	MomentumBuffers    int      `json:"momentum_buffers"`
	MomentumMaxAbsDiff *float64 `json:"momentum_max_abs_diff"`
}

// pythonCheck has PyTorch load the checkpoints of cases, listed in
// dir/go.json, and returns what it saw in each.
func pythonCheck(t *testing.T, dir string, cases []goCase) map[string]pyResult {
	t.Helper()
	b, err := json.Marshal(cases)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "go.json"), b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	var results map[string]pyResult
	if err := json.Unmarshal(interop(t, "check", dir), &results); err != nil {
		t.Fatal(err)
	}
	return results
}

// testSave saves the reference checkpoints loaded above, and a fresh model
// behind InputCenterLayer, and has PyTorch load them the reference's way.
func testSave(t *testing.T, dir string, fx fixtureManifest, loaded map[string]*Model) {
	out := t.TempDir()
	var cases []goCase
	save := func(name string, m *Model, epoch int, o *OptimizerState, original string) {
		g := fx.Archs[m.Meta.Arch]
		c := goCase{Name: name, Path: filepath.Join(out, name+".pth.tar"), Input: filepath.Join(dir, g.Input),
			InputShape: g.InputShape, Logits: filepath.Join(out, name+".logits.f32"), Original: original}
		if err := SaveCheckpoint(c.Path, m, epoch, o); err != nil {
			t.Fatal(err)
		}
		want := logits(t, m, dir, g)
		writeF32(t, c.Logits, want)
		cases = append(cases, c)

		// And back into Go: same logits, same metadata.
		back, err := Load(c.Path, Options{Dir: templates})
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		if d := maxAbsDiff(t, logits(t, back, dir, g), want); d != 0 {
			t.Errorf("%s: reloaded in Go, logits differ by %g", name, d)
		}
		saved := m.Meta
		saved.Epoch = epoch
		if !reflect.DeepEqual(back.Meta, saved) {
			t.Errorf("%s: reloaded meta %+v, saved %+v", name, back.Meta, saved)
		}
	}

	for _, arch := range interopArchs {
		original := filepath.Join(dir, arch+"_legacy.pth.tar")
		o, err := LoadOptimizerState(original, loaded[arch])
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		if arch == "resnet50" {
			original = "" // no momentum buffers to compare
		}
		save(arch, loaded[arch], 8, o, original)
	}
	fresh, err := New("cifar_resnet110", 3, Options{Dir: templates, Normalization: inputlayer.Center})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	fresh.Meta.NoiseSD = 0.25
	save("fresh_center", fresh, 1, nil, "")

	results := pythonCheck(t, out, cases)
	for _, c := range cases {
		r, ok := results[c.Name]
		if !ok {
			t.Fatalf("%s: no result from PyTorch", c.Name)
		}
		t.Logf("%s: Go -> PyTorch logits max abs diff %.3g", c.Name, r.MaxAbsDiff)
		if r.MaxAbsDiff > tolerance {
			t.Errorf("%s: PyTorch's logits differ from Go's by %g", c.Name, r.MaxAbsDiff)
		}
		wantKeys := []string{"epoch", "arch", "state_dict", "optimizer", "normalization", "noise_sd", "means", "sds"}
		wantTypes := map[string]string{"epoch": "int", "arch": "str", "state_dict": "dict", "optimizer": "dict",
			"normalization": "str", "noise_sd": "float", "means": "list", "sds": "list"}
		if c.Name == "fresh_center" {
			wantKeys = slices.Delete(wantKeys, 3, 4)
			delete(wantTypes, "optimizer")
		}
		if !slices.Equal(r.Keys, wantKeys) || !maps.Equal(r.Types, wantTypes) {
			t.Errorf("%s: PyTorch sees keys %v of types %v", c.Name, r.Keys, r.Types)
		}
		if !slices.Equal(r.Devices, []string{"cpu"}) || !r.KeyOrderMatches {
			t.Errorf("%s: tensors on %v; key order as model.state_dict(): %v", c.Name, r.Devices, r.KeyOrderMatches)
		}
		switch {
		case c.Name == "fresh_center":
			if r.Meta.Normalization != inputlayer.Center || r.Meta.NoiseSD != 0.25 || r.Meta.Epoch != 1 {
				t.Errorf("%s: PyTorch sees %+v", c.Name, r.Meta)
			}
		case r.SGD == nil || r.SGD.LR != 0.1 || r.SGD.Momentum != 0.9 || r.SGD.WeightDecay != 1e-4 || r.SGD.Nesterov:
			t.Errorf("%s: SGD hyperparameters %+v", c.Name, r.SGD)
		case c.Original != "" && (r.MomentumBuffers == 0 || r.MomentumMaxAbsDiff == nil || *r.MomentumMaxAbsDiff != 0):
			t.Errorf("%s: %d momentum buffers, differing from the original's by %v", c.Name, r.MomentumBuffers, r.MomentumMaxAbsDiff)
		case c.Original == "" && r.MomentumBuffers != 0:
			t.Errorf("%s: %d momentum buffers, want none", c.Name, r.MomentumBuffers)
		}
	}
}

// TestLoadTellsFilesApart checks models.Load on TorchScript, on our own
// checkpoints and on files that are neither, damaged or not.
func TestLoadTellsFilesApart(t *testing.T) {
	dir := t.TempDir()
	opt := Options{Dir: templates}
	m, err := Load(filepath.Join(templates, "cifar_resnet20.pt"), opt)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Meta.Arch != "cifar_resnet20" {
		t.Errorf("TorchScript export loaded as %q", m.Meta.Arch)
	}
	good := filepath.Join(dir, "good.pth.tar")
	if err := SaveCheckpoint(good, m, 2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(good + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(data)
	for i := len(flipped) / 3; i < len(flipped)/3+64; i++ {
		flipped[i] ^= 0xff
	}
	var plainZip bytes.Buffer
	zw := zip.NewWriter(&plainZip)
	if w, err := zw.Create("notes/readme.txt"); err == nil {
		w.Write([]byte("hello"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"text", []byte("epoch 1, arch cifar_resnet20\n"), "neither a TorchScript archive nor a torch.save checkpoint"},
		{"truncated zip", data[:len(data)/2], "corrupt or truncated zip archive"},
		{"flipped bytes", flipped, "checksum error"},
		{"other zip", plainZip.Bytes(), "neither TorchScript code nor torch.save's data.pkl"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(path, opt)
		if err == nil {
			m.Close()
			t.Errorf("%s: loaded", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.pth.tar"), opt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}

	if _, err := LoadOptimizerState(good, m); err == nil || !strings.Contains(err.Error(), "no SGD optimizer state") {
		t.Errorf("optimizer state of a checkpoint without one: %v", err)
	}
	params, err := m.Parameters()
	if err != nil {
		t.Fatal(err)
	}
	defer torchbind.CloseAll(params)
	short := &OptimizerState{MomentumBuffers: make([]*torchbind.Tensor, len(params)-1)}
	if err := SaveCheckpoint(good, m, 3, short); err == nil || !strings.Contains(err.Error(), "momentum buffers") {
		t.Errorf("saving too few momentum buffers: %v", err)
	}
	misplaced := &OptimizerState{MomentumBuffers: make([]*torchbind.Tensor, len(params))}
	misplaced.MomentumBuffers[0] = params[1].T
	if err := SaveCheckpoint(good, m, 3, misplaced); err == nil || !strings.Contains(err.Error(), "momentum buffer 0 is") {
		t.Errorf("saving a misshapen momentum buffer: %v", err)
	}
	if back, err := Load(good, opt); err != nil || back.Meta.Epoch != 2 {
		t.Errorf("a failed save replaced the file: %v", err)
	} else {
		back.Close()
	}
}

// TestSaveCheckpointFromCUDA saves a model that lives on the GPU and has
// PyTorch load it without map_location, as the reference does.
func TestSaveCheckpointFromCUDA(t *testing.T) {
	if !torchbind.CUDAAvailable() {
		t.Skip("no CUDA device visible to libtorch")
	}
	m, err := New("cifar_resnet20", 1, Options{Dir: templates, Device: "cuda:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	dir := t.TempDir()
	g := golden{Input: "cifar_resnet20.golden.in.f32", InputShape: []int64{4, 3, 32, 32}}
	c := goCase{Name: "cuda", Path: filepath.Join(dir, "cuda.pth.tar"), Input: filepath.Join(templates, g.Input),
		InputShape: g.InputShape, Logits: filepath.Join(dir, "cuda.logits.f32")}
	if err := SaveCheckpoint(c.Path, m, 1, nil); err != nil {
		t.Fatal(err)
	}
	writeF32(t, c.Logits, logits(t, m, templates, g))
	r := pythonCheck(t, dir, []goCase{c})["cuda"]
	// The GPU's convolutions may run in TF32, so the logits agree less closely.
	if !slices.Equal(r.Devices, []string{"cpu"}) || r.MaxAbsDiff > 1e-2 {
		t.Errorf("PyTorch loads tensors on %v, logits differ by %g", r.Devices, r.MaxAbsDiff)
	}
}
