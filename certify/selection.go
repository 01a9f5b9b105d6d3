package certify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Selection is the reference's choice of examples: index i of a split of
// DatasetLen examples is processed when i % Skip == 0, and the loop stops at
// the first processed index equal to Max (an index, not a count; -1 means
// no limit), without processing it.
type Selection struct {
	DatasetLen int
	Skip       int
	Max        int
}

// Indices returns the selected indices in increasing order.
func (s Selection) Indices() ([]int, error) {
	if s.DatasetLen < 0 || s.Skip < 1 || s.Max < -1 {
		return nil, fmt.Errorf("example selection: need dataset length >= 0, skip >= 1 and max >= -1, got %d, %d, %d",
			s.DatasetLen, s.Skip, s.Max)
	}
	var out []int
	for i := 0; i < s.DatasetLen && i != s.Max; i += s.Skip {
		out = append(out, i)
	}
	return out, nil
}

// Shard returns the indices of one shard: every Count-th selected index,
// starting from the Index-th.
func (s Selection) Shard(sh Shard) ([]int, error) {
	if err := sh.validate(); err != nil {
		return nil, err
	}
	all, err := s.Indices()
	if err != nil {
		return nil, err
	}
	var out []int
	for j := sh.Index; j < len(all); j += sh.Count {
		out = append(out, all[j])
	}
	return out, nil
}

// Shard is part Index (from 0) of a run split into Count parts.
type Shard struct {
	Index, Count int
}

// Whole is the unsplit run.
var Whole = Shard{Index: 0, Count: 1}

func (sh Shard) String() string { return fmt.Sprintf("%d/%d", sh.Index, sh.Count) }

func (sh Shard) validate() error {
	if sh.Count < 1 || sh.Index < 0 || sh.Index >= sh.Count {
		return fmt.Errorf("part %d of %d: need 0 <= i < n", sh.Index, sh.Count)
	}
	return nil
}

// Environment variables that ParseShard reads.
const (
	// Slurm job arrays (sbatch --array=0-7): the task's id and the number
	// of tasks; MIN and STEP map ids such as --array=1-15:2 to 0, 1, ....
	envSlurmID    = "SLURM_ARRAY_TASK_ID"
	envSlurmCount = "SLURM_ARRAY_TASK_COUNT"
	envSlurmMin   = "SLURM_ARRAY_TASK_MIN"
	envSlurmStep  = "SLURM_ARRAY_TASK_STEP"
	// Kubernetes Jobs with completionMode: Indexed: the pod's index, from
	// 0. The number of completions is not in the environment.
	envK8sIndex = "JOB_COMPLETION_INDEX"
)

// ParseShard reads a --shard value; lookup is os.LookupEnv outside tests.
//
//   - "" is the whole run.
//   - "i/n" is part i of n, 0 <= i < n.
//   - "auto" takes both from a Slurm job array: the part from
//     SLURM_ARRAY_TASK_ID (minus SLURM_ARRAY_TASK_MIN, divided by
//     SLURM_ARRAY_TASK_STEP, when those are set) and n from
//     SLURM_ARRAY_TASK_COUNT.
//   - "auto/n" is part i of n with i from JOB_COMPLETION_INDEX (a Kubernetes
//     indexed Job, which does not publish n: give the Job's completions),
//     or else from the Slurm array as above.
//
// Automatic sharding is opt-in because job arrays are just as often used
// for sweeps over settings, where each task must process every example.
func ParseShard(s string, lookup func(string) (string, bool)) (Shard, error) {
	first, second, hasCount := strings.Cut(s, "/")
	var sh Shard
	var err error
	switch {
	case s == "":
		return Whole, nil
	case s == "auto":
		if sh.Count, err = envInt(lookup, envSlurmCount); err == nil {
			sh.Index, err = slurmIndex(lookup, sh.Count)
		}
	case hasCount:
		var errI, errN error
		sh.Count, errN = strconv.Atoi(second)
		switch {
		case errN != nil:
			err = errors.New("want i/n, auto or auto/n, with n a whole number")
		case first == "auto":
			sh.Index, err = autoIndex(lookup, sh.Count)
		default:
			if sh.Index, errI = strconv.Atoi(first); errI != nil {
				err = errors.New("want i/n, auto or auto/n, with i a whole number")
			}
		}
	default:
		err = errors.New("want i/n, auto or auto/n")
	}
	if err == nil {
		err = sh.validate()
	}
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", s, err)
	}
	return sh, nil
}

// autoIndex returns the part number for "auto/n".
func autoIndex(lookup func(string) (string, bool), count int) (int, error) {
	if _, ok := lookup(envK8sIndex); ok {
		return envInt(lookup, envK8sIndex)
	}
	if _, ok := lookup(envSlurmID); !ok {
		return 0, fmt.Errorf("neither %s nor %s is set", envK8sIndex, envSlurmID)
	}
	if _, ok := lookup(envSlurmCount); ok {
		n, err := envInt(lookup, envSlurmCount)
		if err != nil {
			return 0, err
		}
		if n != count {
			return 0, fmt.Errorf("the Slurm array has %d tasks, not %d", n, count)
		}
	}
	return slurmIndex(lookup, count)
}

// slurmIndex maps the Slurm array task id to 0 .. count-1.
func slurmIndex(lookup func(string) (string, bool), count int) (int, error) {
	id, err := envInt(lookup, envSlurmID)
	if err != nil {
		return 0, err
	}
	minID, step := 0, 1
	if _, ok := lookup(envSlurmMin); ok {
		if minID, err = envInt(lookup, envSlurmMin); err != nil {
			return 0, err
		}
	}
	if _, ok := lookup(envSlurmStep); ok {
		if step, err = envInt(lookup, envSlurmStep); err != nil {
			return 0, err
		}
	}
	if step < 1 || id < minID || (id-minID)%step != 0 || (id-minID)/step >= count {
		return 0, fmt.Errorf("cannot map Slurm task id %d (min %d, step %d) to one of %d parts; give --shard i/n", id, minID, step, count)
	}
	return (id - minID) / step, nil
}

func envInt(lookup func(string) (string, bool), name string) (int, error) {
	s, ok := lookup(name)
	if !ok {
		return 0, fmt.Errorf("%s is not set", name)
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, s)
	}
	return v, nil
}
