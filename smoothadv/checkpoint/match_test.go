package checkpoint

import (
	"path/filepath"
	"strings"
	"testing"
)

func entries(prefix string) []Entry {
	return []Entry{
		{prefix + "conv1.weight", &Tensor{DType: Float32, Shape: []int64{16, 3, 3, 3}}},
		{prefix + "bn1.num_batches_tracked", &Tensor{DType: Int64, Shape: []int64{}}},
		{prefix + "fc.weight", &Tensor{DType: Float32, Shape: []int64{10, 64}}},
	}
}

func specs(prefix string) []Spec {
	return []Spec{
		{prefix + "fc.weight", []int64{10, 64}, Float32},
		{prefix + "conv1.weight", []int64{16, 3, 3, 3}, Float32},
		{prefix + "bn1.num_batches_tracked", []int64{}, Int64},
	}
}

var prefixes = []string{"", "1.", "1.module.", "module."}

func TestMatchAcrossLayouts(t *testing.T) {
	for _, sp := range prefixes {
		sd := entries(sp)
		for _, wp := range prefixes {
			want := specs(wp)
			got, err := Match(sd, want)
			if err != nil {
				t.Errorf("%q onto %q: %v", sp, wp, err)
				continue
			}
			for i, e := range got {
				if e.Name != want[i].Name || e.Tensor.DType != want[i].DType {
					t.Errorf("%q onto %q: entry %d is %s %s, want %s", sp, wp, i, e.Name, e.Tensor.DType, want[i].Name)
				}
			}
		}
	}
}

func TestDetectLayout(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   Layout
	}{
		{"", Layout{}},
		{"1.", Layout{Normalized: true}},
		{"1.module.", Layout{Normalized: true, DataParallel: true}},
		{"module.", Layout{DataParallel: true}},
	} {
		if got := DetectLayout(entries(tc.prefix)); got != tc.want || got.Prefix() != tc.prefix {
			t.Errorf("%q: got %+v (prefix %q), want %+v", tc.prefix, got, got.Prefix(), tc.want)
		}
	}
	mixed := append(entries("1."), Entry{"conv9.weight", &Tensor{}})
	if got := DetectLayout(mixed); got != (Layout{}) {
		t.Errorf("mixed prefixes: got %+v, want none", got)
	}
}

func TestMatchNamesTheFirstProblem(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(sd []Entry, want []Spec) ([]Entry, []Spec)
		msg  string
	}{
		{"missing", func(sd []Entry, want []Spec) ([]Entry, []Spec) { return sd[:2], want },
			`missing "fc.weight" (model wants float32 [10 64]) (1 problems in all)`},
		{"left over", func(sd []Entry, want []Spec) ([]Entry, []Spec) { return sd, want[:2] },
			`unexpected key "1.bn1.num_batches_tracked" (int64 [])`},
		{"shape", func(sd []Entry, want []Spec) ([]Entry, []Spec) {
			want[0].Shape = []int64{1000, 64}
			return sd, want
		}, `"1.fc.weight": checkpoint has float32 [10 64], model wants float32 [1000 64]`},
		{"dtype", func(sd []Entry, want []Spec) ([]Entry, []Spec) {
			want[2].DType = Float32
			return sd, want
		}, `"1.bn1.num_batches_tracked": checkpoint has int64 [], model wants float32 []`},
		{"duplicate", func(sd []Entry, want []Spec) ([]Entry, []Spec) { return append(sd, sd[0]), want },
			`key "1.conv1.weight" twice`},
	} {
		sd, want := tc.edit(entries("1."), specs(""))
		if _, err := Match(sd, want); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one saying %s", tc.name, err, tc.msg)
		}
	}
}

// specOf builds the spec of a reference architecture from what
// make_fixtures.py wrote, with the net's own names (no prefix).
func specOf(t *testing.T, dir, name string) []Spec {
	var want []Spec
	for _, w := range readWant(t, dir, name).StateDict {
		n := strings.TrimPrefix(strings.TrimPrefix(w.Name, "1."), "module.")
		want = append(want, Spec{Name: n, Shape: w.Shape, DType: w.DType})
	}
	return want
}

func TestMatchReferenceArchitectures(t *testing.T) {
	dir := fixtures(t)
	load := func(name string) []Entry {
		c, err := Load(filepath.Join(dir, name+"_zip.pth.tar"))
		if err != nil {
			t.Fatal(err)
		}
		return c.StateDict
	}
	resnet20, resnet50 := load("cifar_resnet20"), load("resnet50")
	if got, err := Match(resnet20, specOf(t, dir, "cifar_resnet20")); err != nil || got[0].Name != "conv1.weight" {
		t.Errorf("cifar_resnet20: %v", err)
	}
	if got, err := Match(resnet50, specOf(t, dir, "resnet50")); err != nil || len(got) != len(resnet50) {
		t.Errorf("resnet50: %v", err)
	}
	if l := DetectLayout(resnet50); l != (Layout{Normalized: true, DataParallel: true}) {
		t.Errorf("resnet50 layout %+v, want 1.module.", l)
	}
	_, err := Match(resnet20, specOf(t, dir, "cifar_resnet110"))
	if err == nil || !strings.Contains(err.Error(), `missing "layer1.3.conv1.weight"`) {
		t.Errorf("cifar_resnet20 against cifar_resnet110: error %v", err)
	}
	_, err = Match(resnet50, specOf(t, dir, "cifar_resnet20"))
	if err == nil || !strings.Contains(err.Error(), `"1.module.conv1.weight": checkpoint has float32 [64 3 7 7], model wants float32 [16 3 3 3]`) {
		t.Errorf("resnet50 against cifar_resnet20: error %v", err)
	}
}

// TestMatchHintsAtAWrapperPrefix: a state dict saved from a DataParallel
// around the whole Sequential ("module.1.conv1.weight") is refused with a
// hint at the prefix, not only as missing keys.
func TestMatchHintsAtAWrapperPrefix(t *testing.T) {
	w := &Tensor{DType: Float32, Shape: []int64{2}}
	sd := []Entry{{Name: "module.1.conv1.weight", Tensor: w}, {Name: "module.1.fc.bias", Tensor: w}}
	want := []Spec{{Name: "1.conv1.weight", DType: Float32, Shape: []int64{2}}, {Name: "1.fc.bias", DType: Float32, Shape: []int64{2}}}
	_, err := Match(sd, want)
	if err == nil || !strings.Contains(err.Error(), `every key of the checkpoint starts with "module."`) {
		t.Errorf("wrapped state dict: %v", err)
	}
}
