package certify

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/filetest"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The lines must read exactly like the reference's. The first is the first
// line of shared/reference's certify log of Cohen et al.'s sigma = 0.25
// model, rebuilt from its values.
func TestRecordLines(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{CertifyRecord{0, 3, 3, 0.3774, 14172309 * time.Microsecond}.Line(), "0\t3\t3\t0.377\t1\t0:00:14.172309"},
		{CertifyRecord{20, 7, -1, 0, 2 * time.Second}.Line(), "20\t7\t-1\t0.0\t0\t0:00:02"},
		{CertifyRecord{40, 1, 1, 2.0, 90061 * time.Second}.Line(), "40\t1\t1\t2.0\t1\t1 day, 1:01:01"},
		{CertifyRecord{60, 1, 1, 0.0000123, time.Microsecond}.Line(), "60\t1\t1\t1.23e-05\t1\t0:00:00.000001"},
		{PredictRecord{5, 2, 2, 4, 1234567 * time.Microsecond}.Line(), "5\t2\t2\t4\t1\t0:00:01.234567"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// Every line of the reference's published certify logs passes the line
// check that resume and merge use.
func TestReferenceLogsParse(t *testing.T) {
	root := "../../shared/reference/data/certify"
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "sigma_") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		entries, valid, err := scanLog(data, certifyFormat)
		if err != nil || valid != len(data) || len(entries) == 0 {
			t.Errorf("%s: %d entries, valid %d of %d bytes, %v", path, len(entries), valid, len(data), err)
		}
		n++
		return nil
	})
	if os.IsNotExist(err) {
		t.Skipf("no reference logs: %v", err)
	}
	if err != nil || n == 0 {
		t.Fatalf("read %d reference logs: %v", n, err)
	}
}

func TestOpenLogNewWritesHeaderAndLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	writeFile(t, path, "stale content\n")
	l, done, err := OpenLog[CertifyRecord](path, false)
	if err != nil {
		t.Fatal(err)
	}
	if done.Len() != 0 {
		t.Errorf("new log: %d done", done.Len())
	}
	if err := l.Write(CertifyRecord{Index: 0, Label: 1, Predict: 1, Radius: 0.5}); err != nil {
		t.Fatal(err)
	}
	// Each line reaches the file as it is written.
	if got, want := filetest.Read(t, path), CertifyHeader+"\n0\t1\t1\t0.5\t1\t0:00:00\n"; got != want {
		t.Errorf("file %q, want %q", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Write(CertifyRecord{}); err == nil {
		t.Error("Write after Close: want an error")
	}
}

func TestOpenLogResume(t *testing.T) {
	good := PredictHeader + "\n0\t1\t1\t1\t1\t0:00:01\n10\t2\t-1\t2\t0\t0:00:01.500000\n"
	for _, tt := range []struct {
		name, content string
		wantKept      string
		wantDone      []int
	}{
		{"missing", "", PredictHeader + "\n", nil},
		{"torn header", "idx\tlab", PredictHeader + "\n", nil},
		{"complete", good, good, []int{0, 10}},
		{"torn last line", good + "20\t3\t3", good, []int{0, 10}},
		{"unparsable last line", good + "20\t3\tx\t3\t1\t0:00:01\n", good, []int{0, 10}},
		{"unparsable lines at the end", good + "20\t3\n30\n", good, []int{0, 10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "predictions")
			if tt.content != "" {
				writeFile(t, path, tt.content)
			}
			l, done, err := OpenLog[PredictRecord](path, true)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if got := filetest.Read(t, path); got != tt.wantKept {
				t.Errorf("kept %q, want %q", got, tt.wantKept)
			}
			var got []int
			for _, i := range []int{0, 10, 20, 30} {
				if done.Contains(i) {
					got = append(got, i)
				}
			}
			if !slices.Equal(got, tt.wantDone) || done.Len() != len(tt.wantDone) {
				t.Errorf("done %v (len %d), want %v", got, done.Len(), tt.wantDone)
			}
			if last, ok := done.Last(); ok != (len(tt.wantDone) > 0) || ok && last != tt.wantDone[len(tt.wantDone)-1] {
				t.Errorf("Last() = %d, %v", last, ok)
			}
			if err := l.Write(PredictRecord{Index: 20, Label: 3, Predict: 3, BasePredict: 3}); err != nil {
				t.Fatal(err)
			}
			if got, want := filetest.Read(t, path), tt.wantKept+"20\t3\t3\t3\t1\t0:00:00\n"; got != want {
				t.Errorf("after a write %q, want %q", got, want)
			}
			if rem := done.Remaining([]int{0, 10, 20, 30}); len(rem) != 4-len(tt.wantDone) {
				t.Errorf("Remaining = %v", rem)
			}
		})
	}
}

func TestOpenLogResumeRefusesDamage(t *testing.T) {
	for _, tt := range []struct{ name, content string }{
		{"other kind of log", PredictHeader + "\n"},
		{"not a log", "hello\n"},
		{"damage inside", CertifyHeader + "\n0\t1\t1\t0.5\t1\t0:00:01\nxx\n10\t1\t1\t0.5\t1\t0:00:01\n"},
		{"duplicate index", CertifyHeader + "\n0\t1\t1\t0.5\t1\t0:00:01\n0\t1\t1\t0.5\t1\t0:00:01\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			writeFile(t, path, tt.content)
			if l, _, err := OpenLog[CertifyRecord](path, true); err == nil {
				l.Close()
				t.Fatal("want an error")
			}
			if got := filetest.Read(t, path); got != tt.content {
				t.Errorf("file changed to %q", got)
			}
		})
	}
}

// TestTimeColumn checks the time column's rule: Python's str(timedelta),
// whose fraction, when there is one, has six digits.
func TestTimeColumn(t *testing.T) {
	for s, want := range map[string]bool{
		"0:00:01": true, "0:00:01.234567": true, "12:34:56": true, "1 day, 0:00:00": true,
		"-2 days, 23:59:59.999999": true, "0:0:01": false, "0:00:01.23": false, "": false,
		"1 week, 0:00:00": false, "0:00": false,
		"0:00:60": false, "0:00:01.000000": true, "0:00:01.1234567": false,
	} {
		_, err := certifyFormat.decode("0\t1\t1\t0.5\t1\t" + s)
		if (err == nil) != want {
			t.Errorf("time %q: error %v, want valid %v", s, err, want)
		}
	}
}

// TestParseLogRefuses checks each kind of bad line that the strict reader
// refuses, naming the file and line.
func TestParseLogRefuses(t *testing.T) {
	good := "0\t3\t3\t0.377\t1\t0:00:14.172309\n"
	for _, c := range []struct{ in, want string }{
		{"", "f: empty file"},
		{CertifyHeader + "\n", "f: no records"},
		{"idx\tlabel\tpredict\n" + good, "f:1: header"},
		{CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t1\n", "f:3: 5 fields, want 6"},
		{CertifyHeader + "\n" + good + "-1\t3\t3\t0.5\t1\t0:00:01\n", `f:3: column idx: "-1": want an integer >= 0`},
		{CertifyHeader + "\n" + good + "0\t3\t3\t0.5\t1\t0:00:01\n", "f:3: index 0 is also on line 2"},
		{CertifyHeader + "\n" + good + "1\t-2\t3\t0.5\t0\t0:00:01\n", `f:3: column label: "-2": want an integer >= 0`},
		{CertifyHeader + "\n" + good + "1\t3\t-2\t0.5\t0\t0:00:01\n", `f:3: column predict: "-2": want an integer >= -1`},
		{CertifyHeader + "\n" + good + "1\t3\t3\tnan\t1\t0:00:01\n", `f:3: column radius: "nan": want a finite radius >= 0`},
		{CertifyHeader + "\n" + good + "1\t3\t3\tinf\t1\t0:00:01\n", `f:3: column radius: "inf": want a finite radius >= 0`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t1e999\t1\t0:00:01\n", `f:3: column radius: "1e999": want a finite radius >= 0`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t-0.5\t1\t0:00:01\n", `f:3: column radius: "-0.5": want a finite radius >= 0`},
		{CertifyHeader + "\n" + good + "1\t3\t3\tabc\t1\t0:00:01\n", `f:3: column radius: "abc": not a number`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t0x1p-1\t1\t0:00:01\n", `f:3: column radius: "0x1p-1": not a number in decimal notation`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t0.6_0\t1\t0:00:01\n", `f:3: column radius: "0.6_0": not a number in decimal notation`},
		{CertifyHeader + "\n" + good + "1\t3\t-1\t0.5\t0\t0:00:01\n", `f:3: column radius: "0.5": an abstention (predict -1) has radius 0`},
		{CertifyHeader + "\n" + good + "1\t3\t5\t0.5\t1\t0:00:01\n", `f:3: column correct: "1": contradicts label 3 and predict 5`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t0\t0:00:01\n", `f:3: column correct: "0": contradicts label 3 and predict 3`},
		{CertifyHeader + "\n" + good + "1\t3\t3\t0.5\tTrue\t0:00:01\n", `f:3: column correct: "True": want 0 or 1`},
		{CertifyHeader + "\n" + good + "\n1\t3\t3\t0.5\t1\t14s\n", `f:4: column time: "14s"`},
		{PredictHeader + "\n1\t3\t3\t-1\t1\t0:00:01\n", `f:2: column basePredict: "-1": want an integer >= 0`},
		{CertifyHeader + "\n" + good + strings.Repeat("x", 5<<20) + "\n", "f:3: a line of more than 65536 bytes is no log line"},
	} {
		var err error
		if strings.HasPrefix(c.in, PredictHeader) {
			_, err = ParseLog[PredictRecord](strings.NewReader(c.in), "f")
		} else {
			_, err = ParseLog[CertifyRecord](strings.NewReader(c.in), "f")
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input %.80q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

// TestParseLogAccepts reads what pandas reads: blank lines, CRLF line ends
// and a last line without a newline; an abstention has radius 0.
func TestParseLogAccepts(t *testing.T) {
	in := CertifyHeader + "\r\n0\t3\t3\t0.377\t1\t0:00:14.172309\r\n\n10\t8\t-1\t0.0\t0\t1 day, 2:03:04"
	recs, err := ParseLog[CertifyRecord](strings.NewReader(in), "f")
	if err != nil {
		t.Fatal(err)
	}
	want := []CertifyRecord{
		{Index: 0, Label: 3, Predict: 3, Radius: 0.377, Elapsed: 14*time.Second + 172309*time.Microsecond},
		{Index: 10, Label: 8, Predict: Abstain, Radius: 0, Elapsed: 26*time.Hour + 3*time.Minute + 4*time.Second},
	}
	if !slices.Equal(recs, want) {
		t.Errorf("records %+v, want %+v", recs, want)
	}
	if !recs[0].Correct() || recs[1].Correct() {
		t.Error("Correct() disagrees with label and predict")
	}
}

func TestReadDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	done, err := ReadDone[CertifyRecord](path)
	if err != nil || done.Len() != 0 {
		t.Fatalf("missing log: %d done, %v", done.Len(), err)
	}
	content := CertifyHeader + "\n0\t1\t1\t0.5\t1\t0:00:01\n10\t1\t1\t0.5\t1\t0:00:01\n20\t1"
	writeFile(t, path, content)
	done, err = ReadDone[CertifyRecord](path)
	if err != nil || done.Len() != 2 || !done.Contains(10) || done.Contains(20) {
		t.Errorf("%d done, %v; want 0 and 10", done.Len(), err)
	}
	if filetest.Read(t, path) != content {
		t.Error("ReadDone changed the log")
	}
	writeFile(t, path, PredictHeader+"\n")
	if _, err := ReadDone[CertifyRecord](path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("predict log read as a certify log: %v", err)
	}
}
