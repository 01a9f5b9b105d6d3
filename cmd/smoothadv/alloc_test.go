package main

import (
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/torchbind"
)

// TestTcmallocServesLibtorch: the command links tcmalloc ahead of libc, so
// libtorch's allocations go to it, and bench certify says so.
func TestTcmallocServesLibtorch(t *testing.T) {
	if got := torchbind.Allocator(); got != "tcmalloc" {
		t.Errorf("this process allocates with %q, want tcmalloc", got)
	}
	out := smoothadv(t, "bench", "certify", testenv.Model("fashion_cnn"),
		"--images", "1", "--N0", "10", "--N", "20", "--batch", "10", "--reference", "", "--device", "cpu", "--workers", "2")
	if !strings.Contains(out, "allocator tcmalloc") {
		t.Errorf("bench certify does not name tcmalloc:\n%s", out)
	}
}
