package devicename

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]struct {
		kind  string
		index int
	}{
		"auto": {Auto, -1}, "cpu": {CPU, -1}, "cuda": {CUDA, -1}, "cuda:0": {CUDA, 0}, "cuda:12": {CUDA, 12},
	} {
		kind, index, err := Parse(in)
		if err != nil || kind != want.kind || index != want.index {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", in, kind, index, err, want.kind, want.index)
		}
	}
	for in, want := range map[string]string{
		"cpu:1":   `device "cpu:1": cpu takes no index (want auto, cpu, cuda or cuda:N)`,
		"auto:0":  `device "auto:0": auto takes no index`,
		"gpu":     `unknown device "gpu" (want auto, cpu, cuda or cuda:N)`,
		"":        `unknown device ""`,
		"CUDA:0":  `unknown device "CUDA:0"`,
		"cuda:":   `device "cuda:": GPU index "" is not a number 0, 1, ...`,
		"cuda:x":  `device "cuda:x": GPU index "x" is not a number`,
		"cuda:-1": `device "cuda:-1": GPU index "-1" is not a number`,
		"cuda:01": `device "cuda:01": GPU index "01" is not a number`,
	} {
		if err := Check(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v; want an error containing %q", in, err, want)
		}
	}
}
