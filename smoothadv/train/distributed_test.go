package train

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// stepsEnv carries a stepsJob to the test binary run as one process of a
// data-parallel group (see TestMain).
const stepsEnv = "SMOOTHADV_TRAIN_STEPS"

// stepsJob trains Batches batches of epoch 0 of Config and writes the
// parameters after each, then the BatchNorm statistics averaged over the
// processes, into Dir.
type stepsJob struct {
	Config  settings.Config
	Batches int
	Dir     string
}

// runSteps runs job as one process of g (nil: alone), through the trainer
// that Run uses. Files are named by rank ("alone" for nil g):
// RANK.params.K after batch K, RANK.stats at the end.
func runSteps(job stepsJob, g *dist.Group) error {
	t, _, err := newTrainer(job.Config, g, io.Discard)
	if err != nil {
		return err
	}
	defer t.close()
	name := "alone"
	if g != nil {
		name = strconv.Itoa(g.Rank)
	}
	if err := t.useGenerator(0, trainStream); err != nil {
		return err
	}
	if err := t.model.Train(true); err != nil {
		return err
	}
	batches := t.train.Epoch(context.Background(), 0)
	defer batches.Close()
	var loss, acc meter
	for k := range job.Batches {
		b, err := batches.Next()
		if err != nil {
			return err
		}
		if err := t.trainBatch(b, 0, 1, &loss, &acc); err != nil {
			return err
		}
		params, err := t.model.Parameters()
		if err != nil {
			return err
		}
		err = writeTensors(filepath.Join(job.Dir, fmt.Sprintf("%s.params.%d", name, k)), params)
		torchbind.CloseAll(params)
		if err != nil {
			return err
		}
	}
	if err := t.averageBatchNorm(); err != nil {
		return err
	}
	bufs, err := t.model.Buffers()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(bufs)
	var stats []torchbind.Named
	for _, b := range bufs {
		if _, dt, _ := b.T.Info(); dt == torchbind.Float32 {
			stats = append(stats, b)
		}
	}
	return writeTensors(filepath.Join(job.Dir, name+".stats"), stats)
}

// writeTensors writes the float32 values of ns, one after another.
func writeTensors(path string, ns []torchbind.Named) error {
	var b []byte
	for _, n := range ns {
		v, err := n.T.Float32s()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return os.WriteFile(path, b, 0o644)
}

func readTensors(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// stepsChild is the test binary as one process of a group: it runs the
// stepsJob in js and returns the exit status.
func stepsChild(js string) int {
	var job stepsJob
	err := json.Unmarshal([]byte(js), &job)
	if err == nil {
		var g *dist.Group
		if g, err = dist.Launched(); err == nil {
			err = g.Close(runSteps(job, g))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// inProcesses runs job in world child processes, a group on a free
// localhost port, as torchrun would start them on one node.
func inProcesses(t *testing.T, job stepsJob, world int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	js, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, world)
	outs := make([][]byte, world)
	errs := make([]error, world)
	done := make(chan int)
	for r := range world {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), stepsEnv+"="+string(js), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(world), "LOCAL_WORLD_SIZE="+strconv.Itoa(world),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), dist.TimeoutVar+"=60s")
		cmds[r] = cmd
		go func() {
			outs[r], errs[r] = cmd.CombinedOutput()
			done <- r
		}()
	}
	for range world {
		<-done
	}
	for r := range world {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v\n%s", r, errs[r], outs[r])
		}
	}
}

// maxDiff is the largest absolute difference between a and b.
func maxDiff(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d values against %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

// distConfig is a quick configuration on 256 Fashion-MNIST images.
func distConfig(t *testing.T, arch string) settings.Config {
	c := small(t)
	c.Arch, c.DataDir = arch, tinyFashionMNIST(t, 256, 16)
	c.Batch, c.TrainSubset, c.TestSubset, c.Workers, c.Epochs = 32, 1, 1, 1, 1
	return c
}

// TestDataParallelEqualsOneProcess checks that two processes, each taking
// half of every batch, hold after every step the weights that one process
// training on the whole batch holds, for a BatchNorm-free model: with
// Gaussian noise (one step a batch), the steps of multi-noise training (two
// a batch), MACER (one step on the whole batch) and SmoothMix (two
// mini-batches, mixing weights drawn at random).
func TestDataParallelEqualsOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	gauss := distConfig(t, "fashion_lenet")
	multi := gauss
	multi.NumNoiseVec, multi.TrainMultiNoise = 2, true
	macer := gauss
	macer.Method, macer.NumNoiseVec = settings.MACER, 2
	smoothMix := gauss
	smoothMix.Method, smoothMix.NumNoiseVec, smoothMix.SmoothMixSteps, smoothMix.SmoothMixMixStep = settings.SmoothMix, 2, 2, 1
	for name, cfg := range map[string]settings.Config{"gaussian": gauss, "multi-noise": multi, "macer": macer, "smoothmix": smoothMix} {
		t.Run(name, func(t *testing.T) {
			job := stepsJob{Config: cfg, Batches: 4, Dir: t.TempDir()}
			job.Config.OutDir = t.TempDir()
			alone := job
			alone.Config.OutDir = t.TempDir()
			if err := runSteps(alone, nil); err != nil {
				t.Fatal(err)
			}
			inProcesses(t, job, 2)
			start := readTensors(t, filepath.Join(job.Dir, "alone.params.0"))
			for k := range job.Batches {
				want := readTensors(t, filepath.Join(job.Dir, fmt.Sprintf("alone.params.%d", k)))
				for r := range 2 {
					got := readTensors(t, filepath.Join(job.Dir, fmt.Sprintf("%d.params.%d", r, k)))
					// float32 sums in another order: about 1e-7 of the weights.
					if d := maxDiff(t, got, want); d > 1e-5 {
						t.Errorf("after batch %d rank %d's weights differ from one process's by up to %.3g", k, r, d)
					} else if k == job.Batches-1 {
						t.Logf("after batch %d rank %d's weights differ from one process's by up to %.3g", k, r, d)
					}
				}
			}
			if d := maxDiff(t, start, readTensors(t, filepath.Join(job.Dir, fmt.Sprintf("alone.params.%d", job.Batches-1)))); d < 1e-3 {
				t.Errorf("training moved the weights by only %.3g: nothing was compared", d)
			}
		})
	}
}

// TestDataParallelKeepsReplicasEqual checks that processes training a model
// with BatchNorm (whose statistics are each process's own) on SmoothAdv's
// attacked inputs hold the same parameters, bit for bit, after every step,
// and the same averaged statistics at the end.
func TestDataParallelKeepsReplicasEqual(t *testing.T) {
	if testing.Short() {
		t.Skip("trains in child processes")
	}
	cfg := distConfig(t, "fashion_cnn")
	cfg.AdvTraining, cfg.Attack, cfg.Epsilon, cfg.NumSteps = true, "PGD", 64, 1
	job := stepsJob{Config: cfg, Batches: 3, Dir: t.TempDir()}
	inProcesses(t, job, 2)
	for k := range job.Batches {
		a := readTensors(t, filepath.Join(job.Dir, fmt.Sprintf("0.params.%d", k)))
		b := readTensors(t, filepath.Join(job.Dir, fmt.Sprintf("1.params.%d", k)))
		if !slices.Equal(a, b) {
			t.Errorf("after batch %d the ranks' parameters differ by up to %.3g", k, maxDiff(t, a, b))
		}
	}
	if a, b := readTensors(t, filepath.Join(job.Dir, "0.stats")), readTensors(t, filepath.Join(job.Dir, "1.stats")); !slices.Equal(a, b) {
		t.Errorf("after averaging the ranks' BatchNorm statistics differ by up to %.3g", maxDiff(t, a, b))
	}
}

func TestDataParallelRefusesABatchThatDoesNotSplit(t *testing.T) {
	cfg := distConfig(t, "fashion_lenet")
	cfg.Batch, cfg.NumNoiseVec = 36, 4
	g := dist.New(dist.Env{Rank: 0, World: 2, LocalWorld: 1, MasterAddr: "127.0.0.1", MasterPort: 1}, 0)
	err := RunIn(context.Background(), cfg, g, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "use a multiple of 8") {
		t.Fatalf("batch 36 over 2 processes with 4 noise vectors: %v", err)
	}
}
