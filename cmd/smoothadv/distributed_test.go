package main

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
)

// job is world `smoothadv` processes started as torchrun starts them on
// one node, with a store on a free localhost port.
type job struct {
	cmds []*exec.Cmd
	outs []*bytes.Buffer
	done []chan error
}

func startJob(t *testing.T, world int, args func(rank int) []string) *job {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	j := &job{}
	for r := range world {
		cmd := exec.Command(binary(t), args(r)...)
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
			"LOCAL_WORLD_SIZE="+strconv.Itoa(world), "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
			"SMOOTHADV_DIST_TIMEOUT=60s")
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		j.cmds, j.outs, j.done = append(j.cmds, cmd), append(j.outs, out), append(j.done, done)
	}
	t.Cleanup(func() {
		for _, c := range j.cmds {
			c.Process.Kill()
		}
	})
	return j
}

// wait returns each process's exit error, failing the test after limit.
func (j *job) wait(t *testing.T, limit time.Duration) []error {
	t.Helper()
	errs := make([]error, len(j.cmds))
	deadline := time.After(limit)
	for r, done := range j.done {
		select {
		case errs[r] = <-done:
		case <-deadline:
			t.Fatalf("rank %d still runs after %v:\n%s", r, limit, j.outs[r])
		}
	}
	return errs
}

// trainArgs trains fashion_lenet (no BatchNorm) on 256 images, testing on 20.
func trainArgs(out string, epochs int, extra ...string) []string {
	return append([]string{"train", "fashion-mnist", "fashion_lenet", out, "--epochs", strconv.Itoa(epochs),
		"--batch", "32", "--lr", "0.05", "--noise_sd", "0.25", "--train-subset", "235", "--test-subset", "500",
		"--device", "cpu", "--workers", "1", "--seed", "5"}, extra...)
}

// trainedWeights are the checkpoint's parameters, one after another.
func trainedWeights(t *testing.T, dir string) []float32 {
	t.Helper()
	m, err := models.Load(filepath.Join(dir, "checkpoint.pth.tar"), models.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return modelstest.Parameters(t, m.Module)
}

func largestDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// logRows are log.txt's rows without the time column.
func logRows(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(l, "\t")
		rows = append(rows, strings.Join(append(f[:1:1], f[2:]...), "\t"))
	}
	return rows
}

// TestTrainInTwoProcesses trains one epoch in two processes and checks it
// against one process: one log (with the same numbers) and one checkpoint
// (with the same weights), run.json naming the group; then each run is
// resumed for a second epoch by the other number of processes, and both end
// where two epochs in one process end.
func TestTrainInTwoProcesses(t *testing.T) {
	tmp := t.TempDir()
	alone, pair := filepath.Join(tmp, "alone"), filepath.Join(tmp, "pair")
	runBinary(t, trainArgs(alone, 1)...)
	j := startJob(t, 2, func(int) []string { return trainArgs(pair, 1) })
	for r, err := range j.wait(t, 2*time.Minute) {
		if err != nil {
			t.Fatalf("rank %d: %v\n%s", r, err, j.outs[r])
		}
	}
	if !strings.Contains(j.outs[0].String(), "epoch 0:") || strings.Contains(j.outs[1].String(), "epoch 0:") {
		t.Errorf("rank 0 should print the epoch's summary, and rank 1 not:\nrank 0:\n%s\nrank 1:\n%s", j.outs[0], j.outs[1])
	}
	if a, p := logRows(t, alone), logRows(t, pair); strings.Join(a, "\n") != strings.Join(p, "\n") || len(p) != 2 {
		t.Errorf("log.txt of two processes (but time):\n%s\nof one:\n%s", strings.Join(p, "\n"), strings.Join(a, "\n"))
	}
	if d := largestDiff(trainedWeights(t, alone), trainedWeights(t, pair)); d > 1e-5 {
		t.Errorf("after one epoch two processes' weights differ from one process's by up to %.3g", d)
	} else {
		t.Logf("after one epoch (8 steps) two processes' weights differ from one process's by up to %.3g", d)
	}
	var info struct {
		WorldSize int    `json:"world_size"`
		Backend   string `json:"backend"`
	}
	b, err := os.ReadFile(filepath.Join(pair, "run.json"))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil || info.WorldSize != 2 || info.Backend != "gloo" {
		t.Errorf("run.json: %+v (%v), want world size 2 and backend gloo", info, err)
	}

	whole := filepath.Join(tmp, "whole")
	runBinary(t, trainArgs(whole, 2)...)
	runBinary(t, trainArgs(pair, 2, "--resume")...)
	j = startJob(t, 2, func(int) []string { return trainArgs(alone, 2, "--resume") })
	for r, err := range j.wait(t, 2*time.Minute) {
		if err != nil {
			t.Fatalf("resuming in two processes, rank %d: %v\n%s", r, err, j.outs[r])
		}
	}
	want := trainedWeights(t, whole)
	for name, dir := range map[string]string{"two processes then one": pair, "one process then two": alone} {
		if d := largestDiff(trainedWeights(t, dir), want); d > 1e-5 {
			t.Errorf("%s: after two epochs the weights differ from one process's by up to %.3g", name, d)
		}
		if rows := logRows(t, dir); len(rows) != 3 {
			t.Errorf("%s: log.txt has %d lines, want 3", name, len(rows))
		}
	}
}

// TestAFailedRankStopsTheOthers: a process that fails (here, its data
// folder is missing) stops the others with its message, and a process that
// is killed stops them with an error; none waits for the timeout.
func TestAFailedRankStopsTheOthers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	j := startJob(t, 2, func(r int) []string {
		if r == 1 {
			return trainArgs(out, 1, "--data-dir", filepath.Join(out, "nowhere"))
		}
		return trainArgs(out, 1)
	})
	errs := j.wait(t, 40*time.Second)
	for r, want := range []string{"rank 0 stopped because rank 1 failed", "rank 1: "} {
		if errs[r] == nil || !strings.Contains(j.outs[r].String(), want) || !strings.Contains(j.outs[r].String(), "nowhere") {
			t.Errorf("rank %d: %v, want a failure saying %q and naming the missing folder:\n%s", r, errs[r], want, j.outs[r])
		}
	}

	out = filepath.Join(t.TempDir(), "run")
	j = startJob(t, 2, func(int) []string { return trainArgs(out, 100) })
	deadline := time.Now().Add(time.Minute)
	for lineCount(filepath.Join(out, "log.txt")) < 2 && time.Now().Before(deadline) { // an epoch is done
		time.Sleep(10 * time.Millisecond)
	}
	j.cmds[1].Process.Kill()
	began := time.Now()
	errs = j.wait(t, 40*time.Second)
	if errs[0] == nil || !strings.Contains(j.outs[0].String(), "another process has left") {
		t.Errorf("rank 0 after rank 1 was killed: %v, want an error saying a process left:\n%s", errs[0], j.outs[0])
	}
	t.Logf("rank 0 stopped %v after rank 1 was killed", time.Since(began).Round(time.Millisecond))
}

// TestRendezvousFailureSpeaksAlone: a rendezvous that fails prints our
// message without libtorch's log lines before it (glog's "Logging before
// InitGoogleLogging" and its socket.cpp line on Debian's build).
func TestRendezvousFailureSpeaksAlone(t *testing.T) {
	cmd := exec.Command(binary(t), trainArgs(filepath.Join(t.TempDir(), "run"), 1)...)
	cmd.Env = append(os.Environ(), "RANK=1", "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1", "SMOOTHADV_DIST_TIMEOUT=2s")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("joined a group with no rank 0")
	}
	text := string(out)
	if !strings.Contains(text, "rendezvous (rank 1 of 2, store at 127.0.0.1:1)") || strings.Contains(text, "InitGoogleLogging") || strings.Contains(text, "socket.cpp") {
		t.Errorf("a failed rendezvous printed:\n%s", text)
	}
}
