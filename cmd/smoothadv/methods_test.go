package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryMethodTrainsAndCertifies trains one short epoch with each
// method after SmoothAdv through the command's flags: each writes log.txt
// (header and the epoch's line) and a checkpoint that certify accepts.
func TestEveryMethodTrainsAndCertifies(t *testing.T) {
	for name, flags := range map[string][]string{
		"macer":                 {"--method", "macer", "--lr", "0.01", "--macer-lbd", "4"},
		"consistency":           {"--method", "consistency", "--consistency-lbd", "20"},
		"consistency-smoothadv": {"--method", "consistency", "--adv-training", "--attack", "PGD", "--num-steps", "1", "--epsilon", "64"},
		"smoothmix":             {"--method", "smoothmix", "--smoothmix-num-steps", "2", "--smoothmix-alpha", "0.5", "--smoothmix-mix-step", "1"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"train", "fashion-mnist", "fashion_cnn", dir, "--epochs", "1", "--batch", "32",
				"--noise_sd", "0.25", "--num-noise-vec", "2", "--train-subset", "1000", "--test-subset", "2000",
				"--device", "cpu", "--workers", "1", "--seed", "3"}, flags...)
			smoothadv(t, args...)
			b, err := os.ReadFile(filepath.Join(dir, "log.txt"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "epoch\ttime\tlr\ttrainloss\ttestloss\ttrainacc\ttestacc") || !strings.HasPrefix(lines[1], "0\t") {
				t.Fatalf("log.txt:\n%s", b)
			}
			out := filepath.Join(dir, "certify.tsv")
			smoothadv(t, "certify", "fashion-mnist", filepath.Join(dir, "checkpoint.pth.tar"), "0.25", out,
				"--N0", "20", "--N", "100", "--skip", "2500", "--batch", "100", "--device", "cpu")
			if n := lineCount(out); n != 5 {
				t.Errorf("certify log has %d lines, want a header and 4 images", n)
			}
		})
	}
}
