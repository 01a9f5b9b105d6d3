package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/filetest"
	"github.com/smoothadv/smoothadv/internal/testenv"
)

// TestReferenceJobsFile: run -c of a job file in the reference's format
// trains and certifies as its commands say, into OUT/NAME; a flag we do not
// take is refused before anything runs, naming the job and the flag.
func TestReferenceJobsFile(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	dir := t.TempDir()
	jobsFile := filepath.Join(dir, "jobs.yaml")
	write := func(text string) {
		if err := os.WriteFile(jobsFile, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`description: a SmoothAdv model on Fashion-MNIST, trained and certified
target:
  vc: resrch
jobs:
- name: pgd_noise0.25
  sku: G1
  command:
  - python code/train_pgd.py fashion-mnist fashion_cnn model_output_dir --epochs 1 --batch 64 --noise_sd 0.25 --train-subset 300 --test-subset 100 --adv-training --attack PGD --num-steps 1 --epsilon 64 --device cpu
  - python code/certify.py fashion-mnist model_output_dir/checkpoint.pth.tar 0.25 certify/noise_0.25 --skip 2000 --N0 10 --N 100 --batch 100 --device cpu
`)
	out := filepath.Join(dir, "results")
	said := smoothadv(t, "run", "-c", jobsFile, "--out", out)
	job := filepath.Join(out, "pgd_noise0.25")
	if log := filetest.Read(t, filepath.Join(job, "model_output_dir", "log.txt")); strings.Count(log, "\n") != 2 || !strings.Contains(log, "testaccNor") {
		t.Errorf("training log:\n%s", log)
	}
	if lines := strings.Count(filetest.Read(t, filepath.Join(job, "certify", "noise_0.25")), "\n"); lines != 6 {
		t.Errorf("certify log has %d lines, want the header and 5 examples", lines)
	}
	if !strings.Contains(said, "job pgd_noise0.25: smoothadv train fashion-mnist fashion_cnn "+filepath.Join(job, "model_output_dir")) {
		t.Errorf("run said:\n%s", said)
	}

	write(`jobs:
- name: fine
  command: python code/certify.py fashion-mnist m.pt 0.25 out --skip 2000
- name: odd
  command: python code/certify.py fashion-mnist m.pt 0.25 out --noise-type laplace
`)
	other := filepath.Join(dir, "other")
	if msg := refused(t, "run", "-c", jobsFile, "--out", other); !strings.Contains(msg, "job odd") || !strings.Contains(msg, "unknown flag: --noise-type") {
		t.Errorf("a flag we do not take:\n%s", msg)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("the refused job file made %s (%v)", other, err)
	}
}
