package certify

import (
	"strconv"
	"testing"
	"time"

	"github.com/smoothadv/smoothadv/internal/tsvtest"
)

// readTable returns the rows of a testdata file that has the given number
// of columns, without its '#' comments and header line.
func readTable(t *testing.T, path string, columns int) [][]string {
	t.Helper()
	header, rows := tsvtest.Read(t, path)
	if len(header) != columns {
		t.Fatalf("%s: want %d columns, header %q", path, columns, header)
	}
	return rows
}

// testdata/timedelta.tsv is Python's str(datetime.timedelta(microseconds=us)).
func TestFormatTimedeltaMatchesPython(t *testing.T) {
	for _, r := range readTable(t, "testdata/timedelta.tsv", 2) {
		us, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatTimedelta(time.Duration(us) * time.Microsecond); got != r[1] {
			t.Errorf("FormatTimedelta(%dus) = %q, Python gives %q", us, got, r[1])
		}
	}
}

// Like timedelta, durations round to microseconds half to even.
func TestFormatTimedeltaRounding(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{1500, "0:00:00.000002"},
		{2500, "0:00:00.000002"},
		{2501, "0:00:00.000003"},
		{499, "0:00:00"},
		{-500, "0:00:00"},
		{-1500, "-1 day, 23:59:59.999998"},
	} {
		if got := FormatTimedelta(tt.d); got != tt.want {
			t.Errorf("FormatTimedelta(%dns) = %q, want %q", int64(tt.d), got, tt.want)
		}
	}
}

// ParseTimedelta reads back every string Python wrote in
// testdata/timedelta.tsv, negative days included.
func TestParseTimedeltaMatchesPython(t *testing.T) {
	for _, r := range readTable(t, "testdata/timedelta.tsv", 2) {
		us, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseTimedelta(r[1])
		if want := time.Duration(us) * time.Microsecond; err != nil || got != want {
			t.Errorf("ParseTimedelta(%q) = %v, %v; want %v", r[1], got, err, want)
		}
	}
}

func TestParseTimedeltaForms(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"0:00:01.5":         1500 * time.Millisecond,
		"2:03:04":           2*time.Hour + 3*time.Minute + 4*time.Second,
		"1 day, 0:00:01.5":  24*time.Hour + 1500*time.Millisecond,
		"0:00:00.000000001": 1,
	} {
		if got, err := ParseTimedelta(s); err != nil || got != want {
			t.Errorf("ParseTimedelta(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "14s", "0:0:01", "0:00:01.", "0:00:60", "0:60:00", "0:00:01.0000000001",
		"2 weeks, 0:00:01", "x days, 0:00:01", "-0:00:01", "0:00"} {
		if got, err := ParseTimedelta(s); err == nil {
			t.Errorf("ParseTimedelta(%q) = %v, want an error", s, got)
		}
	}
}
