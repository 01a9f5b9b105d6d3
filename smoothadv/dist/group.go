package dist

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/torchbind"
)

// BucketBytes is the most one all-reduce or broadcast message carries, as
// DistributedDataParallel's default bucket (25 MiB).
const BucketBytes = 25 << 20

// Store keys of the failure protocol (see Close).
const (
	failureKey = "smoothadv/failure"
	leftKey    = "smoothadv/left"
)

// lingerMax bounds how long the process that serves the store stays, after
// failing on its own, for the others to read why.
const lingerMax = 30 * time.Second

// Group is a process's place in a launched job. It joins the job's process
// group on Connect, when the device (and so the backend) is known, and stays
// in it until Close. Its collectives are blocking; the first that fails
// (a peer has gone, or timed out) marks the group broken.
type Group struct {
	Env
	timeout time.Duration
	device  string
	backend string
	store   *torchbind.Store
	pg      *torchbind.ProcessGroup
	broken  error
}

// Launched returns the group of the job this process was launched into, not
// yet connected, or nil for a process launched alone.
func Launched() (*Group, error) {
	env, ok, err := FromEnv(os.Getenv)
	if err != nil || !ok {
		return nil, err
	}
	timeout, err := Timeout(os.Getenv)
	if err != nil {
		return nil, err
	}
	return New(env, timeout), nil
}

// New returns the group of env, not yet connected; timeout bounds the
// rendezvous and every collective.
func New(env Env, timeout time.Duration) *Group { return &Group{Env: env, timeout: timeout} }

// Leader reports whether this process writes the job's files: rank 0, or a
// process launched alone (g nil).
func (g *Group) Leader() bool { return g == nil || g.Rank == 0 }

// Backend is "gloo" or "nccl" once connected.
func (g *Group) Backend() string { return g.backend }

// Device resolves a device name as users write it for this process: "auto"
// and "cuda" pick GPU LocalRank (modulo the GPUs it sees), so that the
// processes on a node take one GPU each however CUDA_VISIBLE_DEVICES is set;
// "cpu" and "cuda:N" stay as they are. Alone (g nil) it is
// torchbind.ResolveDevice.
func (g *Group) Device(name string) (string, error) {
	dev, err := torchbind.ResolveDevice(name)
	if err != nil || g == nil || (name != "auto" && name != "cuda") || !strings.HasPrefix(dev, "cuda") {
		return dev, err
	}
	n, err := torchbind.CUDADeviceCount()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("cuda:%d", g.LocalRank%n), nil
}

// Connect joins the process group for tensors on device (a resolved name):
// Gloo for the CPU, NCCL for CUDA. Later calls must name the same kind of
// device.
func (g *Group) Connect(device string) error {
	backend := "gloo"
	if strings.HasPrefix(device, "cuda") {
		backend = "nccl"
	}
	if g.pg != nil {
		if backend != g.backend {
			return fmt.Errorf("the process group runs %s (for %s): it cannot train on %s", g.backend, g.device, device)
		}
		return nil
	}
	if !slices.Contains(torchbind.DistBackends(), backend) {
		return fmt.Errorf("training on %s in a process group needs c10d's %s backend, which this build of the shims lacks (built: %v): see README, Data-parallel training",
			device, backend, torchbind.DistBackends())
	}
	where := fmt.Sprintf("rank %d of %d, store at %s:%d", g.Rank, g.World, g.MasterAddr, g.MasterPort)
	type joined struct {
		st  *torchbind.Store
		pg  *torchbind.ProcessGroup
		err error
	}
	done := make(chan joined, 1)
	go func() {
		st, pg, err := g.rendezvous(where, backend)
		done <- joined{st, pg, err}
	}()
	// libtorch's store bounds its own waits by the timeout, but not a
	// handshake with a server that accepts and never answers: the whole
	// rendezvous is bounded here too. A rendezvous given up on is left to
	// the process's exit, which the error leads to.
	select {
	case j := <-done:
		if j.err != nil {
			return j.err
		}
		g.store, g.pg, g.device, g.backend = j.st, j.pg, device, backend
		return nil
	case <-time.After(g.timeout + rendezvousSlack):
		return fmt.Errorf("rendezvous (%s): no answer within %v (%s sets it): is MASTER_ADDR:MASTER_PORT the job's rank 0?", where, g.timeout, TimeoutVar)
	}
}

// rendezvousSlack is how long past the timeout Connect waits for libtorch
// to give up by itself.
const rendezvousSlack = 5 * time.Second

// rendezvous connects the store and the process group.
func (g *Group) rendezvous(where, backend string) (*torchbind.Store, *torchbind.ProcessGroup, error) {
	serve := g.Rank == 0 && !g.AgentStore
	st, err := torchbind.NewStore(g.MasterAddr, g.MasterPort, serve, g.World, g.Prefix, g.timeout)
	if err != nil {
		return nil, nil, fmt.Errorf("rendezvous (%s): %w", where, err)
	}
	pg, err := torchbind.NewProcessGroup(st, g.Rank, g.World, backend, g.timeout)
	if err != nil {
		st.Close()
		return nil, nil, fmt.Errorf("rendezvous (%s, %s): %w; not every process joined within %v (%s sets it): did all %d start, with the same MASTER_ADDR and MASTER_PORT?",
			where, backend, err, g.timeout, TimeoutVar, g.World)
	}
	return st, pg, nil
}

// AllReduce sums ts in place over the processes (their mean with average),
// in buckets of up to BucketBytes.
func (g *Group) AllReduce(ts []*torchbind.Tensor, average bool) error {
	return g.collective("all-reduce", g.pg.AllReduce(ts, average, BucketBytes))
}

// Broadcast overwrites ts with rank 0's.
func (g *Group) Broadcast(ts []*torchbind.Tensor) error {
	return g.collective("broadcast", g.pg.Broadcast(ts, 0, BucketBytes))
}

// Barrier returns when every process has reached it.
func (g *Group) Barrier() error { return g.collective("barrier", g.pg.Barrier()) }

func (g *Group) collective(op string, err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s over %d processes: %w", op, g.World, err)
	if g.broken == nil {
		g.broken = err
	}
	return err
}

// Close leaves the group after this process's outcome err, and returns the
// error the process should exit with (nil on success). A process that
// failed on its own records its error in the store and leaves, closing its
// connections, so that its peers' next collective fails at once; a process
// whose collective failed reports that process's error from the store, when
// there is one. The process that serves the store stays, after its own
// failure, until the others have read it (at most lingerMax). Close(nil)
// does not wait for the others. A nil group returns err.
func (g *Group) Close(err error) error {
	if g == nil {
		return err
	}
	defer g.store.Close()
	defer g.pg.Close()
	switch {
	case err == nil:
		return nil
	case g.pg == nil: // never joined: the others cannot be told
		return fmt.Errorf("rank %d: %w", g.Rank, err)
	case g.broken != nil:
		cause, ok, _ := g.store.Get(failureKey)
		g.pg.Close()
		// Counted for the failed process that serves the store; it may have gone.
		g.store.Add(leftKey, 1)
		if ok {
			return fmt.Errorf("rank %d stopped because %s", g.Rank, cause)
		}
		return fmt.Errorf("rank %d: %w (another process has left: its own output says why)", g.Rank, err)
	}
	// Best effort: this process's error is returned below in any case.
	g.store.Set(failureKey, []byte(fmt.Sprintf("rank %d failed: %v", g.Rank, err)))
	g.pg.Close()
	if g.Rank == 0 && !g.AgentStore {
		deadline := time.Now().Add(min(g.timeout, lingerMax))
		for time.Now().Before(deadline) {
			if n, err := g.store.Add(leftKey, 0); err != nil || n >= int64(g.World-1) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fmt.Errorf("rank %d: %w", g.Rank, err)
}
