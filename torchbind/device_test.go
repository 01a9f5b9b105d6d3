package torchbind

import (
	"fmt"
	"strings"
	"testing"
)

func TestResolveDevice(t *testing.T) {
	auto := "cpu"
	if CUDAAvailable() {
		auto = "cuda:0"
	}
	for in, want := range map[string]string{"auto": auto, "cpu": "cpu"} {
		if got, err := ResolveDevice(in); err != nil || got != want {
			t.Errorf("ResolveDevice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	// The names' forms are devicename's to check (its tests); two show that
	// its refusals reach here.
	for in, want := range map[string]string{
		"cpu:1": `device "cpu:1": cpu takes no index (want auto, cpu, cuda or cuda:N)`,
		"gpu":   `unknown device "gpu" (want auto, cpu, cuda or cuda:N)`,
	} {
		got, err := ResolveDevice(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveDevice(%q) = %q, %v; want an error containing %q", in, got, err, want)
		}
	}
}

// TestResolveDeviceGPUs checks the plain messages for GPUs libtorch cannot
// use: every CUDA name without CUDA support, a GPU index past the last with.
func TestResolveDeviceGPUs(t *testing.T) {
	if !cudaBuilt() {
		for _, in := range []string{"cuda", "cuda:0", "cuda:3"} {
			_, err := ResolveDevice(in)
			if want := "this libtorch has no CUDA support: device " + in; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ResolveDevice(%q) = %v, want %q", in, err, want)
			}
		}
		return
	}
	n, err := CUDADeviceCount()
	if err != nil {
		t.Fatal(err)
	}
	_, err = ResolveDevice(fmt.Sprintf("cuda:%d", n))
	if want := fmt.Sprintf("no GPU %d: libtorch sees %d GPU(s)", n, n); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ResolveDevice(cuda:%d) = %v, want %q", n, err, want)
	}
	if n == 0 {
		return
	}
	for in, want := range map[string]string{"cuda": "cuda:0", fmt.Sprintf("cuda:%d", n-1): fmt.Sprintf("cuda:%d", n-1)} {
		if got, err := ResolveDevice(in); err != nil || got != want {
			t.Errorf("ResolveDevice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
