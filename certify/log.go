package certify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/certify/pyfmt"
)

// The reference's log headers.
const (
	CertifyHeader = "idx\tlabel\tpredict\tradius\tcorrect\ttime"
	PredictHeader = "idx\tlabel\tpredict\tbasePredict\tcorrect\ttime"
)

// CertifyRecord is one line of a certify log. Correct is derived as
// Predict == Label, as in the reference.
type CertifyRecord struct {
	Index, Label, Predict int
	Radius                float64
	Elapsed               time.Duration
}

// Line returns the record as the reference prints it, without the newline:
// the radius as '{:.3}', correct as 1 or 0, the time as a timedelta string.
func (r CertifyRecord) Line() string {
	return fmt.Sprintf("%d\t%d\t%d\t%s\t%d\t%s", r.Index, r.Label, r.Predict,
		pyfmt.G(r.Radius, 3), correct(r.Predict, r.Label), FormatTimedelta(r.Elapsed))
}

func (CertifyRecord) format() logFormat { return certifyFormat }

// PredictRecord is one line of a predict log; BasePredict is the base
// classifier's prediction on the (possibly attacked) input without noise.
type PredictRecord struct {
	Index, Label, Predict, BasePredict int
	Elapsed                            time.Duration
}

// Line returns the record as the reference prints it, without the newline.
func (r PredictRecord) Line() string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%s", r.Index, r.Label, r.Predict, r.BasePredict,
		correct(r.Predict, r.Label), FormatTimedelta(r.Elapsed))
}

func (PredictRecord) format() logFormat { return predictFormat }

func correct(predict, label int) int {
	if predict == label {
		return 1
	}
	return 0
}

// Record is a line of one of the two log kinds.
type Record interface {
	CertifyRecord | PredictRecord
	Line() string
	format() logFormat
}

// logFormat describes a log kind: its header, and how its fourth column
// (radius or basePredict) parses.
type logFormat struct {
	header string
	fourth func(string) error
}

var (
	certifyFormat = logFormat{CertifyHeader, func(s string) error {
		_, err := strconv.ParseFloat(s, 64)
		return err
	}}
	predictFormat = logFormat{PredictHeader, func(s string) error {
		_, err := strconv.Atoi(s)
		return err
	}}
	logFormats = []logFormat{certifyFormat, predictFormat}
)

// parseIndex checks one line's fields against the format and returns its
// example index.
func (f logFormat) parseIndex(line string) (int, error) {
	fields := strings.Split(line, "\t")
	if len(fields) != 6 {
		return 0, fmt.Errorf("want 6 tab-separated fields, got %d", len(fields))
	}
	idx, err := strconv.Atoi(fields[0])
	if err != nil || idx < 0 {
		return 0, fmt.Errorf("bad idx %q", fields[0])
	}
	for _, s := range fields[1:3] {
		if _, err := strconv.Atoi(s); err != nil {
			return 0, fmt.Errorf("bad label or predict %q", s)
		}
	}
	if err := f.fourth(fields[3]); err != nil {
		return 0, fmt.Errorf("bad fourth field %q", fields[3])
	}
	if fields[4] != "0" && fields[4] != "1" {
		return 0, fmt.Errorf("bad correct %q", fields[4])
	}
	if !isTimedelta(fields[5]) {
		return 0, fmt.Errorf("bad time %q", fields[5])
	}
	return idx, nil
}

// isTimedelta reports whether s has the shape FormatTimedelta writes: what
// ParseTimedelta reads, with a fraction, if any, of exactly six digits.
func isTimedelta(s string) bool {
	if _, err := ParseTimedelta(s); err != nil {
		return false
	}
	_, frac, hasFrac := strings.Cut(s, ".")
	return !hasFrac || len(frac) == 6
}

// entry is one valid line of a log.
type entry struct {
	index int
	line  string
}

// scanLog reads data as a log of format f. It returns the valid lines, and
// the length of the valid prefix: the header and every line up to the last
// good one. A torn last line (no newline) and unparsable lines at the end
// lie beyond it. An unparsable line followed by good ones is an error: that
// is damage inside the file, and cutting it off would throw results away.
// Without a complete header the valid prefix is empty, unless data is not
// the start of one at all, which is an error.
func scanLog(data []byte, f logFormat) (entries []entry, valid int, err error) {
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		if strings.HasPrefix(f.header, string(data)) {
			return nil, 0, nil
		}
		return nil, 0, fmt.Errorf("first line is not the header %q", f.header)
	}
	if string(header) != f.header {
		return nil, 0, fmt.Errorf("header %q, want %q", header, f.header)
	}
	valid = len(header) + 1
	pos, lineNo, firstBad := valid, 1, 0
	var badErr error
	seen := map[int]int{}
	for {
		line, after, complete := bytes.Cut(rest, []byte("\n"))
		if !complete {
			break // torn or empty tail
		}
		lineNo++
		end := pos + len(line) + 1
		pos, rest = end, after
		idx, err := f.parseIndex(string(line))
		if err != nil {
			if firstBad == 0 {
				firstBad, badErr = lineNo, err
			}
			continue
		}
		if firstBad != 0 {
			return nil, 0, fmt.Errorf("line %d: %v, but line %d is good: the file is damaged inside", firstBad, badErr, lineNo)
		}
		if prev, dup := seen[idx]; dup {
			return nil, 0, fmt.Errorf("lines %d and %d both have index %d", prev, lineNo, idx)
		}
		seen[idx] = lineNo
		entries = append(entries, entry{idx, string(line)})
		valid = end
	}
	return entries, valid, nil
}

// Done lists the example indices that an existing log already holds.
type Done struct {
	set  map[int]struct{}
	last int
}

func newDone(entries []entry) Done {
	d := Done{set: make(map[int]struct{}, len(entries)), last: -1}
	for _, e := range entries {
		d.set[e.index] = struct{}{}
		d.last = e.index
	}
	return d
}

// Contains reports whether example i is done.
func (d Done) Contains(i int) bool {
	_, ok := d.set[i]
	return ok
}

// Len returns the number of examples done.
func (d Done) Len() int { return len(d.set) }

// Last returns the index on the last line, and false for an empty log.
func (d Done) Last() (int, bool) { return d.last, d.last >= 0 }

// Remaining returns the indices that are not done, in their order.
func (d Done) Remaining(indices []int) []int {
	var out []int
	for _, i := range indices {
		if !d.Contains(i) {
			out = append(out, i)
		}
	}
	return out
}

// Log writes a certify or predict log one line at a time, each line in a
// single write, so that an interrupted run leaves at most a torn last line.
type Log[R Record] struct {
	f *os.File
}

// OpenLog opens the log at path. Without resume it creates or truncates the
// file and writes the header, as the reference does. With resume an
// existing log is kept: it must have the right header; a torn or
// unparsable tail is cut off at the end of the last good line (see
// scanLog), and Done tells which examples it holds. A missing or empty file
// is started afresh.
func OpenLog[R Record](path string, resume bool) (*Log[R], Done, error) {
	var zero R
	format := zero.format()
	if !resume {
		f, err := os.Create(path)
		if err != nil {
			return nil, Done{}, fmt.Errorf("create log: %w", err)
		}
		l := &Log[R]{f: f}
		if err := l.writeLine(format.header); err != nil {
			f.Close()
			return nil, Done{}, err
		}
		return l, newDone(nil), nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, Done{}, fmt.Errorf("open log for resuming: %w", err)
	}
	l := &Log[R]{f: f}
	done, err := l.resume(format)
	if err != nil {
		f.Close()
		return nil, Done{}, fmt.Errorf("resume log %s: %w", path, err)
	}
	return l, done, nil
}

func (l *Log[R]) resume(format logFormat) (Done, error) {
	data, err := io.ReadAll(l.f)
	if err != nil {
		return Done{}, err
	}
	entries, valid, err := scanLog(data, format)
	if err != nil {
		return Done{}, err
	}
	if valid < len(data) {
		if err := l.f.Truncate(int64(valid)); err != nil {
			return Done{}, err
		}
	}
	if _, err := l.f.Seek(int64(valid), io.SeekStart); err != nil {
		return Done{}, err
	}
	if valid == 0 {
		if err := l.writeLine(format.header); err != nil {
			return Done{}, err
		}
	}
	return newDone(entries), nil
}

// Write appends one record.
func (l *Log[R]) Write(r R) error {
	return l.writeLine(r.Line())
}

func (l *Log[R]) writeLine(line string) error {
	if l.f == nil {
		return errors.New("write log: closed")
	}
	if _, err := l.f.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

// Close closes the file; closing twice is harmless.
func (l *Log[R]) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
