package train

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"

	"github.com/smoothadv/smoothadv/internal/progress"
	"github.com/smoothadv/smoothadv/smoothadv/data"
	"github.com/smoothadv/smoothadv/smoothadv/dist"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
	"github.com/smoothadv/smoothadv/torchbind"
)

// Data-parallel training, as the reference's DataParallel and PyTorch's
// DistributedDataParallel: each of the W processes of a dist.Group trains
// a replica on its share of every batch (the batch stays the global one).
// Every process draws the same order, augmentation and noise for the whole
// batch and keeps its share, so that an image gets what it gets in a single
// process; gradients are averaged before every optimizer step, so the
// replicas stay equal. BatchNorm statistics are each process's own during
// an epoch, and averaged after it, before the test and the checkpoint. Only
// rank 0 writes files.

// RunIn trains as Run does, as one process of g (nil: a process alone,
// which is Run). Every process of g must call it with the same cfg, its
// Device aside.
func RunIn(ctx context.Context, cfg settings.Config, g *dist.Group, out io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid training configuration:\n%w", err)
	}
	if chunks := trainChunks(cfg); g != nil && cfg.Batch%(g.World*chunks) != 0 {
		return fmt.Errorf("batch %d does not split evenly over %d processes (each cuts its share into %d noise-vector chunks): use a multiple of %d",
			cfg.Batch, g.World, chunks, g.World*chunks)
	}
	t, start, err := newTrainer(cfg, g, out)
	if err != nil {
		return err
	}
	defer t.close()
	if err := t.loop(ctx, start); err != nil {
		return err
	}
	// Every process returns once rank 0 has written the last epoch.
	return t.barrier()
}

// trainChunks is how many runs a training step cuts a batch into, a noise
// chunk or a mini-batch each (MACER takes the batch whole): each process
// takes its part of every run.
func trainChunks(c settings.Config) int {
	if c.Method == settings.MACER {
		return 1
	}
	return c.NumNoiseVec
}

// processesHere is how many training processes share this node's cores.
func processesHere(g *dist.Group) int {
	if g == nil {
		return 1
	}
	return g.LocalWorld
}

// join connects t's group, if any, for the model's device; a process other
// than rank 0 shows no progress and prints no summaries.
func (t *Trainer) join() error {
	if t.group == nil {
		return nil
	}
	if err := t.group.Connect(t.cfg.Device); err != nil {
		return err
	}
	if !t.group.Leader() {
		t.progress, t.out = progress.Nop{}, io.Discard
	}
	return nil
}

// shard is this process's share of each batch, in chunks of the noise
// vectors for training (0: the test's uneven split).
func (t *Trainer) shard(chunks int) data.Shard {
	if t.group == nil {
		return data.Shard{}
	}
	return data.Shard{Index: t.group.Rank, Count: t.group.World, Chunks: chunks}
}

// syncModel checks that every process starts the same run at the same
// epoch (a resume reads the checkpoint where every process can see it) and
// gives every replica rank 0's parameters and buffers.
func (t *Trainer) syncModel(start int) error {
	if t.group == nil {
		return nil
	}
	s := torchbind.NewScope()
	defer s.Close()
	mine := []int64{int64(start), t.fingerprint()}
	got := s.FromInt64(mine, t.model.Device(), 2)
	if err := s.Err(); err != nil {
		return err
	}
	if err := t.group.Broadcast([]*torchbind.Tensor{got}); err != nil {
		return err
	}
	lead, err := got.Int64s()
	if err != nil {
		return err
	}
	switch {
	case lead[1] != mine[1]:
		return fmt.Errorf("rank 0 trains other settings than this process: every process must be given the same ones")
	case lead[0] != mine[0]:
		return fmt.Errorf("this process would start at epoch %d, rank 0 at epoch %d: every process must see the same %s (a folder that all of them share)",
			start, lead[0], settings.CheckpointFile)
	}
	params, err := t.model.Parameters()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(params)
	bufs, err := t.model.Buffers()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(bufs)
	return t.group.Broadcast(tensors(append(params, bufs...)))
}

// fingerprint hashes the settings every process must share: all but where
// each finds its GPU and its data, and how it reads them.
func (t *Trainer) fingerprint() int64 {
	cfg := t.cfg
	cfg.Device, cfg.DataDir, cfg.Workers = "", "", 0
	b, _ := json.Marshal(cfg)
	h := fnv.New64a()
	h.Write(b)
	return int64(h.Sum64())
}

// syncGradients replaces every gradient by its mean over the processes.
func (t *Trainer) syncGradients() error {
	if t.group == nil {
		return nil
	}
	s := torchbind.NewScope()
	defer s.Close()
	var grads []*torchbind.Tensor
	for _, p := range t.opt.Params {
		// A parameter the loss does not reach has no gradient, on every
		// process alike.
		if g := s.GradOf(p.T); g != nil {
			grads = append(grads, g)
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	return t.group.AllReduce(grads, true)
}

// averageBatchNorm replaces BatchNorm's running statistics by their mean
// over the processes, so that the test and the checkpoint do not depend on
// which process made them.
func (t *Trainer) averageBatchNorm() error {
	if t.group == nil {
		return nil
	}
	bufs, err := t.model.Buffers()
	if err != nil {
		return err
	}
	defer torchbind.CloseAll(bufs)
	var stats []*torchbind.Tensor
	for _, b := range bufs {
		if strings.HasSuffix(b.Name, ".running_mean") || strings.HasSuffix(b.Name, ".running_var") {
			stats = append(stats, b.T)
		}
	}
	return t.group.AllReduce(stats, true)
}

// reduceMeters makes each meter hold the sum and count over the processes.
func (t *Trainer) reduceMeters(ms ...*meter) error {
	if t.group == nil {
		return nil
	}
	s := torchbind.NewScope()
	defer s.Close()
	var ts []*torchbind.Tensor
	for _, m := range ms {
		if m.sum == nil { // nothing on this process's share
			m.sum = s.Keep(s.Zeros(torchbind.Float64, t.model.Device()))
		}
		ts = append(ts, m.sum, s.FromInt64([]int64{int64(m.n)}, t.model.Device(), 1))
	}
	if err := s.Err(); err != nil {
		return err
	}
	if err := t.group.AllReduce(ts, false); err != nil {
		return err
	}
	for i, m := range ms {
		n, err := ts[2*i+1].Int64s()
		if err != nil {
			return err
		}
		m.n = float64(n[0])
	}
	return nil
}

// noise is N(0, NoiseSD^2) noise for x, which holds rows [lo, lo + len(x))
// of a batch of whole rows: in a group the whole batch's noise is drawn, as
// a process alone draws it, and cut.
func (t *Trainer) noise(s *torchbind.Scope, x *torchbind.Tensor, lo, whole int64) *torchbind.Tensor {
	if t.group == nil || s.Err() != nil {
		return s.RandnLike(x, t.cfg.NoiseSD, t.gen)
	}
	shape := x.Shape()
	rows := shape[0]
	shape[0] = whole
	return s.Narrow(s.Randn(t.gen, t.cfg.NoiseSD, t.model.Device(), shape...), 0, lo, rows)
}

// trainNoise is the noise of a chunk's tiled inputs: every process holds as
// many rows, in rank order.
func (t *Trainer) trainNoise(s *torchbind.Scope, inputs *torchbind.Tensor) *torchbind.Tensor {
	if t.group == nil || s.Err() != nil {
		return t.noise(s, inputs, 0, 0)
	}
	rows := inputs.Shape()[0]
	return t.noise(s, inputs, int64(t.group.Rank)*rows, int64(t.group.World)*rows)
}

// trainRand is n uniform [0, 1) draws for a chunk's images: the whole
// chunk's, cut as trainNoise cuts its noise.
func (t *Trainer) trainRand(s *torchbind.Scope, n int64) *torchbind.Tensor {
	if t.group == nil {
		return s.Rand(t.gen, t.model.Device(), n)
	}
	return s.Narrow(s.Rand(t.gen, t.model.Device(), int64(t.group.World)*n), 0, int64(t.group.Rank)*n, n)
}

// testNoise is the noise of x, this process's share of test batch k.
func (t *Trainer) testNoise(s *torchbind.Scope, x *torchbind.Tensor, k int) *torchbind.Tensor {
	if t.group == nil || s.Err() != nil {
		return t.noise(s, x, 0, 0)
	}
	whole := min(t.cfg.Batch, t.test.Len()-k*t.cfg.Batch)
	lo, _ := t.shard(0).Range(whole)
	return t.noise(s, x, int64(lo), int64(whole))
}

// attackStream sets apart each process's attack draws (rank 0's are those
// of a process alone): they are drawn for its own images.
func (t *Trainer) attackStream() uint64 {
	if t.group == nil {
		return 0
	}
	return uint64(t.group.Rank) << 40
}

// barrier waits for every process.
func (t *Trainer) barrier() error {
	if t.group == nil {
		return nil
	}
	return t.group.Barrier()
}

func tensors(ns []torchbind.Named) []*torchbind.Tensor {
	ts := make([]*torchbind.Tensor, len(ns))
	for i, n := range ns {
		ts[i] = n.T
	}
	return ts
}
