package analysis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/certify"
)

func TestParseCertifyLog(t *testing.T) {
	in := certify.CertifyHeader + "\n" +
		"0\t3\t3\t0.377\t1\t0:00:14.172309\n" +
		"\n" +
		"10\t8\t-1\t0.0\t0\t1 day, 2:03:04\n"
	log, err := ParseCertifyLog(strings.NewReader(in), "x")
	if err != nil {
		t.Fatal(err)
	}
	want := []CertifyRecord{
		{Index: 0, Label: 3, Predict: 3, Radius: 0.377, Elapsed: 14*time.Second + 172309*time.Microsecond},
		{Index: 10, Label: 8, Predict: certify.Abstain, Radius: 0, Elapsed: 26*time.Hour + 3*time.Minute + 4*time.Second},
	}
	if len(log.Records) != len(want) {
		t.Fatalf("%d records, want %d", len(log.Records), len(want))
	}
	for i := range want {
		if log.Records[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, log.Records[i], want[i])
		}
	}
}

func TestParsePredictLog(t *testing.T) {
	in := certify.PredictHeader + "\n0\t3\t5\t3\t0\t0:00:01.500000\n"
	log, err := ParsePredictLog(strings.NewReader(in), "p")
	if err != nil {
		t.Fatal(err)
	}
	want := PredictRecord{Index: 0, Label: 3, Predict: 5, BasePredict: 3, Elapsed: 1500 * time.Millisecond}
	if len(log.Records) != 1 || log.Records[0] != want {
		t.Fatalf("records %+v, want [%+v]", log.Records, want)
	}
}

// TestMalformedLogs checks that each kind of bad input names the file and line.
func TestMalformedLogs(t *testing.T) {
	good := "0\t3\t3\t0.377\t1\t0:00:14.172309\n"
	for _, c := range []struct{ in, want string }{
		{"", "f.tsv: empty file"},
		{certify.CertifyHeader + "\n", "f.tsv: no records"},
		{certify.PredictHeader + "\n" + good, "f.tsv:1: header"},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t1\n", "f.tsv:3: 5 fields, want 6"},
		{certify.CertifyHeader + "\n" + good + "x\t3\t3\t0.5\t1\t0:00:01\n", `f.tsv:3: column idx: "x": not an integer`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\tabc\t1\t0:00:01\n", `f.tsv:3: column radius: "abc": not a number`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t0.5\tTrue\t0:00:01\n", `f.tsv:3: column correct: "True": want 0 or 1`},
		{certify.CertifyHeader + "\n" + good + "\n1\t3\t3\t0.5\t1\t14s\n", `f.tsv:4: column time: "14s"`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t1\t0:0:01\n", `f.tsv:3: column time`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t1\t0:00:01.\n", `f.tsv:3: column time`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t0.5\t1\t2 weeks, 0:00:01\n", `f.tsv:3: column time`},
		{certify.CertifyHeader + "\n" + good + "\n0\t3\t3\t0.5\t1\t0:00:01\n", `f.tsv:4: index 0 is also on line 2`},
		{certify.CertifyHeader + "\n" + good + "-5\t3\t3\t0.5\t1\t0:00:01\n", `f.tsv:3: column idx: "-5": want an integer >= 0`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\tnan\t1\t0:00:01\n", `f.tsv:3: column radius: "nan": want a finite radius >= 0`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\tinf\t1\t0:00:01\n", `f.tsv:3: column radius: "inf": want a finite radius >= 0`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t3\t-0.25\t1\t0:00:01\n", `f.tsv:3: column radius: "-0.25": want a finite radius >= 0`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t4\t0.5\t1\t0:00:01\n", `f.tsv:3: column correct: "1": contradicts label 3 and predict 4`},
		{certify.CertifyHeader + "\n" + good + "1\t3\t-1\t0.0\t1\t0:00:01\n", `f.tsv:3: column correct: "1": contradicts label 3 and predict -1`},
	} {
		_, err := ParseCertifyLog(strings.NewReader(c.in), "f.tsv")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input %q: error %v, want one containing %q", c.in, err, c.want)
		}
	}
}

func TestReadLogErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "predictions")
	if err := os.WriteFile(bad, []byte(certify.PredictHeader+"\n0\t1\t1\t1\t2\t0:00:01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPredictLog(bad); err == nil || !strings.Contains(err.Error(), bad+":2: column correct") {
		t.Errorf("error %v, want one naming %s:2", err, bad)
	}
	if _, err := ReadCertifyLog(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %v, want one naming the missing file", err)
	}
}
