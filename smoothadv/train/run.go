package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/internal/atomicfile"
	"github.com/smoothadv/smoothadv/internal/outputs"
	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/smoothadv/train/trainlog"
	"github.com/smoothadv/smoothadv/torchbind"
)

// newTrainer opens the data and the model (fresh, pretrained or resumed)
// and returns the first epoch to train, as a process of g (nil: alone).
func newTrainer(cfg settings.Config, g *dist.Group, out io.Writer) (*Trainer, int, error) {
	cfg = cfg.Resolved() // adv_training says whether to attack
	if cfg.Resume {
		if err := checkResumable(cfg); err != nil {
			return nil, 0, err
		}
	}
	if err := useTrainingThreads(processesHere(g)); err != nil {
		return nil, 0, err
	}
	t := &Trainer{cfg: cfg, out: out, progress: progress.ForStderr("batch"), group: g}
	ok := false
	defer func() {
		if !ok {
			t.close()
		}
	}()
	// From here on a failure reaches the group's other processes.
	if err := t.join(); err != nil {
		return nil, 0, err
	}
	trainSet, err := data.Open(cfg.Dataset, cfg.DataDir, data.Train)
	if err != nil {
		return nil, 0, err
	}
	if kept := every(trainSet, cfg.TrainSubset).Len(); kept < cfg.Batch {
		return nil, 0, fmt.Errorf("train_subset %d keeps %d of the %d training images, fewer than one batch (%d): pick a smaller train_subset",
			cfg.TrainSubset, kept, trainSet.Len(), cfg.Batch)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, 0, err
	}
	if cfg.Resume {
		// Killed before the first checkpoint: nothing to resume, so start.
		_, err := os.Stat(filepath.Join(cfg.OutDir, settings.CheckpointFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, 0, err
		}
		if err != nil && g.Leader() {
			fmt.Fprintf(out, "nothing to resume in %s (no %s: stopped before the first epoch ended); starting the run\n", cfg.OutDir, settings.CheckpointFile)
		}
		cfg.Resume = err == nil
		t.cfg = cfg
	}
	if g.Leader() {
		if err := t.takeOutDir(); err != nil {
			return nil, 0, err
		}
		if rec, err := readRecord(cfg.OutDir); cfg.Resume && err == nil && rec != nil && rec.Threads != 0 && rec.Threads != torchbind.NumThreads() {
			fmt.Fprintf(out, "note: %s was trained so far with %d intra-op threads per process, this run uses %d: "+
				"sums may round otherwise, so the weights can drift from an uninterrupted run's in the last bits\n", cfg.OutDir, rec.Threads, torchbind.NumThreads())
		}
	}
	testSet, err := data.Open(cfg.Dataset, cfg.DataDir, data.Test)
	if err != nil {
		return nil, 0, err
	}
	t.test = every(testSet, cfg.TestSubset)
	if t.train, err = data.NewLoader(every(trainSet, cfg.TrainSubset), data.Options{BatchSize: cfg.Batch, Shuffle: true, Seed: cfg.Seed, Workers: cfg.Workers, Shard: t.shard(trainChunks(cfg))}); err != nil {
		return nil, 0, err
	}
	if cfg.UseUnlabelled {
		extra, err := data.OpenPseudoLabelled(cfg.UnlabelledPath)
		if err != nil {
			return nil, 0, fmt.Errorf("self-training set: %w", err)
		}
		if t.extra, err = data.NewLoader(extra, data.Options{BatchSize: cfg.Batch, Shuffle: true, Seed: cfg.Seed + 1, Workers: cfg.Workers, Shard: t.shard(trainChunks(cfg))}); err != nil {
			return nil, 0, err
		}
	}
	start, err := t.openModel(trainSet)
	if err != nil {
		return nil, 0, err
	}
	if err := t.syncModel(start); err != nil {
		return nil, 0, err
	}
	if cfg.Resume && g.Leader() {
		if err := trainlog.Resume(cfg.OutDir, t.header(), start-1, os.Stderr); err != nil {
			return nil, 0, err
		}
	}
	if cfg.AdvTraining {
		if t.attacker, err = newAttacker(cfg, processesHere(g)); err != nil {
			return nil, 0, err
		}
	}
	if err := t.writeRunInfo(); err != nil {
		return nil, 0, err
	}
	ok = true
	return t, start, nil
}

// useTrainingThreads sets libtorch's intra-op threads for training: one
// step runs at a time in each of the node's training processes, so they
// share every core.
func useTrainingThreads(processes int) error { return torchbind.UseCores(processes) }

// openModel makes the model and optimizer: resumed from the output
// directory, started from a pretrained model, or freshly initialised.
func (t *Trainer) openModel(trainSet data.Dataset) (int, error) {
	cfg := t.cfg
	opt := models.Options{Device: cfg.Device, Normalization: cfg.Normalization}
	var err error
	start := 0
	switch {
	case cfg.Resume:
		var st *resumeState
		if st, err = loadCheckpoint(cfg.OutDir, opt); err != nil {
			return 0, fmt.Errorf("resume: %w", err)
		}
		t.model, start = st.model, st.done
		defer t.restoreOptimizer(st)
		// What the checkpoint records must agree too, run.json or not (a
		// reference run has none; the reference's checkpoints record no
		// noise level).
		if rec := t.model.Meta.NoiseSD; rec != 0 && rec != cfg.NoiseSD {
			return 0, fmt.Errorf("resume %s: its checkpoint was trained with noise_sd %v, not %v; resume with --noise_sd %v or train into a new directory",
				cfg.OutDir, rec, cfg.NoiseSD, rec)
		}
	case cfg.PretrainedModel != "":
		if t.model, err = finetune(cfg, opt); err != nil {
			return 0, err
		}
	default:
		if t.model, err = models.New(cfg.Arch, cfg.Seed, opt); err != nil {
			return 0, err
		}
	}
	if t.model.Meta.Arch != cfg.Arch {
		return 0, fmt.Errorf("model is %s, configuration says %s", t.model.Meta.Arch, cfg.Arch)
	}
	if t.model.Meta.NumClasses != trainSet.NumClasses() {
		return 0, fmt.Errorf("%s has %d classes, %s has %d", cfg.Arch, t.model.Meta.NumClasses, cfg.Dataset, trainSet.NumClasses())
	}
	t.model.Meta.NoiseSD = cfg.NoiseSD
	t.model.SetChannelsLast(cfg.ChannelsLast)
	params, err := t.model.Parameters()
	if err != nil {
		return 0, err
	}
	t.opt = NewSGD(params, cfg.LR, cfg.Momentum, cfg.WeightDecay)
	return start, nil
}

// finetune starts from a pretrained model (the reference: an ImageNet32
// ResNet-110) with its classifier head replaced by a fresh one for the
// configured architecture: every other tensor is copied over.
// A MACER checkpoint, which does not record its architecture, is taken for
// one of the configured architecture. Without --normalization the new model
// keeps the pretrained one's input layer (none for MACER's nets).
func finetune(cfg settings.Config, opt models.Options) (*models.Model, error) {
	pre, err := models.Load(cfg.PretrainedModel, opt)
	if errors.Is(err, models.ErrNoArch) {
		withArch := opt
		withArch.Arch = cfg.Arch
		pre, err = models.Load(cfg.PretrainedModel, withArch)
	}
	if err != nil {
		return nil, fmt.Errorf("pretrained model: %w", err)
	}
	defer pre.Close()
	m, err := models.New(cfg.Arch, cfg.Seed, opt)
	if err != nil {
		return nil, err
	}
	if cfg.Normalization == "" {
		err = m.SetNormalization(pre.Meta.Normalization)
	}
	if err == nil {
		err = copyExceptHead(pre, m)
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pretrained model %s: %w", cfg.PretrainedModel, err)
	}
	return m, nil
}

func copyExceptHead(from, to *models.Model) error {
	for _, get := range []func(*models.Model) ([]torchbind.Named, error){(*models.Model).Parameters, (*models.Model).Buffers} {
		src, err := get(from)
		if err != nil {
			return err
		}
		defer torchbind.CloseAll(src)
		dst, err := get(to)
		if err != nil {
			return err
		}
		defer torchbind.CloseAll(dst)
		byName := map[string]*torchbind.Tensor{}
		for _, n := range src {
			byName[n.Name] = n.T
		}
		for _, n := range dst {
			if strings.Contains(n.Name, ".fc.") {
				continue
			}
			t, ok := byName[n.Name]
			if !ok {
				return fmt.Errorf("no %s", n.Name)
			}
			if err := n.T.CopyFrom(t); err != nil {
				return fmt.Errorf("%s: %w", n.Name, err)
			}
		}
	}
	return nil
}

// every is a view of every k-th example of ds.
func every(ds data.Dataset, k int) data.Dataset {
	if k <= 1 {
		return ds
	}
	return strided{ds, k}
}

type strided struct {
	data.Dataset
	k int
}

func (s strided) Len() int { return (s.Dataset.Len() + s.k - 1) / s.k }
func (s strided) Read(i int, rng *rand.Rand, dst []float32) (int, error) {
	return s.Dataset.Read(i*s.k, rng, dst)
}

// takeOutDir locks the output directory for this run (rank 0's, in a
// group) and removes the temporary files of killed runs; a fresh run then
// refuses another run's directory (checkFresh) and clears the old
// checkpoint before anything else is written.
func (t *Trainer) takeOutDir() error {
	lock, err := outputs.Take(t.cfg.OutDir, true)
	if err != nil {
		return err
	}
	t.lock = lock
	for _, name := range []string{settings.CheckpointFile, settings.ConfigFile, trainlog.LastLineFile} {
		if err := outputs.RemoveStaleTemps(filepath.Join(t.cfg.OutDir, name)); err != nil {
			return err
		}
	}
	if t.cfg.Resume {
		return nil
	}
	if err := checkFresh(t.cfg); err != nil {
		return err
	}
	return clearOldRun(t.cfg.OutDir)
}

func (t *Trainer) close() {
	t.lock.Release()
	if t.opt != nil {
		t.opt.Close()
	}
	t.gen.Close()
	t.attackGen.Close()
	if t.model != nil {
		t.model.Close()
	}
}

// writeRunInfo records the resolved configuration, the processes and the
// versions used.
func (t *Trainer) writeRunInfo() error {
	if !t.group.Leader() {
		return nil
	}
	info := map[string]any{
		"config":     t.cfg,
		"threads":    torchbind.NumThreads(),
		"world_size": 1,
		"versions": map[string]string{
			"go":         runtime.Version(),
			"libtorch":   torchbind.Version(),
			"started_at": time.Now().UTC().Format(time.RFC3339),
		},
	}
	if t.group != nil {
		info["world_size"], info["backend"], info["launcher"] = t.group.World, t.group.Backend(), t.group.Launcher
	}
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(t.cfg.OutDir, settings.ConfigFile), append(b, '\n'))
}

// loop trains epochs start .. Epochs-1, logging and checkpointing each
// (in a group, rank 0 does).
func (t *Trainer) loop(ctx context.Context, start int) error {
	if !t.group.Leader() {
		for epoch := start; epoch < t.cfg.Epochs; epoch++ {
			if _, err := t.runEpoch(ctx, epoch); err != nil {
				return err
			}
		}
		return nil
	}
	log, err := trainlog.Create(t.cfg.OutDir, t.header(), start == 0)
	if err != nil {
		return err
	}
	defer log.Close()
	for epoch := start; epoch < t.cfg.Epochs; epoch++ {
		st, err := t.runEpoch(ctx, epoch)
		if err != nil {
			return err
		}
		// The checkpoint goes before the log line, so that log.txt never
		// claims an epoch the checkpoint lacks (trainlog.Writer.Pending).
		line := trainlog.Line(st, t.cfg.AdvTraining)
		if err := log.Pending(line); err != nil {
			return fmt.Errorf("epoch %d: %w", epoch, err)
		}
		if err := t.saveCheckpoint(epoch); err != nil {
			return fmt.Errorf("epoch %d checkpoint: %w", epoch, err)
		}
		if err := log.Append(line); err != nil {
			return err
		}
		fmt.Fprintf(t.out, "epoch %d: %.1fs, lr %.3g, train loss %.4f acc %.2f%%, test loss %.4f acc %.2f%%",
			epoch, st.Time.Seconds(), st.LR, st.TrainLoss, st.TrainAcc, st.TestLoss, st.TestAcc)
		if t.cfg.AdvTraining {
			fmt.Fprintf(t.out, " (noisy clean %.2f%%)", st.TestAccNoisy)
		}
		fmt.Fprintln(t.out)
	}
	return nil
}

// runEpoch trains and tests one epoch.
func (t *Trainer) runEpoch(ctx context.Context, epoch int) (trainlog.Stats, error) {
	if err := ctx.Err(); err != nil {
		return trainlog.Stats{}, err
	}
	st := trainlog.Stats{Epoch: epoch, LR: StepLR(t.cfg.LR, t.cfg.Gamma, t.cfg.LRStepSize, epoch)}
	t.opt.LR = st.LR
	began := time.Now()
	var err error
	if st.TrainLoss, st.TrainAcc, err = t.trainEpoch(ctx, epoch); err != nil {
		return st, err
	}
	// A diverged run stops before its checkpoint: the last one stays finite.
	if math.IsNaN(st.TrainLoss) || math.IsInf(st.TrainLoss, 0) {
		return st, fmt.Errorf("epoch %d: the training loss is %v: training diverged (try a smaller --lr); stopped, keeping the last finite checkpoint", epoch, st.TrainLoss)
	}
	if err := t.averageBatchNorm(); err != nil {
		return st, fmt.Errorf("epoch %d: %w", epoch, err)
	}
	if st.TestLoss, st.TestAcc, st.TestAccNoisy, err = t.testEpoch(ctx, epoch); err != nil {
		return st, fmt.Errorf("epoch %d test: %w", epoch, err)
	}
	st.Time = time.Since(began)
	return st, nil
}

// header is log.txt's first line for this training.
func (t *Trainer) header() string { return trainlog.Header(t.cfg.AdvTraining) }

// writeAtomic replaces path with b so that a crash leaves the old file or
// the new one, never a torn one.
func writeAtomic(path string, b []byte) error { return atomicfile.Write(path, b) }
