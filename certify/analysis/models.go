package analysis

import (
	"fmt"
	"strings"
)

// Model is a certify log with the legend it has in tables and plots.
type Model struct {
	Legend string
	Log    *CertifyLog
}

// ModelName is the default legend of a log: like the reference, the part of
// its path between "certify/" and "/test" when both are there, else the path.
func ModelName(path string) string {
	_, after, ok := strings.Cut(path, "certify/")
	if !ok {
		return path
	}
	before, _, ok := strings.Cut(after, "/test")
	if !ok {
		return path
	}
	return before
}

// ParseModelArg splits a "LOG[=LEGEND]" argument at its first "=", so a
// legend may contain "=" (as "$\sigma = 0.25$" does) but a path may not.
func ParseModelArg(arg string) (path, legend string) {
	path, legend, ok := strings.Cut(arg, "=")
	if !ok {
		legend = ModelName(path)
	}
	return path, legend
}

// LoadModels reads the certify log of every "LOG[=LEGEND]" argument. A log
// named twice is read once.
func LoadModels(args []string) ([]Model, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no certify logs given")
	}
	logs := LogCache{}
	models := make([]Model, len(args))
	for i, arg := range args {
		path, legend := ParseModelArg(arg)
		log, err := logs.Read(path)
		if err != nil {
			return nil, err
		}
		models[i] = Model{Legend: legend, Log: log}
	}
	return models, nil
}

// LogCache holds certify logs by path, so that a log named several times is
// read once.
type LogCache map[string]*CertifyLog

// Read returns the certify log at path, reading it the first time.
func (c LogCache) Read(path string) (*CertifyLog, error) {
	if log, ok := c[path]; ok {
		return log, nil
	}
	log, err := ReadCertifyLog(path)
	if err != nil {
		return nil, err
	}
	c[path] = log
	return log, nil
}

// Accuracies is the certified accuracy of every model (rows) at every radius
// (columns).
func Accuracies(models []Model, radii []float64) [][]float64 {
	acc := make([][]float64, len(models))
	for i, m := range models {
		acc[i] = m.Log.CertifiedAccuracies(radii)
	}
	return acc
}
