// Package analysis reads the certify and predict logs written by the reference
// code (and by this project) and computes what the SmoothAdv paper reports
// from them: certified accuracy at radii, per-model and upper-envelope tables,
// the best model per radius, abstention rates and empirical accuracy.
package analysis

import (
	"io"

	"github.com/smoothadv/smoothadv/certify"
)

// CertifyRecord is one line of a certify log.
type CertifyRecord = certify.CertifyRecord

// CertifyLog is a whole certify log.
type CertifyLog struct {
	Path    string
	Records []CertifyRecord
}

// PredictRecord is one line of a predict log.
type PredictRecord = certify.PredictRecord

// PredictLog is a whole predict log.
type PredictLog struct {
	Path    string
	Records []PredictRecord
}

// The readers below are certify's strict ones: a malformed or
// contradictory line, a negative or repeated index, or a NaN, infinite or
// negative radius is an error naming the file and the line.

// ReadCertifyLog reads the certify log at path.
func ReadCertifyLog(path string) (*CertifyLog, error) {
	recs, err := certify.ReadLog[CertifyRecord](path)
	if err != nil {
		return nil, err
	}
	return &CertifyLog{Path: path, Records: recs}, nil
}

// ReadPredictLog reads the predict log at path.
func ReadPredictLog(path string) (*PredictLog, error) {
	recs, err := certify.ReadLog[PredictRecord](path)
	if err != nil {
		return nil, err
	}
	return &PredictLog{Path: path, Records: recs}, nil
}

// ParseCertifyLog parses a certify log; name is used in error messages.
func ParseCertifyLog(r io.Reader, name string) (*CertifyLog, error) {
	recs, err := certify.ParseLog[CertifyRecord](r, name)
	if err != nil {
		return nil, err
	}
	return &CertifyLog{Path: name, Records: recs}, nil
}

// ParsePredictLog parses a predict log; name is used in error messages.
func ParsePredictLog(r io.Reader, name string) (*PredictLog, error) {
	recs, err := certify.ParseLog[PredictRecord](r, name)
	if err != nil {
		return nil, err
	}
	return &PredictLog{Path: name, Records: recs}, nil
}
