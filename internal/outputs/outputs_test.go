package outputs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckDistinct(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.pt")
	if err := os.WriteFile(model, []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(model, link); err != nil {
		t.Fatal(err)
	}
	in := []File{{"the model file", model}}
	for _, out := range []string{model, link, filepath.Join(dir, "x", "..", "model.pt")} {
		err := CheckDistinct(in, []File{{"log", filepath.Join(dir, "fine.tsv")}, {"samples file", out}})
		if err == nil || !strings.Contains(err.Error(), "samples file "+out+" is the model file "+model) {
			t.Errorf("output %s: %v", out, err)
		}
	}
	if err := CheckDistinct(in, []File{{"log", filepath.Join(dir, "new.tsv")}, {"unused", ""}}); err != nil {
		t.Error(err)
	}
}

// TestLockRefusesASecondHolder: a second process cannot take a held lock,
// and can once the first releases it.
func TestLockRefusesASecondHolder(t *testing.T) {
	if os.Getenv("OUTPUTS_TEST_LOCK") != "" {
		l, err := Take(os.Getenv("OUTPUTS_TEST_LOCK"), false)
		if err != nil {
			os.Stdout.WriteString(err.Error())
			os.Exit(3)
		}
		l.Release()
		os.Exit(0)
	}
	out := filepath.Join(t.TempDir(), "log.tsv")
	l, err := Take(out, false)
	if err != nil {
		t.Fatal(err)
	}
	other := func() (string, int) {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestLockRefusesASecondHolder$")
		cmd.Env = append(os.Environ(), "OUTPUTS_TEST_LOCK="+out)
		b, _ := cmd.Output()
		return string(b), cmd.ProcessState.ExitCode()
	}
	if msg, code := other(); code != 3 || !strings.Contains(msg, out+" is busy: another run is writing it") {
		t.Errorf("second process while locked: exit %d, %q", code, msg)
	}
	l.Release()
	if msg, code := other(); code != 0 {
		t.Errorf("second process after release: exit %d, %q", code, msg)
	}
}

func TestRemoveStaleTemps(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "checkpoint.pth.tar")
	keep := []string{out, filepath.Join(dir, ".other.tmp-1"), filepath.Join(dir, "checkpoint.pth.tar.tmp-2")}
	stale := []string{filepath.Join(dir, ".checkpoint.pth.tar.tmp-123"), filepath.Join(dir, ".checkpoint.pth.tar.tmp-x")}
	for _, p := range append(keep, stale...) {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveStaleTemps(out); err != nil {
		t.Fatal(err)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("removed %s", p)
		}
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("kept %s", p)
		}
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "log.tsv")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{file, filepath.Join(dir, "new.tsv")} {
		if err := CheckFile("output file", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for path, want := range map[string]string{dir: "output file " + dir + " is a folder", "/dev/null": "output file /dev/null is not a regular file"} {
		if err := CheckFile("output file", path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
	}
}
