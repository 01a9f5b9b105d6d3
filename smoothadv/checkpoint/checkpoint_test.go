package checkpoint

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

// The fixtures are written once per test run by testdata/make_fixtures.py,
// with the Debian python that has torch; tests that need them skip when it
// is missing.
var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
	fixtureSkip string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func fixtures(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		var python = testenv.Python()
		if _, err := os.Stat(python); err != nil {
			fixtureSkip = "no " + python
			return
		}
		if fixtureDir, fixtureErr = os.MkdirTemp("", "checkpoint-fixtures-"); fixtureErr != nil {
			return
		}
		out, err := exec.Command(python, "testdata/make_fixtures.py", fixtureDir).CombinedOutput()
		switch {
		case bytes.Contains(out, []byte("No module named 'torch")):
			fixtureSkip = python + " has no torch/torchvision"
		case err != nil:
			fixtureErr = fmt.Errorf("make_fixtures.py: %v\n%s", err, out)
		}
	})
	if fixtureSkip != "" {
		t.Skip(fixtureSkip)
	}
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureDir
}

// What make_fixtures.py says a case holds.
type tensorWant struct {
	Name   string
	Shape  []int64
	DType  DType
	SHA256 string
	First  []float64
}

type caseWant struct {
	Epoch     int
	Arch      string
	StateDict []tensorWant `json:"state_dict"`
	Optimizer *struct {
		LR              float64
		Momentum        float64
		WeightDecay     float64      `json:"weight_decay"`
		MomentumBuffers []tensorWant `json:"momentum_buffers"`
		Params          []int64
	}
}

func readWant(t *testing.T, dir, name string) caseWant {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var w caseWant
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

// checkTensor compares a tensor with Python's description: dtype, shape,
// the SHA-256 of its bytes and its first values, exactly.
func checkTensor(t *testing.T, what string, got *Tensor, want tensorWant) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: missing", what)
		return
	}
	if got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) {
		t.Errorf("%s: got %s %v, want %s %v", what, got.DType, got.Shape, want.DType, want.Shape)
		return
	}
	if sum := sha256.Sum256(got.Data); hex.EncodeToString(sum[:]) != want.SHA256 {
		t.Errorf("%s: data differs from what Python wrote", what)
	}
	var first []float64
	switch got.DType { // the dtype was checked above, so the accessors succeed
	case Float32:
		first = firstOf(got.Float32s())
	case Float64:
		first = firstOf(got.Float64s())
	case Int64:
		first = firstOf(got.Int64s())
	default:
		return
	}
	if len(first) != len(want.First) || (len(first) > 0 && !reflect.DeepEqual(first, want.First)) {
		t.Errorf("%s: first values %v, want %v", what, first, want.First)
	}
}

func firstOf[T float32 | float64 | int64](v []T, _ error) []float64 {
	var out []float64
	for _, x := range v[:min(3, len(v))] {
		out = append(out, float64(x))
	}
	return out
}

func TestLoadReferenceCheckpoints(t *testing.T) {
	dir := fixtures(t)
	for _, name := range []string{"cifar_resnet20", "cifar_resnet110", "resnet50", "oldids"} {
		want := readWant(t, dir, name)
		for _, format := range []string{"legacy", "zip"} {
			t.Run(name+"_"+format, func(t *testing.T) {
				c, err := Load(filepath.Join(dir, name+"_"+format+".pth.tar"))
				if err != nil {
					t.Fatal(err)
				}
				if c.Epoch != want.Epoch || c.Arch != want.Arch || len(c.Extra) != 0 {
					t.Errorf("epoch %d arch %q extra %v, want %d %q none", c.Epoch, c.Arch, c.Extra, want.Epoch, want.Arch)
				}
				if len(c.StateDict) != len(want.StateDict) {
					t.Fatalf("%d state dict entries, want %d", len(c.StateDict), len(want.StateDict))
				}
				for i, w := range want.StateDict {
					if c.StateDict[i].Name != w.Name {
						t.Fatalf("entry %d is %q, want %q", i, c.StateDict[i].Name, w.Name)
					}
					checkTensor(t, w.Name, c.StateDict[i].Tensor, w)
				}
				o, wo := c.Optimizer, want.Optimizer
				if o == nil || len(o.Groups) != 1 {
					t.Fatalf("optimizer %+v, want one SGD group", o)
				}
				g := o.Groups[0]
				if g.LR != wo.LR || g.Momentum != wo.Momentum || g.WeightDecay != wo.WeightDecay ||
					g.Dampening != 0 || g.Nesterov || !reflect.DeepEqual(g.Params, wo.Params) {
					t.Errorf("param group %+v, want lr %v momentum %v weight decay %v params %v",
						g, wo.LR, wo.Momentum, wo.WeightDecay, wo.Params)
				}
				if g.Extra["initial_lr"] != 0.1 {
					t.Errorf("initial_lr %v, want the scheduler's 0.1", g.Extra["initial_lr"])
				}
				if len(o.MomentumBuffers) != len(wo.MomentumBuffers) {
					t.Fatalf("%d momentum buffers, want %d", len(o.MomentumBuffers), len(wo.MomentumBuffers))
				}
				for i, w := range wo.MomentumBuffers {
					checkTensor(t, fmt.Sprintf("momentum buffer %d", i), o.MomentumBuffers[i], w)
				}
			})
		}
	}
}

// TestLoadMACERLayout reads MACER's checkpoints, {'net': state_dict,
// 'epoch'}: the bare net's state dict, no architecture; a file with both
// layouts' state dicts, or without an epoch, is refused.
func TestLoadMACERLayout(t *testing.T) {
	dir := fixtures(t)
	want := readWant(t, dir, "macer")
	for _, format := range []string{"legacy", "zip"} {
		c, err := Load(filepath.Join(dir, "macer_"+format+".pth.tar"))
		if err != nil {
			t.Fatal(err)
		}
		if !c.Net || c.Epoch != want.Epoch || c.Arch != "" || c.Optimizer != nil || len(c.Extra) != 0 {
			t.Errorf("%s: net %v epoch %d arch %q optimizer %v extra %v, want MACER's layout of epoch %d", format, c.Net, c.Epoch, c.Arch, c.Optimizer, c.Extra, want.Epoch)
		}
		if len(c.StateDict) != len(want.StateDict) {
			t.Fatalf("%s: %d state dict entries, want %d", format, len(c.StateDict), len(want.StateDict))
		}
		for i, w := range want.StateDict {
			if c.StateDict[i].Name != w.Name {
				t.Fatalf("%s: entry %d is %q, want %q", format, i, c.StateDict[i].Name, w.Name)
			}
			checkTensor(t, w.Name, c.StateDict[i].Tensor, w)
		}
	}
	for name, msg := range map[string]string{"netandstate": `both a "state_dict" and a "net" entry`, "netnoepoch": `no "epoch" entry`} {
		if _, err := Load(filepath.Join(dir, name+"_zip.pth.tar")); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want an error saying %q", name, err, msg)
		}
	}
}

func TestLoadViewsAndExtras(t *testing.T) {
	dir := fixtures(t)
	want := readWant(t, dir, "views")
	for _, format := range []string{"legacy", "zip"} {
		t.Run(format, func(t *testing.T) {
			c, err := Load(filepath.Join(dir, "views_"+format+".pth.tar"))
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range want.StateDict {
				if c.StateDict[i].Name != w.Name {
					t.Fatalf("entry %d is %q, want %q", i, c.StateDict[i].Name, w.Name)
				}
				checkTensor(t, w.Name, c.StateDict[i].Tensor, w)
			}
			extra := map[string]any{"best_acc": 0.5, "note": "hello", "sizes": []any{int64(1), []any{int64(2), int64(3)}}}
			if c.Optimizer != nil || !reflect.DeepEqual(c.Extra, extra) {
				t.Errorf("optimizer %v extra %#v, want nil and %#v", c.Optimizer, c.Extra, extra)
			}
		})
	}
}

// Files from before PyTorch 1.0 could hold storages that are views of
// others; make_fixtures.py writes one by hand and checks it with torch.load.
func TestLoadLegacyStorageView(t *testing.T) {
	dir := fixtures(t)
	want := readWant(t, dir, "storageview")
	c, err := Load(filepath.Join(dir, "storageview_legacy.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.StateDict) != 1 || c.StateDict[0].Name != "w" {
		t.Fatalf("state dict %v, want one entry w", c.StateDict)
	}
	checkTensor(t, "w", c.StateDict[0].Tensor, want.StateDict[0])
}

func TestLoadKeepsOtherOptimizersAsPlainValues(t *testing.T) {
	dir := fixtures(t)
	for _, format := range []string{"legacy", "zip"} {
		c, err := Load(filepath.Join(dir, "adam_"+format+".pth.tar"))
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := c.Extra["optimizer"].(map[any]any)
		if c.Optimizer != nil || !ok || raw["state"] == nil {
			t.Errorf("%s: optimizer %v, extra %v: want Adam's state kept in Extra", format, c.Optimizer, c.Extra)
		}
	}
}

func TestLoadRefusesGlobalsOffTheAllowlist(t *testing.T) {
	dir := fixtures(t)
	for _, tc := range []struct{ name, global string }{
		{"system", "posix.system"},
		{"eval", "__builtin__.eval"},
	} {
		for _, format := range []string{"legacy", "zip"} {
			_, err := Load(filepath.Join(dir, tc.name+"_"+format+".pth.tar"))
			if err == nil || !strings.Contains(err.Error(), "refusing global "+tc.global) {
				t.Errorf("%s_%s: error %v, want it to refuse %s", tc.name, format, err, tc.global)
			}
		}
	}
	// The payloads would create this file when run.
	if _, err := os.Stat(filepath.Join(dir, "pwned")); !os.IsNotExist(err) {
		t.Fatalf("a payload ran: %v", err)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := fixtures(t)
	good, err := os.ReadFile(filepath.Join(dir, "cifar_resnet20_legacy.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	goodZip, err := os.ReadFile(filepath.Join(dir, "cifar_resnet20_zip.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(filepath.Join(dir, "plainlist_zip.pth.tar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"random bytes", []byte("\x13\x37 random garbage, not a checkpoint"), "not a PyTorch checkpoint"},
		{"text", []byte("hello\n"), "not a PyTorch checkpoint"},
		{"zip without data.pkl", zipOf(t, map[string]string{"archive/version": "3\n"}), "0 top-level data.pkl"},
		{"torchscript", zipOf(t, map[string]string{"m/data.pkl": "\x80\x02N.", "m/constants.pkl": "\x80\x02).", "m/code/m.py": ""}),
			"TorchScript"},
		{"big-endian zip", zipOf(t, map[string]string{"a/data.pkl": "\x80\x02N.", "a/byteorder": "big"}), "byte order"},
		{"legacy truncated in the pickle", good[:3000], "unexpected EOF"},
		{"legacy truncated in the storages", good[:len(good)/2], "unexpected EOF"},
		{"zip truncated", goodZip[:len(goodZip)/2], "corrupt zip archive"},
		{"not a dict", plain, "not a training checkpoint"},
		{"no state_dict", zipOf(t, map[string]string{"a/data.pkl": "\x80\x02}(X\x05\x00\x00\x00epochK\x01X\x04\x00\x00\x00archX\x01\x00\x00\x00xu."}),
			`no "state_dict" entry`},
	} {
		_, err := Read(bytes.NewReader(tc.data), int64(len(tc.data)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

// zipOf builds an uncompressed zip archive, as torch.save writes them.
func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Every truncation and many single-byte corruptions of small checkpoints
// must fail cleanly or load; none may panic or hang.
func TestReadSurvivesCorruption(t *testing.T) {
	dir := fixtures(t)
	for _, format := range []string{"legacy", "zip"} {
		good, err := os.ReadFile(filepath.Join(dir, "views_"+format+".pth.tar"))
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		try := func(data []byte) {
			if _, err := Read(bytes.NewReader(data), int64(len(data))); err != nil {
				failed++
			}
		}
		for n := range len(good) {
			try(good[:n])
		}
		for i := range good {
			for _, b := range []byte{0x00, 0xff, good[i] + 1, good[i] ^ 0x80} {
				bad := bytes.Clone(good)
				bad[i] = b
				try(bad)
			}
		}
		if failed < len(good) {
			t.Errorf("%s: only %d of the corrupted files failed to load", format, failed)
		}
	}
}
