package certify

import (
	"slices"
	"testing"
)

func TestSelectionIndices(t *testing.T) {
	for _, tt := range []struct {
		sel  Selection
		want []int
	}{
		{Selection{5, 1, -1}, []int{0, 1, 2, 3, 4}},
		{Selection{10, 3, -1}, []int{0, 3, 6, 9}},
		// Max is an index: the loop stops when it reaches it, unprocessed.
		{Selection{10, 1, 4}, []int{0, 1, 2, 3}},
		{Selection{100, 20, 60}, []int{0, 20, 40}},
		// A max that is never a processed index never stops the loop.
		{Selection{10, 3, 4}, []int{0, 3, 6, 9}},
		{Selection{10, 1, 0}, nil},
		{Selection{0, 1, -1}, nil},
	} {
		got, err := tt.sel.Indices()
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%+v.Indices() = %v, %v; want %v", tt.sel, got, err, tt.want)
		}
	}
	for _, bad := range []Selection{{-1, 1, -1}, {10, 0, -1}, {10, 1, -2}} {
		if _, err := bad.Indices(); err == nil {
			t.Errorf("%+v.Indices(): want an error", bad)
		}
	}
}

// The shards of a selection partition it.
func TestSelectionShardsPartition(t *testing.T) {
	sel := Selection{DatasetLen: 10000, Skip: 20, Max: -1}
	all, err := sel.Indices()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 7, 500, 501} {
		var union []int
		for i := range n {
			part, err := sel.Shard(Shard{i, n})
			if err != nil {
				t.Fatal(err)
			}
			union = append(union, part...)
		}
		slices.Sort(union)
		if !slices.Equal(union, all) {
			t.Errorf("%d shards: union has %d indices, want the %d selected", n, len(union), len(all))
		}
	}
	got, err := sel.Shard(Shard{1, 3})
	if err != nil || !slices.Equal(got[:3], []int{20, 80, 140}) {
		t.Errorf("shard 1/3 starts %v, %v; want [20 80 140]", got[:3], err)
	}
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestParseShard(t *testing.T) {
	slurm := map[string]string{"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "8"}
	slurmStepped := map[string]string{
		"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4",
		"SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2",
	}
	k8s := map[string]string{"JOB_COMPLETION_INDEX": "3"}
	for _, tt := range []struct {
		s    string
		env  map[string]string
		want Shard
	}{
		{"", slurm, Whole}, // the environment is only read on request
		{"2/5", slurm, Shard{2, 5}},
		{"0/1", nil, Whole},
		{"auto", slurm, Shard{5, 8}},
		{"auto", slurmStepped, Shard{3, 4}}, // ids 1, 3, 5, 7
		{"auto/8", slurm, Shard{5, 8}},
		{"auto/4", k8s, Shard{3, 4}},
	} {
		got, err := ParseShard(tt.s, env(tt.env))
		if err != nil || got != tt.want {
			t.Errorf("ParseShard(%q, %v) = %v, %v; want %v", tt.s, tt.env, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		s   string
		env map[string]string
	}{
		{"5/5", nil}, {"-1/5", nil}, {"1/0", nil}, {"a/b", nil}, {"3", nil}, {"1/2/3", nil},
		{"auto", nil},     // not in a Slurm array
		{"auto", k8s},     // Kubernetes does not publish the count
		{"auto/4", nil},   // no index anywhere
		{"auto/3", k8s},   // index 3 of 3
		{"auto/4", slurm}, // Slurm says 8 tasks
		{"auto", map[string]string{"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "3",
			"SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2"}}, // 6 is not 1 + 2k
		{"auto", map[string]string{"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "3"}},
	} {
		if got, err := ParseShard(tt.s, env(tt.env)); err == nil {
			t.Errorf("ParseShard(%q, %v) = %v; want an error", tt.s, tt.env, got)
		}
	}
}
