// Package analysis reads the certify and predict logs written by the reference
// code (and by this project) and computes what the SmoothAdv paper reports
// from them: certified accuracy at radii, per-model and upper-envelope tables,
// the best model per radius, abstention rates and empirical accuracy.
package analysis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/smoothadv/smoothadv/certify"
)

// CertifyRecord is one line of a certify log.
type CertifyRecord struct {
	Idx, Label, Predict int
	Radius              float64 // L2 radius; 0 when Predict is certify.Abstain
	Correct             bool
	Time                time.Duration
}

// CertifyLog is a whole certify log.
type CertifyLog struct {
	Path    string
	Records []CertifyRecord
}

// PredictRecord is one line of a predict log.
type PredictRecord struct {
	Idx, Label, Predict, BasePredict int
	Correct                          bool
	Time                             time.Duration
}

// PredictLog is a whole predict log.
type PredictLog struct {
	Path    string
	Records []PredictRecord
}

// ReadCertifyLog reads the certify log at path.
func ReadCertifyLog(path string) (*CertifyLog, error) {
	return readFile(path, ParseCertifyLog)
}

// ReadPredictLog reads the predict log at path.
func ReadPredictLog(path string) (*PredictLog, error) {
	return readFile(path, ParsePredictLog)
}

func readFile[T any](path string, parse func(io.Reader, string) (T, error)) (T, error) {
	f, err := os.Open(path)
	if err != nil {
		var zero T
		return zero, err
	}
	defer f.Close()
	return parse(f, path)
}

// ParseCertifyLog parses a certify log; name is used in error messages.
func ParseCertifyLog(r io.Reader, name string) (*CertifyLog, error) {
	log := &CertifyLog{Path: name}
	err := parseLines(r, name, certify.CertifyHeader, func(f *fields) {
		log.Records = append(log.Records, CertifyRecord{
			Idx:     field(f, "idx", toInt),
			Label:   field(f, "label", toInt),
			Predict: field(f, "predict", toInt),
			Radius:  field(f, "radius", toFloat),
			Correct: field(f, "correct", toBit),
			Time:    field(f, "time", certify.ParseTimedelta),
		})
	})
	if err != nil {
		return nil, err
	}
	return log, nil
}

// ParsePredictLog parses a predict log; name is used in error messages.
func ParsePredictLog(r io.Reader, name string) (*PredictLog, error) {
	log := &PredictLog{Path: name}
	err := parseLines(r, name, certify.PredictHeader, func(f *fields) {
		log.Records = append(log.Records, PredictRecord{
			Idx:         field(f, "idx", toInt),
			Label:       field(f, "label", toInt),
			Predict:     field(f, "predict", toInt),
			BasePredict: field(f, "basePredict", toInt),
			Correct:     field(f, "correct", toBit),
			Time:        field(f, "time", certify.ParseTimedelta),
		})
	})
	if err != nil {
		return nil, err
	}
	return log, nil
}

// parseLines checks the header, then hands every non-blank line to record as
// tab-separated fields. The first malformed field of a line is reported with
// the file name and line number.
func parseLines(r io.Reader, name, header string, record func(*fields)) error {
	columns := strings.Split(header, "\t")
	sc := bufio.NewScanner(r)
	line, records := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if line == 1 {
			if text != header {
				return fmt.Errorf("%s:1: header is %q, want %q", name, text, header)
			}
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue // pandas, which the reference reads logs with, skips blank lines
		}
		values := strings.Split(text, "\t")
		if len(values) != len(columns) {
			return fmt.Errorf("%s:%d: %d fields, want %d (%s)", name, line, len(values), len(columns), strings.Join(columns, ", "))
		}
		f := &fields{names: columns, values: values}
		record(f)
		if f.err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, f.err)
		}
		records++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if line == 0 {
		return fmt.Errorf("%s: empty file, want the header %q", name, header)
	}
	if records == 0 {
		return fmt.Errorf("%s: no records after the header", name)
	}
	return nil
}

// fields holds the values of one line by column name and the first error
// decoding them, so that a record can be built in one expression.
type fields struct {
	names, values []string
	err           error
}

func (f *fields) value(name string) (string, bool) {
	if f.err != nil {
		return "", false
	}
	for i, n := range f.names {
		if n == name {
			return f.values[i], true
		}
	}
	f.err = fmt.Errorf("no column %q", name) // a bug in this package, not in the file
	return "", false
}

// field decodes the named value of the line with conv; after the line's
// first error it returns zero values.
func field[T any](f *fields, name string, conv func(string) (T, error)) T {
	var x T
	v, ok := f.value(name)
	if !ok {
		return x
	}
	x, err := conv(v)
	if err != nil {
		f.err = fmt.Errorf("column %s: %q: %w", name, v, err)
	}
	return x
}

func toInt(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	return n, nil
}

func toFloat(s string) (float64, error) {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errors.New("not a number")
	}
	return x, nil
}

func toBit(s string) (bool, error) {
	if s != "0" && s != "1" {
		return false, errors.New("want 0 or 1")
	}
	return s == "1", nil
}
