package main

import (
	"os/exec"
	"testing"
)

// TestRunsOnOneCore starts the binary on one core (taskset, as a batch
// scheduler's CPU binding does): gotorch's package init asks libtorch for
// half the cores, which used to abort before main on a single core.
func TestRunsOnOneCore(t *testing.T) {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		t.Skip("no taskset")
	}
	out, err := exec.Command(taskset, "-c", "0", binary(t), "certify", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("on one core: %v\n%s", err, out)
	}
}
