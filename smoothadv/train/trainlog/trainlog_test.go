package trainlog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

const testHeader = "epoch\ttime\tlr\ttrainloss\ttestloss\ttrainacc\ttestacc"

func logLine(epoch string) string { return epoch + "\t1.0\t0.1\t2.3\t2.2\t10.0\t11.0\n" }

func TestCutLog(t *testing.T) {
	h := testHeader + "\n"
	l0, l1, l2 := logLine("0"), logLine("1"), logLine("2")
	l1again := "1\t9.0\t0.1\t2.0\t2.0\t20.0\t21.0\n"
	cases := []struct {
		name, old, pending string
		last               int
		want               string
		missing            string
	}{
		{"complete", h + l0 + l1, "", 1, h + l0 + l1, ""},
		{"one line more: cut", h + l0 + l1 + l2, l2, 1, h + l0 + l1, ""},
		{"torn last line: dropped", h + l0 + l1 + "2\t1.0\t0.", "", 1, h + l0 + l1, ""},
		{"killed before the line: from the pending file", h + l0, l1, 1, h + l0 + l1, ""},
		{"torn line of the checkpoint's epoch: from the pending file", h + l0 + "1\t1.0", l1, 1, h + l0 + l1, ""},
		{"pending file of another epoch: missing", h + l0, l2, 1, h + l0, "1"},
		{"no pending file: missing", h + l0, "", 1, h + l0, "1"},
		{"no log", "", "", 1, h, "0 1"},
		{"an epoch logged twice: the later line", h + l0 + l1 + l1again, "", 1, h + l0 + l1again, ""},
	}
	for _, c := range cases {
		got, missing, err := cutLog([]byte(c.old), testHeader, c.last, c.pending)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s: log\n%q\nwant\n%q", c.name, got, c.want)
		}
		if strings.Join(missing, " ") != c.missing {
			t.Errorf("%s: missing epochs %v, want %q", c.name, missing, c.missing)
		}
	}
	for _, c := range []struct{ old, want string }{
		{"epoch\ttime\n" + logLine("0"), `not this run's header`},
		{h + logLine("0") + "hello\n", `line 3: "hello" is not a training log line`},
		{h + logLine("-1"), `line 2: "-1\t`},
	} {
		if _, _, err := cutLog([]byte(c.old), testHeader, 0, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("log %q: error %v, want it to say %s", c.old, err, c.want)
		}
	}
}

func TestResumeLogRewritesOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, File)
	good := testHeader + "\n" + logLine("0")
	if err := os.WriteFile(path, []byte(good+logLine("1")), 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	if err := Resume(dir, testHeader, 0, &warn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Errorf("log after the cut: %q", b)
	}
	if warn.Len() != 0 {
		t.Errorf("warned %q", warn.String())
	}
	if err := Resume(dir, testHeader, 1, &warn); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != good {
		t.Errorf("log with a line missing: %q, want it kept", b)
	}
	if want := "has no line for epoch 1, which " + filepath.Join(dir, settings.CheckpointFile) + " holds"; !strings.Contains(warn.String(), want) {
		t.Errorf("warning %q, want it to say %q", warn.String(), want)
	}
}

func TestEpochs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := Epochs(write("torn", Header(true)+"\n0\ta\n1\tb\n2\t"))
	if err != nil || len(got) != 2 || !got[0] || !got[1] {
		t.Errorf("torn log: %v %v, want epochs 0 and 1", got, err)
	}
	if got, err := Epochs(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing log: %v %v", got, err)
	}
	if _, err := Epochs(write("header", "idx\tlabel\n")); err == nil {
		t.Error("wrong header: no error")
	}
	if _, err := Epochs(write("bad", Header(false)+"\nx\t1\n")); err == nil {
		t.Error("bad first column: no error")
	}
}
