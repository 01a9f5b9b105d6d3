package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestBenchTrainPrintsBothSides times the Gaussian step on both sides at a
// tiny size and checks the table: each side's threads and allocator, and a
// row with both times and their ratio.
func TestBenchTrainPrintsBothSides(t *testing.T) {
	out := smoothadv(t, "bench", "train", fashionModel(t), "--device", "cpu", "--config", "gaussian",
		"--batch", "8", "--steps", "2", "--warmup", "1")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^ours: +torch \S+, \d+ intra-op thread\(s\), allocator \S+$`),
		regexp.MustCompile(`(?m)^reference: torch \S+, \d+ intra-op thread\(s\), allocator \S+$`),
		regexp.MustCompile(`(?m)^gaussian +\d+\.\d{3} +\d+\.\d{3} +\d+\.\d\dx +\d+\.\d{4} / \d+\.\d{4}$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("bench train printed\n%s\nwant a line matching %s", out, want)
		}
	}
	if strings.Contains(out, "pgd") {
		t.Errorf("bench train --config gaussian timed more:\n%s", out)
	}
}
