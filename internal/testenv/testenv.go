// Package testenv tells tests where the build put what they compare with:
// the python whose torch made the fixtures (make's PY) and the models it
// exported. Both follow the build, so a test run against a pip PyTorch
// compares with that PyTorch, not with Debian's.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Python is $SMOOTHADV_PYTHON (make exports its PY), else Debian's python3,
// which make deps gives torch; the python3 first on PATH may have none.
func Python() string {
	if p := os.Getenv("SMOOTHADV_PYTHON"); p != "" {
		return p
	}
	return "/usr/bin/python3"
}

// ModelsDir is $SMOOTHADV_MODELS (make exports its build's), else the
// repository's build/models, as an absolute path.
func ModelsDir() string {
	if d := os.Getenv("SMOOTHADV_MODELS"); d != "" {
		if abs, err := filepath.Abs(d); err == nil {
			return abs
		}
		return d
	}
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..", "build", "models")
}

// Model is the path of an exported architecture, ModelsDir()/arch.pt.
func Model(arch string) string { return filepath.Join(ModelsDir(), arch+".pt") }

// SkipBF16UnderISACap skips a bf16 test where oneDNN is held below the
// CPU's instruction set (DNNL_MAX_CPU_ISA=AVX2 on an AVX-512 machine, as
// make test's second pass runs): PyTorch still sees the CPU's bf16 and asks
// the capped oneDNN for a bf16 convolution it cannot make ("could not create
// a primitive descriptor iterator"), while a real AVX2 CPU takes another path.
func SkipBF16UnderISACap(t interface{ Skipf(string, ...any) }) {
	isa := strings.ToUpper(os.Getenv("DNNL_MAX_CPU_ISA"))
	if isa != "" && isa != "ALL" && !strings.Contains(isa, "AVX512") && !strings.Contains(isa, "AMX") {
		t.Skipf("bf16 on CPU under DNNL_MAX_CPU_ISA=%s: the capped oneDNN has no bf16 convolution for what PyTorch asks", isa)
	}
}

// FashionMNISTDir is where Debian's dataset-fashion-mnist puts the data
// (make deps installs it), as package data reads it by default.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// NeedFashionMNIST skips a test on a machine without Fashion-MNIST.
func NeedFashionMNIST(t interface {
	Helper()
	Skipf(string, ...any)
}) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("no Fashion-MNIST (make deps installs Debian's dataset-fashion-mnist): %v", err)
	}
}
