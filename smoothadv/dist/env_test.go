package dist

import (
	"strings"
	"testing"
	"time"
)

func vars(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	torchrun := []string{"RANK", "3", "WORLD_SIZE", "4", "LOCAL_RANK", "1", "LOCAL_WORLD_SIZE", "2",
		"MASTER_ADDR", "node7", "MASTER_PORT", "29500", "TORCHELASTIC_USE_AGENT_STORE", "False"}
	// An srun step's variables, inside an allocation of 8 tasks.
	srun := []string{"SLURM_PROCID", "5", "SLURM_NTASKS", "8", "SLURM_STEP_NUM_TASKS", "6", "SLURM_LOCALID", "2",
		"SLURM_STEP_NODELIST", "gpu[03-05,09]", "SLURM_JOB_NODELIST", "gpu[01-09]", "SLURM_JOB_ID", "123456"}
	for _, c := range []struct {
		name string
		env  []string
		want Env
	}{
		{"torchrun", torchrun, Env{Launcher: "torchrun", Rank: 3, World: 4, LocalRank: 1, LocalWorld: 2, MasterAddr: "node7", MasterPort: 29500}},
		{"torchrun's static rendezvous", append(torchrun, "TORCHELASTIC_USE_AGENT_STORE", "True", "TORCHELASTIC_RESTART_COUNT", "2"),
			Env{Launcher: "torchrun", Rank: 3, World: 4, LocalRank: 1, LocalWorld: 2, MasterAddr: "node7", MasterPort: 29500, AgentStore: true, Prefix: "/worker/attempt_2"}},
		{"env:// by hand, no local rank", []string{"RANK", "1", "WORLD_SIZE", "2", "MASTER_ADDR", "10.0.0.1", "MASTER_PORT", "1234"},
			Env{Launcher: "torchrun", Rank: 1, World: 2, LocalRank: 1, LocalWorld: 1, MasterAddr: "10.0.0.1", MasterPort: 1234}},
		{"torchrun inside srun", append(append([]string{}, srun...), torchrun...),
			Env{Launcher: "torchrun", Rank: 3, World: 4, LocalRank: 1, LocalWorld: 2, MasterAddr: "node7", MasterPort: 29500}},
		{"srun", srun, Env{Launcher: "srun", Rank: 5, World: 6, LocalRank: 2, LocalWorld: 1, MasterAddr: "gpu03", MasterPort: 12000 + 123456%20000}},
		{"srun with a master given", append(srun, "MASTER_ADDR", "login1", "MASTER_PORT", "40000"),
			Env{Launcher: "srun", Rank: 5, World: 6, LocalRank: 2, LocalWorld: 1, MasterAddr: "login1", MasterPort: 40000}},
	} {
		got, ok, err := FromEnv(vars(c.env...))
		if err != nil || !ok || got != c.want {
			t.Errorf("%s: got %+v, %t, %v; want %+v", c.name, got, ok, err, c.want)
		}
	}
	for name, env := range map[string][]string{
		"nothing":        nil,
		"world of one":   {"RANK", "0", "WORLD_SIZE", "1", "MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"a batch script": {"SLURM_PROCID", "0", "SLURM_NTASKS", "8", "SLURM_JOB_NODELIST", "gpu[01-09]", "SLURM_JOB_ID", "9"},
		"srun -n 1":      {"SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "1", "SLURM_STEP_NODELIST", "a", "SLURM_JOB_ID", "9"},
	} {
		if got, ok, err := FromEnv(vars(env...)); err != nil || ok {
			t.Errorf("%s: got %+v, %t, %v; want a process alone", name, got, ok, err)
		}
	}
	for want, env := range map[string][]string{
		"MASTER_ADDR is not set":                     {"RANK", "0", "WORLD_SIZE", "2", "MASTER_PORT", "1"},
		`RANK="one" is not an integer`:               {"RANK", "one", "WORLD_SIZE", "2", "MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"RANK=2: want a rank in 0..1 (WORLD_SIZE=2)": {"RANK", "2", "WORLD_SIZE", "2", "MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"RANK=-1: want a rank in 0..1":               {"RANK", "-1", "WORLD_SIZE", "2", "MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"WORLD_SIZE=0: want the number of processes": {"RANK", "0", "WORLD_SIZE", "0", "MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"LOCAL_RANK=2: want a local rank in 0..1 (LOCAL_WORLD_SIZE=2)": {"RANK", "0", "WORLD_SIZE", "4", "LOCAL_RANK", "2", "LOCAL_WORLD_SIZE", "2",
			"MASTER_ADDR", "x", "MASTER_PORT", "1"},
		"SLURM_PROCID=3: want a rank in 0..1 (SLURM_STEP_NUM_TASKS=2)": {"SLURM_PROCID", "3", "SLURM_STEP_NUM_TASKS", "2",
			"SLURM_STEP_NODELIST", "a", "SLURM_JOB_ID", "1"},
		"master port 70000":               {"RANK", "0", "WORLD_SIZE", "2", "MASTER_ADDR", "x", "MASTER_PORT", "70000"},
		"SLURM_JOB_ID is not set":         {"SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "2", "SLURM_STEP_NODELIST", "a"},
		`host list "gpu[01-03": unclosed`: {"SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "2", "SLURM_STEP_NODELIST", "gpu[01-03", "SLURM_JOB_ID", "1"},
	} {
		if _, _, err := FromEnv(vars(env...)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want one saying %q", env, err, want)
		}
	}
}

func TestFirstHost(t *testing.T) {
	for list, want := range map[string]string{
		"node1":                 "node1",
		"node1,node2":           "node1",
		"gpu[03-05,09],cpu1":    "gpu03",
		"gpu[7,3]":              "gpu7",
		"rack[1-2]-n[007-009]x": "rack1-n007x",
	} {
		if got, err := firstHost(list); err != nil || got != want {
			t.Errorf("firstHost(%q) = %q, %v; want %q", list, got, err, want)
		}
	}
	for _, bad := range []string{"", ",a", "[]"} {
		if got, err := firstHost(bad); err == nil {
			t.Errorf("firstHost(%q) = %q, want an error", bad, got)
		}
	}
}

func TestTimeout(t *testing.T) {
	if d, err := Timeout(vars()); err != nil || d != DefaultTimeout {
		t.Errorf("unset: %v, %v; want %v", d, err, DefaultTimeout)
	}
	if d, err := Timeout(vars(TimeoutVar, "90s")); err != nil || d != 90*time.Second {
		t.Errorf("90s: %v, %v", d, err)
	}
	for _, bad := range []string{"soon", "-1m", "0s"} {
		if _, err := Timeout(vars(TimeoutVar, bad)); err == nil {
			t.Errorf("%s=%q accepted", TimeoutVar, bad)
		}
	}
}
