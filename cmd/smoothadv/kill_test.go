package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withoutTime is a certify or predict log without its time column.
func withoutTime(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if i := strings.LastIndex(line, "\t"); i >= 0 {
			line = line[:i] + "\n"
		}
		out = append(out, line)
	}
	return strings.Join(out, "")
}

// lineCount is the number of complete lines in path (0 if it is missing).
func lineCount(path string) int {
	b, _ := os.ReadFile(path)
	return bytes.Count(b, []byte("\n"))
}

// startAndSignal starts args, waits until out holds at least lines complete
// lines plus a random pause, and sends sig. It returns the command's exit
// error and output.
func startAndSignal(t *testing.T, rng *rand.Rand, out string, lines int, sig syscall.Signal, args []string) (error, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(2 * time.Minute)
	for lineCount(out) < lines {
		select {
		case err := <-exited:
			t.Fatalf("smoothadv finished (%v) before writing %d lines; raise N\n%s", err, lines, output.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no output after 2 minutes")
		}
	}
	// A line takes 10-40 ms here: the delay moves the signal within the next
	// line or two, and stays short enough that the run is still going on a
	// fast CPU (up to 150 ms let the last kill land after the run finished).
	time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return <-exited, output.String()
}

// uninterrupted certifies in one piece into a new folder and returns the
// model, the folder and the log without its time column.
func uninterrupted(t *testing.T, run func(*testing.T, ...string) string) (model, dir, log string) {
	t.Helper()
	model = fashionModel(t)
	dir = t.TempDir()
	whole := filepath.Join(dir, "whole.tsv")
	run(t, certifyArgs(model, whole)...)
	if n := lineCount(whole); n != 21 {
		t.Fatalf("uninterrupted log has %d lines, want 21", n)
	}
	return model, dir, withoutTime(t, whole)
}

// TestCertifyKilledAndResumedIsIdentical kills certify with SIGKILL at
// random moments after output has started, resumes it each time, and
// compares the finished log with an uninterrupted run: every line present
// once, identical but for the time column.
func TestCertifyKilledAndResumedIsIdentical(t *testing.T) {
	model, dir, want := uninterrupted(t, runBinary)

	rng := rand.New(rand.NewPCG(11, 12))
	out := filepath.Join(dir, "killed.tsv")
	args := certifyArgs(model, out, "--resume", "--workers", "1", "--batch", "120")
	for _, lines := range []int{2, 6, 11, 16} {
		err, _ := startAndSignal(t, rng, out, lines, syscall.SIGKILL, args)
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("killed run: %v", err)
		}
	}
	runBinary(t, args...)
	if got := withoutTime(t, out); got != want {
		t.Errorf("killed and resumed 4 times:\n%s\nuninterrupted:\n%s", got, want)
	}
}

// TestCertifySIGTERMStopsCleanly: SIGTERM (Slurm preemption, Kubernetes
// eviction) stops between examples with exit 143 and only complete lines;
// the resumed log equals an uninterrupted run.
func TestCertifySIGTERMStopsCleanly(t *testing.T) {
	model, dir, want := uninterrupted(t, runBinary)

	out := filepath.Join(dir, "stopped.tsv")
	args := certifyArgs(model, out, "--group", "1")
	err, output := startAndSignal(t, rand.New(rand.NewPCG(1, 2)), out, 3, syscall.SIGTERM, args)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 143 {
		t.Fatalf("after SIGTERM: %v, want exit status 143\n%s", err, output)
	}
	if !strings.Contains(output, "stopped by SIGTERM") {
		t.Errorf("after SIGTERM the message is %q", output)
	}
	b, _ := os.ReadFile(out)
	if len(b) == 0 || b[len(b)-1] != '\n' || lineCount(out) >= 21 {
		t.Fatalf("after SIGTERM the log is torn or complete:\n%s", b)
	}
	runBinary(t, append(args, "--resume")...)
	if got := withoutTime(t, out); got != want {
		t.Errorf("stopped and resumed:\n%s\nuninterrupted:\n%s", got, want)
	}
}

// TestTrainSIGTERMStopsCleanly: SIGTERM during training stops between
// batches with exit 143; log.txt holds whole lines of finished epochs only,
// and --resume finishes the run with each epoch logged once.
func TestTrainSIGTERMStopsCleanly(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "fashion-mnist", "fashion_cnn", out, "--epochs", "40", "--train-subset", "200",
		"--test-subset", "500", "--batch", "50", "--device", "cpu", "--workers", "1"}
	log := filepath.Join(out, "log.txt")
	err, output := startAndSignal(t, rand.New(rand.NewPCG(3, 4)), log, 2, syscall.SIGTERM, args)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 143 || !strings.Contains(output, "stopped by SIGTERM") {
		t.Fatalf("after SIGTERM: %v, want exit status 143 and a message\n%s", err, output)
	}
	b, _ := os.ReadFile(log)
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("after SIGTERM log.txt is torn:\n%s", b)
	}
	args[5] = "3" // --epochs: finish sooner
	if n := lineCount(log) - 1; n >= 3 {
		args[5] = fmt.Sprint(n + 1)
	}
	runBinary(t, append(args, "--resume")...)
	b, _ = os.ReadFile(log)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[1:]
	for i, l := range lines {
		if epoch := strings.SplitN(l, "\t", 2)[0]; epoch != fmt.Sprint(i) {
			t.Errorf("log line %d is for epoch %s, want %d:\n%s", i+1, epoch, i, b)
		}
	}
	if want, _ := strconv.Atoi(args[5]); len(lines) != want {
		t.Errorf("log.txt has %d epochs, want %d:\n%s", len(lines), want, b)
	}
}
