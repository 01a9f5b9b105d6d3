package certify

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/internal/outputs"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// This file owns the reference's two log formats: writing them, reading
// them strictly (ParseLog, for analysis and merging), and reading the
// resume point of a log cut short (OpenLog, ReadDone). Every reader decodes
// lines with the same rules.

// The reference's log headers.
const (
	CertifyHeader = "idx\tlabel\tpredict\tradius\tcorrect\ttime"
	PredictHeader = "idx\tlabel\tpredict\tbasePredict\tcorrect\ttime"
)

// The kinds of log, as run-parameter files name them.
const (
	KindCertify = "certify"
	KindPredict = "predict"
)

// CertifyRecord is one line of a certify log. The correct column is not
// stored: it is Predict == Label, as in the reference (see Correct).
type CertifyRecord struct {
	Index, Label, Predict int
	Radius                float64 // L2 radius; 0 when Predict is Abstain
	Elapsed               time.Duration
}

// Line returns the record as the reference prints it, without the newline:
// the radius as '{:.3}', correct as 1 or 0, the time as a timedelta string.
func (r CertifyRecord) Line() string {
	return fmt.Sprintf("%d\t%d\t%d\t%s\t%d\t%s", r.Index, r.Label, r.Predict,
		pyfmt.G(r.Radius, 3), correct(r.Predict, r.Label), FormatTimedelta(r.Elapsed))
}

// Correct reports whether the prediction is the label.
func (r CertifyRecord) Correct() bool { return r.Predict == r.Label }

// Certified reports whether the line is correct with a certified radius of
// at least radius.
func (r CertifyRecord) Certified(radius float64) bool { return r.Correct() && r.Radius >= radius }

func (CertifyRecord) format() logFormat { return certifyFormat }
func (r CertifyRecord) index() int      { return r.Index }

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

// Correct reports whether the prediction is the label.
func (r PredictRecord) Correct() bool { return r.Predict == r.Label }

func (PredictRecord) format() logFormat { return predictFormat }
func (r PredictRecord) index() int      { return r.Index }

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

// record is a decoded line of either kind.
type record interface{ index() int }

// logFormat describes a log kind: its name, header and line decoder.
type logFormat struct {
	kind   string
	header string
	decode func(line string) (record, error)
}

var (
	certifyFormat = newFormat(KindCertify, CertifyHeader, func(c *columns) record {
		r := CertifyRecord{Index: c.int(0, 0), Label: c.int(1, 0), Predict: c.int(2, Abstain)}
		r.Radius = c.radius(3, r.Predict)
		c.correct(4, r.Label, r.Predict)
		r.Elapsed = c.time(5)
		return r
	})
	predictFormat = newFormat(KindPredict, PredictHeader, func(c *columns) record {
		r := PredictRecord{Index: c.int(0, 0), Label: c.int(1, 0), Predict: c.int(2, Abstain), BasePredict: c.int(3, 0)}
		c.correct(4, r.Label, r.Predict)
		r.Elapsed = c.time(5)
		return r
	})
	logFormats = []logFormat{certifyFormat, predictFormat}
)

// newFormat builds a format whose decoder splits a line at tabs, checks the
// number of fields and has read decode them in column order.
func newFormat(kind, header string, read func(*columns) record) logFormat {
	names := strings.Split(header, "\t")
	return logFormat{kind: kind, header: header, decode: func(line string) (record, error) {
		values := strings.Split(line, "\t")
		if len(values) != len(names) {
			return nil, fmt.Errorf("%d fields, want %d (%s)", len(values), len(names), strings.Join(names, ", "))
		}
		c := &columns{names: names, values: values}
		r := read(c)
		return r, c.err
	}}
}

// formatOf picks the log kind by the header line.
func formatOf(header string) (logFormat, error) {
	for _, f := range logFormats {
		if header == f.header {
			return f, nil
		}
	}
	return logFormat{}, fmt.Errorf("header %q is neither a certify nor a predict log's", header)
}

// columns decodes the fields of one line; after the first bad value it
// keeps that error.
type columns struct {
	names, values []string
	err           error
}

func (c *columns) fail(i int, reason string) {
	if c.err == nil {
		c.err = fmt.Errorf("column %s: %q: %s", c.names[i], c.values[i], reason)
	}
}

// int decodes column i as an integer of at least least.
func (c *columns) int(i, least int) int {
	v, err := strconv.Atoi(c.values[i])
	switch {
	case err != nil:
		c.fail(i, "not an integer")
	case v < least:
		c.fail(i, fmt.Sprintf("want an integer >= %d", least))
	}
	return v
}

// radius decodes column i as a certified radius: finite and >= 0, and 0
// for an abstention, as CERTIFY writes it.
func (c *columns) radius(i, predict int) float64 {
	v, err := pyfmt.ParseFloat(c.values[i])
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		c.fail(i, "not a number in decimal notation")
	case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
		c.fail(i, "want a finite radius >= 0")
	case predict == Abstain && v != 0:
		c.fail(i, "an abstention (predict -1) has radius 0")
	}
	return v
}

// correct checks column i, the correct column, against label and predict.
func (c *columns) correct(i, label, predict int) {
	switch v := c.values[i]; {
	case v != "0" && v != "1":
		c.fail(i, "want 0 or 1")
	case (v == "1") != (predict == label):
		c.fail(i, fmt.Sprintf("contradicts label %d and predict %d", label, predict))
	}
}

// time decodes column i as FormatTimedelta writes it: what ParseTimedelta
// reads, with a fraction, if any, of exactly six digits (Python's
// str(timedelta) never writes another number of digits).
func (c *columns) time(i int) time.Duration {
	s := c.values[i]
	d, err := ParseTimedelta(s)
	if _, frac, hasFrac := strings.Cut(s, "."); err == nil && hasFrac && len(frac) != 6 {
		err = errTimedelta
	}
	if err != nil {
		c.fail(i, err.Error())
	}
	return d
}

// ReadLog reads the log of kind R at path strictly; see ParseLog.
func ReadLog[R Record](path string) ([]R, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseLog[R](f, path)
}

// ParseLog reads a whole log of kind R: the header, then one record per
// line. Blank lines are skipped and a "\r\n" line end is read as "\n", as
// pandas (which the reference reads logs with) does. Anything else is an
// error naming name and the line: a wrong header, no records, a malformed
// field, a negative index, label or radius, a radius that is NaN or
// infinite or not 0 for an abstention, a correct column that contradicts
// label and predict, or an index seen on an earlier line.
func ParseLog[R Record](r io.Reader, name string) ([]R, error) {
	var zero R
	format := zero.format()
	sc := bufio.NewScanner(r)
	var records []R
	seen := map[int]int{}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if line == 1 {
			if text != format.header {
				return nil, fmt.Errorf("%s:1: header is %q, want %q", name, text, format.header)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		rec, err := format.decode(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if prev, dup := seen[rec.index()]; dup {
			return nil, fmt.Errorf("%s:%d: index %d is also on line %d", name, line, rec.index(), prev)
		}
		seen[rec.index()] = line
		records = append(records, rec.(R))
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, fmt.Errorf("%s:%d: a line of more than %d bytes is no log line (is this the right file?)", name, line+1, bufio.MaxScanTokenSize)
	} else if err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("%s: empty file, want the header %q", name, format.header)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("%s: no records after the header", name)
	}
	return records, nil
}

// entry is one valid line of a log.
type entry struct {
	index int
	line  string
}

// scanLog reads data as a log of format f, as resuming sees it. It returns
// the valid lines, and the length of the valid prefix: the header and every
// line up to the last good one. A torn last line (no newline) and
// unparsable lines at the end lie beyond it. An unparsable line followed by
// good ones is an error: that is damage inside the file, and cutting it off
// would throw results away. Without a complete header the valid prefix is
// empty, unless data is not the start of one at all, which is an error.
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
		rec, err := f.decode(string(line))
		if err != nil {
			if firstBad == 0 {
				firstBad, badErr = lineNo, err
			}
			continue
		}
		if firstBad != 0 {
			return nil, 0, fmt.Errorf("line %d: %v, but line %d is good: the file is damaged inside", firstBad, badErr, lineNo)
		}
		idx := rec.index()
		if prev, dup := seen[idx]; dup {
			return nil, 0, fmt.Errorf("lines %d and %d both have index %d", prev, lineNo, idx)
		}
		seen[idx] = lineNo
		entries = append(entries, entry{idx, string(line)})
		valid = end
	}
	return entries, valid, nil
}

// Done lists the example indices that an existing log already holds, with
// the label each line gives.
type Done struct {
	set  map[int]int // index: label
	last int
}

func newDone(entries []entry) Done {
	d := Done{set: make(map[int]int, len(entries)), last: -1}
	for _, e := range entries {
		// Both formats start idx, label; a valid line has both.
		_, rest, _ := strings.Cut(e.line, "\t")
		label, _, _ := strings.Cut(rest, "\t")
		d.set[e.index], _ = strconv.Atoi(label)
		d.last = e.index
	}
	return d
}

// Contains reports whether example i is done.
func (d Done) Contains(i int) bool {
	_, ok := d.set[i]
	return ok
}

// Label is the label on example i's line, if it is done.
func (d Done) Label(i int) (int, bool) {
	l, ok := d.set[i]
	return l, ok
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

// ReadDone reads the log of kind R at path as resuming it would, without
// changing it, and returns the examples its complete lines hold. A missing
// file holds none.
func ReadDone[R Record](path string) (Done, error) {
	var zero R
	entries, _, err := readEntries(path, zero.format())
	return newDone(entries), err
}

// readEntries is scanLog on the file at path; a missing file is empty.
func readEntries(path string, f logFormat) (entries []entry, valid int, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err == nil {
		entries, valid, err = scanLog(data, f)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("log %s: %w", path, err)
	}
	return entries, valid, nil
}

// Log writes a certify or predict log one line at a time, each line in a
// single write, so that an interrupted run leaves at most a torn last line.
type Log[R Record] struct {
	lineFile
	lock *outputs.Lock // OpenRunLog's hold on the log, released by Close
}

// Close closes the log and releases its lock.
func (l *Log[R]) Close() error {
	err := l.lineFile.Close()
	l.lock.Release()
	return err
}

// OpenLog opens the log at path. Without resume it creates or truncates the
// file and writes the header, as the reference does. With resume an
// existing log is kept: it must have the right header; a torn or
// unparsable tail is cut off at the end of the last good line (see
// scanLog), and Done tells which examples it holds. A missing or empty file
// is started afresh. OpenRunLog does the same and keeps the log's
// run-parameter file in step.
func OpenLog[R Record](path string, resume bool) (*Log[R], Done, error) {
	var zero R
	format := zero.format()
	if !resume {
		f, err := os.Create(path)
		if err != nil {
			return nil, Done{}, fmt.Errorf("create log: %w", err)
		}
		l := &Log[R]{lineFile: lineFile{f, "log"}}
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
	l := &Log[R]{lineFile: lineFile{f, "log"}}
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
