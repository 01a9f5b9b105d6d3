package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

// TestVersion: `smoothadv version` reports what the build's own PyTorch
// (make's PY, whose libtorch the shims were compiled against) says of
// itself: the version, CUDA and cuDNN, and Gloo and NCCL where the shim
// could compile them.
func TestVersion(t *testing.T) {
	const script = `import json, re, torch, torch.distributed as dist
cap = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") and hasattr(torch.backends.cpu, "get_cpu_capability") else ""
print(json.dumps({"version": re.match(r"\d+\.\d+\.\d+", torch.__version__).group(0), "cuda": torch.version.cuda or "",
    "cudnn": torch.backends.cudnn.version() if torch.version.cuda else 0,
    "nccl": dist.is_available() and dist.is_nccl_available(), "capability": cap.lower()}))`
	out, err := exec.Command(testenv.Python(), "-c", script).Output()
	if err != nil {
		t.Skipf("%s cannot report its torch: %v", testenv.Python(), err)
	}
	var py struct {
		Version, CUDA, Capability string
		CuDNN                     int
		NCCL                      bool
	}
	if err := json.Unmarshal(out, &py); err != nil {
		t.Fatalf("bad JSON %q: %v", out, err)
	}
	var buf bytes.Buffer
	if err := printVersion(&buf); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		got[strings.TrimSpace(line[:16])] = line[16:]
	}
	t.Logf("%s\npython: %+v", buf.String(), py)
	want := map[string]string{"libtorch": py.Version, "CUDA": "none", "cuDNN": "none"}
	if py.CUDA != "" {
		want["CUDA"] = py.CUDA
		want["cuDNN"] = fmt.Sprintf("%d.%d.%d", py.CuDNN/10000, py.CuDNN%10000/100, py.CuDNN%100)
	}
	if py.Capability != "" {
		want["CPU capability"] = py.Capability
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, the build's python says %q", k, got[k], v)
		}
	}
	if py.NCCL != strings.Contains(got["c10d backends"], "nccl") {
		t.Errorf("c10d backends %q, but python's torch has NCCL: %v", got["c10d backends"], py.NCCL)
	}
	if got["allocator"] != "tcmalloc" {
		t.Errorf("allocator %q, want the tcmalloc this command links", got["allocator"])
	}
}
