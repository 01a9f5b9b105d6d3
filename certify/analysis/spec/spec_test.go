package spec

import (
	"bufio"
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify/analysis/internal/reftest"
	"github.com/smoothadv/smoothadv/internal/filetest"
)

// TestExampleReproducesTable2 runs configs/analysis/table2_cifar10.yaml and
// compares what it writes with what the reference code wrote from the same
// logs.
func TestExampleReproducesTable2(t *testing.T) {
	ref := reftest.Dir(t)
	out := t.TempDir()
	example := filepath.Join(reftest.Repo(t), "configs", "analysis", "table2_cifar10.yaml")
	s, err := Load(example, out)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := s.Run(&stdout); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cohen_cifar10_certified_outer_envelop", "our_cifar10_certified_outer_envelop"} {
		got, want := filetest.Read(t, filepath.Join(out, name)), filetest.Read(t, filepath.Join(ref, "analysis", "latex_new", name))
		if got != want {
			t.Errorf("%s:\ngot\n%s\nreference\n%s", name, got, want)
		}
	}
	// The best-model files name models by legend here and by path in the
	// reference; radii and accuracies must agree.
	for _, name := range []string{"cifar10_original", "cifar10_ours"} {
		got := columns(t, filetest.Read(t, filepath.Join(out, "radii_to_best_models", name)))
		want := columns(t, filetest.Read(t, filepath.Join(ref, "analysis", "radii_to_best_models", name)))
		if got != want {
			t.Errorf("%s radius and accuracy columns:\ngot\n%s\nreference\n%s", name, got, want)
		}
	}
	if !strings.HasPrefix(stdout.String(), "|  | r = 0.0 |r = 0.25 |") || !strings.Contains(stdout.String(), `<b> $\sigma = 0.12$ </b>| 0.83<b>*</b> |`) {
		t.Errorf("markdown table on stdout:\n%s", stdout.String())
	}
	for _, name := range []string{"cohen_cifar10.png", "ours_cifar10.png"} {
		f, err := os.Open(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() != 900 || img.Bounds().Dy() != 675 {
			t.Errorf("%s: %v, want a 900x675 PNG (6x4.5 inches at 150 dpi)", name, err)
		}
	}
	// The resolved copy is a valid spec on its own.
	resolved, err := Load(filepath.Join(out, "table2_cifar10.resolved.yaml"), "")
	if err != nil {
		t.Fatalf("resolved spec: %v", err)
	}
	if resolved.Plots[0].DPI != 150 || !filepath.IsAbs(resolved.Groups[0].Logs[0].Path) {
		t.Errorf("resolved spec lacks defaults or absolute paths: %+v", resolved.Plots[0])
	}
}

// columns keeps the first two tab-separated columns of every line.
func columns(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) < 2 {
			t.Fatalf("line %q: want tab-separated columns", sc.Text())
		}
		b.WriteString(f[0] + "\t" + f[1] + "\n")
	}
	return b.String()
}

func writeSpec(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValidationReportsEverything: one load lists every problem.
func TestValidationReportsEverything(t *testing.T) {
	log := reftest.Set(t, "all_cifar_cohen_fulldataset")[0]
	path := writeSpec(t, `version: 2
groups:
  - name: g
    logs:
      - path: `+log+`
      - path: missing/log
  - name: g
    logs: []
tables:
  - {group: h, kind: envelope, radii: "0.25:2.25", format: latex}
  - {group: g, kind: models, radii: "0:1:0.25", format: html}
  - {group: g, kind: best, radii: "0:1:0.25", format: latex}
  - {group: g, kind: curve, radii: "0:1:0.25"}
plots:
  - {group: g, out: a.gif, width: -2}
  - {group: g}
`)
	_, err := Load(path, "")
	if err == nil {
		t.Fatal("bad spec accepted")
	}
	for _, want := range []string{
		"version is 2, want 1",
		"groups[0] (g).logs[1]: stat " + filepath.Join(filepath.Dir(path), "missing/log"),
		"groups[1] (g): name used twice",
		"groups[1] (g): no logs",
		`tables[0]: unknown group "h"`,
		`tables[0]: radii "0.25:2.25": want START:STOP:STEP`,
		`tables[1]: format "html"`,
		`tables[2]: a best table has the reference's one format`,
		`tables[3]: kind "curve"`,
		`a.gif: unknown image format "gif"`,
		"plots[0]: plot: width -2 must be positive",
		"plots[1]: no out file",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestStrictDecoding(t *testing.T) {
	for text, want := range map[string]string{
		"version: 1\ngroups:\n  - name: g\n    logz: []\n":    "line 4: key logz not found in a group",
		"version: 1\ntables:\n  - {group: g, extra_key: 1}\n": "line 3: key extra_key not found in a table",
		"version: 1\nplots: 3\n":                              "cannot unmarshal",
		"":                                                    "empty file",
	} {
		if _, err := Load(writeSpec(t, text), ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", text, err, want)
		}
	}
}

// TestOutputsRefused: a spec may not write over one of its own logs, nor
// outside its output folder; nothing is written when it is refused.
func TestOutputsRefused(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	outDir := filepath.Join(dir, "out")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(logs, "sigma_0.25")
	logText := "idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t3\t3\t0.5\t1\t0:00:01\n"
	if err := os.WriteFile(logPath, []byte(logText), 0o644); err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(dir, "a.yaml")
	t.Chdir(dir) // without an output folder, outs are relative to the current one
	for _, tt := range []struct {
		name, outDir, output, out, want string
	}{
		{"table over its log, no output folder", "", "", "logs/sigma_0.25", "tables[0]: out " + logPath + " is the input log " + logPath + " of group g"},
		{"table over its log by an absolute path", outDir, "", logPath, "is the input log"},
		{"table over its log through the output folder", logs, "", "sigma_0.25", "is the input log"},
		{"table outside --out-dir", outDir, "", "../x.tex", "tables[0]: out " + filepath.Join(dir, "x.tex") + " lies outside the output folder " + outDir},
		{"table at an absolute path elsewhere", outDir, "", filepath.Join(dir, "elsewhere", "x.tex"), "lies outside the output folder"},
		{"table outside the file's output_dir", "", "output_dir: out\n", "../../x.tex", "lies outside the output folder " + outDir},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := "version: 1\n" + tt.output + "groups:\n  - name: g\n    logs:\n      - path: logs/sigma_0.25\n" +
				"tables:\n  - {group: g, kind: models, radii: \"0:1:0.5\", format: csv, out: " + tt.out + "}\n"
			if err := os.WriteFile(specPath, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			before := filetest.Snapshot(t, dir)
			if _, err := Load(specPath, tt.outDir); err == nil {
				t.Fatal("spec accepted")
			} else if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v\nwant one containing %q", err, tt.want)
			}
			if after := filetest.Snapshot(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("files changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	// Inside the output folder, in a subfolder, is fine.
	text := "version: 1\ngroups:\n  - name: g\n    logs:\n      - path: logs/sigma_0.25\n" +
		"tables:\n  - {group: g, kind: models, radii: \"0:1:0.5\", format: csv, out: sub/x.csv}\n"
	if err := os.WriteFile(specPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(specPath, outDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(&bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if got := filetest.Read(t, logPath); got != logText {
		t.Errorf("input log changed to %q", got)
	}
	if _, err := os.Stat(filepath.Join(outDir, "sub", "x.csv")); err != nil {
		t.Error(err)
	}
}

// TestTwoOutputsOnePath: a table and a plot written to one file would lose
// one of them: refused, naming both.
func TestTwoOutputsOnePath(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "sigma_0.25")
	if err := os.WriteFile(log, []byte("idx\tlabel\tpredict\tradius\tcorrect\ttime\n0\t3\t3\t0.5\t1\t0:00:01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := filepath.Join(dir, "a.yaml")
	text := "version: 1\ngroups:\n  - name: g\n    logs:\n      - path: sigma_0.25\n" +
		"tables:\n  - {group: g, kind: models, radii: \"0:1:0.5\", format: csv, out: same.png}\n" +
		"plots:\n  - {group: g, out: same.png}\n"
	if err := os.WriteFile(spec, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(spec, dir); err == nil || !strings.Contains(err.Error(), "plots[0]: out "+filepath.Join(dir, "same.png")+" is also tables[0]'s") {
		t.Errorf("table and plot on one path: %v", err)
	}
}
