package train

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/checkpoint"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// childEnv carries a JSON Config to the test binary run as a child process.
const childEnv = "SMOOTHADV_TRAIN_CHILD"

// TestMain lets the test binary stand in for `smoothadv train`: with
// childEnv set it trains as the Config there says and exits, so that a test
// can SIGKILL a training run in a process of its own. With stepsEnv set it is
// one process of a data-parallel test (distributed_test.go).
func TestMain(m *testing.M) {
	if js := os.Getenv(stepsEnv); js != "" {
		os.Exit(stepsChild(js))
	}
	if js := os.Getenv(childEnv); js != "" {
		var c settings.Config
		if err := json.Unmarshal([]byte(js), &c); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := Run(context.Background(), c, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a training run in another process, its stdout lines on a channel.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr bytes.Buffer
}

func startChild(t *testing.T, c settings.Config) *child {
	t.Helper()
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	ch := &child{cmd: exec.Command(os.Args[0], "-test.run=^$"), lines: make(chan string, 16)}
	ch.cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	ch.cmd.Stderr = &ch.stderr
	out, err := ch.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(ch.lines)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			ch.lines <- sc.Text()
		}
	}()
	return ch
}

// waitFor reads the child's output until a line starts with prefix.
func (ch *child) waitFor(t *testing.T, prefix string) {
	t.Helper()
	for l := range ch.lines {
		if strings.HasPrefix(l, prefix) {
			return
		}
	}
	ch.cmd.Wait()
	t.Fatalf("the run ended (%v) before printing %q; stderr:\n%s", ch.cmd.ProcessState, prefix, ch.stderr.String())
}

// kill sends SIGKILL and reaps the process; it fails the test if the run
// had already ended with an error.
func (ch *child) kill(t *testing.T) {
	t.Helper()
	ch.cmd.Process.Kill()
	for range ch.lines {
	}
	err := ch.cmd.Wait()
	if st := ch.cmd.ProcessState; st != nil && st.Exited() && st.ExitCode() != 0 {
		t.Fatalf("the run failed before the kill: %v; stderr:\n%s", err, ch.stderr.String())
	}
}

// TestKilledTrainingResumesIdentically kills training runs with SIGKILL at
// an epoch boundary, in the middle of an epoch and at a random moment, resumes
// each time, and checks that log.txt holds every epoch once with the numbers
// of an uninterrupted run (all but the time column) and that the final
// checkpoint's weights and momentum buffers are bit for bit the uninterrupted
// run's.
func TestKilledTrainingResumesIdentically(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	base := small(t)
	base.DataDir = tinyFashionMNIST(t, 400, 100)
	base.Epochs, base.TrainSubset, base.TestSubset, base.Workers = 3, 1, 1, 1
	t.Run("gaussian", func(t *testing.T) { killAndResume(t, base) })
	adv := base
	adv.AdvTraining, adv.Attack, adv.Epsilon, adv.NumSteps, adv.NumNoiseVec, adv.Warmup = true, "PGD", 64, 1, 2, 2
	adv.TrainSubset = 2
	t.Run("smoothadv", func(t *testing.T) { killAndResume(t, adv) })
}

// tinyFashionMNIST writes the first nTrain training and nTest test examples
// of Debian's Fashion-MNIST as uncompressed IDX files in a temporary
// directory, which each training process reads far quicker than the whole set.
func tinyFashionMNIST(t *testing.T, nTrain, nTest int) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		for _, kind := range []struct {
			name       string
			head, size int // header bytes, bytes per example
		}{{"images-idx3-ubyte", 16, 28 * 28}, {"labels-idx1-ubyte", 8, 1}} {
			name := f.prefix + "-" + kind.name
			r, err := os.Open(filepath.Join(testenv.FashionMNISTDir, name+".gz"))
			if err != nil {
				t.Skipf("no Fashion-MNIST: %v", err)
			}
			defer r.Close()
			gz, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, kind.head+f.n*kind.size)
			if _, err := io.ReadFull(gz, b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			binary.BigEndian.PutUint32(b[4:], uint32(f.n)) // the number of examples
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func killAndResume(t *testing.T, c settings.Config) {
	c.OutDir = t.TempDir()
	ref := c
	ref.OutDir = t.TempDir()
	if err := Run(context.Background(), ref, io.Discard); err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseFloat(readLog(t, ref.OutDir)[1][1], 64) // epoch 0's time column
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Duration(secs * float64(time.Second))
	// The kill moments are drawn from a seed that the test prints, so that
	// a failure can be replayed: SMOOTHADV_KILL_SEED=N go test -run ...
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("SMOOTHADV_KILL_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SMOOTHADV_KILL_SEED=%q: %v", v, err)
		}
	}
	t.Logf("kill moments drawn with SMOOTHADV_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	// At the boundary: as soon as epoch 0 is reported.
	began := time.Now()
	ch := startChild(t, c)
	ch.waitFor(t, "epoch 0:")
	ch.kill(t)
	startAndEpoch := time.Since(began)
	checkKilled(t, c.OutDir, "at the end of epoch 0")

	// In the middle of epoch 2, most likely: part of an epoch after epoch 1
	// is reported.
	c.Resume = true
	ch = startChild(t, c)
	ch.waitFor(t, "epoch 1:")
	d := time.Duration((0.2 + 0.6*rng.Float64()) * float64(epoch))
	time.Sleep(d)
	ch.kill(t)
	checkKilled(t, c.OutDir, fmt.Sprintf("%v after the end of epoch 1", d))

	// At any moment, from loading to the end of an epoch, of a run that
	// resumes.
	ch = startChild(t, c)
	d = time.Duration((0.3 + 0.7*rng.Float64()) * float64(startAndEpoch))
	time.Sleep(d)
	ch.kill(t)
	checkKilled(t, c.OutDir, fmt.Sprintf("%v after starting", d))

	if err := Run(context.Background(), c, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, got := readLog(t, ref.OutDir), readLog(t, c.OutDir)
	if len(got) != len(want) {
		t.Fatalf("%d log lines after the kills, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if i > 0 { // the time column differs
			want[i][1], got[i][1] = "", ""
		}
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("log line %d: %q, uninterrupted %q", i+1, got[i], want[i])
		}
	}
	if last := got[0][len(got[0])-1]; (last == "testaccNor") != c.AdvTraining {
		t.Errorf("header %q: testaccNor is the last column with adversarial training only", got[0])
	}
	m, err := models.Load(filepath.Join(c.OutDir, settings.CheckpointFile), models.Options{})
	if err != nil {
		t.Fatalf("the final checkpoint does not load: %v", err)
	}
	if m.Meta.Epoch != c.Epochs || m.Meta.NoiseSD != c.NoiseSD || m.Meta.Arch != c.Arch {
		t.Errorf("checkpoint metadata %+v", m.Meta)
	}
	m.Close()
	sameCheckpoint(t, filepath.Join(ref.OutDir, settings.CheckpointFile), filepath.Join(c.OutDir, settings.CheckpointFile))
}

// checkKilled checks what a kill left: a checkpoint after n epochs (its
// 'epoch', as train_pgd.py writes it) and a log of n epochs, or of n-1 when
// the kill fell between the checkpoint and its line (trainlog.Resume
// restores it).
func checkKilled(t *testing.T, dir, when string) {
	t.Helper()
	logged := len(readLog(t, dir)) - 1
	c, err := checkpoint.Load(filepath.Join(dir, settings.CheckpointFile))
	if err != nil {
		t.Fatalf("killed %s: %v", when, err)
	}
	if logged != c.Epoch && logged != c.Epoch-1 {
		t.Fatalf("killed %s: checkpoint after %d epochs, %d logged", when, c.Epoch, logged)
	}
	t.Logf("killed %s: checkpoint after %d epochs, %d logged", when, c.Epoch, logged)
}

// sameCheckpoint compares two checkpoints' epoch, state dict and momentum
// buffers byte for byte.
func sameCheckpoint(t *testing.T, wantPath, gotPath string) {
	t.Helper()
	want, err := checkpoint.Load(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	got, err := checkpoint.Load(gotPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != want.Epoch || len(got.StateDict) != len(want.StateDict) {
		t.Fatalf("epoch %d with %d tensors, uninterrupted %d with %d", got.Epoch, len(got.StateDict), want.Epoch, len(want.StateDict))
	}
	for i, w := range want.StateDict {
		g := got.StateDict[i]
		if g.Name != w.Name || !slices.Equal(g.Tensor.Shape, w.Tensor.Shape) || !bytes.Equal(g.Tensor.Data, w.Tensor.Data) {
			t.Errorf("state_dict %s differs from the uninterrupted run's", w.Name)
		}
	}
	if got.Optimizer == nil || want.Optimizer == nil {
		t.Fatal("no optimizer state")
	}
	for i, w := range want.Optimizer.MomentumBuffers {
		if g := got.Optimizer.MomentumBuffers[i]; (g == nil) != (w == nil) || g != nil && !bytes.Equal(g.Data, w.Data) {
			t.Errorf("momentum buffer %d differs from the uninterrupted run's", i)
		}
	}
	if !t.Failed() {
		t.Logf("%d tensors and %d momentum buffers identical", len(want.StateDict), len(want.Optimizer.MomentumBuffers))
	}
}
