// Package dist places a process in a data-parallel job that torchrun or
// Slurm's srun launched, and joins the job's c10d process group (Gloo for
// the CPU, NCCL for CUDA) through a TCPStore, as PyTorch's env:// rendezvous
// does. A process launched alone has no group (nil), and everything runs as
// in a single process.
package dist

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env is where a process sits in a job, as its launcher's environment says.
type Env struct {
	Launcher    string // "torchrun" or "srun"
	Rank, World int
	// LocalRank is the process's rank on its node: it picks the node's GPU.
	LocalRank int
	// LocalWorld is how many processes share the node's CPU cores:
	// torchrun's LOCAL_WORLD_SIZE; 1 under srun, which binds each task to
	// CPUs of its own.
	LocalWorld int
	// MasterAddr and MasterPort are where the TCPStore is.
	MasterAddr string
	MasterPort int
	// AgentStore says that torchrun's agent serves the store (its static
	// rendezvous, TORCHELASTIC_USE_AGENT_STORE) and that keys go under
	// Prefix; otherwise rank 0 serves it.
	AgentStore bool
	Prefix     string
}

// DefaultTimeout bounds the rendezvous and every collective, as PyTorch's
// default process-group timeout does; TimeoutVar overrides it.
const (
	DefaultTimeout = 30 * time.Minute
	TimeoutVar     = "SMOOTHADV_DIST_TIMEOUT"
)

// FromEnv reads torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT), else those of an srun job step
// (SLURM_PROCID, SLURM_STEP_NUM_TASKS or SLURM_NTASKS, SLURM_LOCALID; the
// master is MASTER_ADDR, else the step's first node, and MASTER_PORT, else
// one derived from SLURM_JOB_ID). ok is false for a process launched alone:
// neither set of variables, or a world of one. A batch script that Slurm
// runs outside srun has no job step, and is alone too.
func FromEnv(getenv func(string) string) (env Env, ok bool, err error) {
	r := reader{getenv: getenv}
	switch {
	case getenv("RANK") != "" || getenv("WORLD_SIZE") != "":
		env = Env{Launcher: "torchrun", Rank: r.int("RANK", -1), World: r.int("WORLD_SIZE", -1)}
		env.LocalRank = r.int("LOCAL_RANK", max(env.Rank, 0))
		env.LocalWorld = r.int("LOCAL_WORLD_SIZE", 1)
		if getenv("LOCAL_WORLD_SIZE") != "" && env.LocalRank >= env.LocalWorld && r.err == nil {
			r.err = fmt.Errorf("LOCAL_RANK=%d: want a local rank in 0..%d (LOCAL_WORLD_SIZE=%d)", env.LocalRank, env.LocalWorld-1, env.LocalWorld)
		}
		env.MasterAddr = r.need("MASTER_ADDR")
		env.MasterPort = r.int("MASTER_PORT", -1)
		if getenv("TORCHELASTIC_USE_AGENT_STORE") == "True" {
			env.AgentStore = true
			env.Prefix = "/worker/attempt_" + getenv("TORCHELASTIC_RESTART_COUNT")
		}
	case getenv("SLURM_STEP_NUM_TASKS") != "":
		env = Env{Launcher: "srun", Rank: r.int("SLURM_PROCID", -1), World: r.int("SLURM_STEP_NUM_TASKS", -1),
			LocalRank: r.int("SLURM_LOCALID", 0), LocalWorld: 1}
		env.MasterAddr = getenv("MASTER_ADDR")
		if env.MasterAddr == "" {
			nodes := getenv("SLURM_STEP_NODELIST")
			if nodes == "" {
				nodes = r.need("SLURM_JOB_NODELIST")
			}
			if env.MasterAddr, err = firstHost(nodes); err != nil && r.err == nil {
				r.err = fmt.Errorf("SLURM_STEP_NODELIST: %w", err)
			}
		}
		if getenv("MASTER_PORT") != "" {
			env.MasterPort = r.int("MASTER_PORT", -1)
		} else {
			// Steps of one job on the same nodes share it: set MASTER_PORT
			// to run several at once.
			env.MasterPort = 12000 + r.int("SLURM_JOB_ID", -1)%20000
		}
	default:
		return Env{}, false, nil
	}
	if r.err != nil {
		return Env{}, false, fmt.Errorf("%s environment: %w", env.Launcher, r.err)
	}
	if err := env.checkRanks(); err != nil {
		return Env{}, false, fmt.Errorf("%s environment: %w", env.Launcher, err)
	}
	if env.MasterPort < 1 || env.MasterPort > 65535 {
		return Env{}, false, fmt.Errorf("%s environment: master port %d outside 1..65535", env.Launcher, env.MasterPort)
	}
	return env, env.World > 1, nil
}

// checkRanks says which rank variable is out of range, by the launcher's
// names for them.
func (env Env) checkRanks() error {
	names := map[string][4]string{
		"torchrun": {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"},
		"srun":     {"SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", ""},
	}[env.Launcher]
	switch {
	case env.World < 1:
		return fmt.Errorf("%s=%d: want the number of processes, >= 1", names[1], env.World)
	case env.Rank < 0 || env.Rank >= env.World:
		return fmt.Errorf("%s=%d: want a rank in 0..%d (%s=%d)", names[0], env.Rank, env.World-1, names[1], env.World)
	case env.LocalRank < 0:
		return fmt.Errorf("%s=%d: want a local rank >= 0", names[2], env.LocalRank)
	case env.LocalWorld < 1:
		return fmt.Errorf("%s=%d: want the number of processes on this node, >= 1", names[3], env.LocalWorld)
	}
	return nil
}

// Timeout is TimeoutVar's duration ("10m", "90s"), else DefaultTimeout.
func Timeout(getenv func(string) string) (time.Duration, error) {
	s := getenv(TimeoutVar)
	if s == "" {
		return DefaultTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 10m or 90s", TimeoutVar, s)
	}
	return d, nil
}

// reader reads variables, keeping the first problem.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) need(name string) string {
	v := r.getenv(name)
	if v == "" && r.err == nil {
		r.err = fmt.Errorf("%s is not set", name)
	}
	return v
}

// int reads name as an integer; def (when >= 0) stands in for an unset name.
func (r *reader) int(name string, def int) int {
	s := r.getenv(name)
	if s == "" && def >= 0 {
		return def
	}
	v, err := strconv.Atoi(r.need(name))
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("%s=%q is not an integer", name, s)
	}
	return v
}

// firstHost is the first host of a Slurm host list: "gpu[03-05,09],cpu1"
// starts with gpu03, "rack[1-2]-n[7,9]" with rack1-n7.
func firstHost(list string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(list); i++ {
		switch c := list[i]; c {
		case ',':
			return checkHost(b.String(), list)
		case '[':
			end := strings.IndexByte(list[i:], ']')
			if end < 0 {
				return "", fmt.Errorf("host list %q: unclosed [", list)
			}
			first := list[i+1 : i+end]
			if j := strings.IndexAny(first, ",-"); j >= 0 {
				first = first[:j]
			}
			b.WriteString(first)
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return checkHost(b.String(), list)
}

func checkHost(h, list string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("host list %q: no first host", list)
	}
	return h, nil
}
