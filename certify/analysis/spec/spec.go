// Package spec runs a whole analysis described in a YAML file: groups of
// certify logs with legends, and the tables and plots to make from them, so
// that a paper's tables and figures are one command.
//
//	version: 1
//	output_dir: results        # optional; relative to this file
//	groups:
//	  - name: cohen
//	    logs:
//	      - path: logs/noise_0.25/test/sigma_0.25   # relative to this file
//	        legend: "$\\sigma = 0.25$"              # optional
//	tables:
//	  - group: cohen
//	    kind: envelope          # envelope, models or best
//	    radii: "0.25:2.25:0.25" # START:STOP:STEP, stop included
//	    format: latex           # latex, markdown, csv or text; not for best
//	    out: cohen.tex          # optional; stdout when absent
//	plots:
//	  - group: cohen
//	    out: cohen.png          # .png, .svg or .pdf
//	    envelope: true
//
// Relative paths of logs are relative to the YAML file. Relative out paths
// are relative to the output folder: the command line's, else output_dir,
// else the current directory. When an output folder is named, the resolved
// spec (absolute paths, defaults filled in) is written there as
// <name>.resolved.yaml, beside the results.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/figure"
	"github.com/smoothadv/smoothadv/internal/samepath"
)

// Version is the only spec version this package reads.
const Version = 1

// Table kinds.
const (
	Envelope = "envelope" // the upper envelope (the paper's Table 2 rows)
	Models   = "models"   // one row per log
	Best     = "best"     // the best log at each radius
)

// Spec is a decoded analysis file.
type Spec struct {
	Version   int     `yaml:"version"`
	OutputDir string  `yaml:"output_dir,omitempty"`
	Groups    []Group `yaml:"groups"`
	Tables    []Table `yaml:"tables,omitempty"`
	Plots     []Plot  `yaml:"plots,omitempty"`

	name string // the file's base name, for the resolved copy
}

// Group is a named list of certify logs.
type Group struct {
	Name string `yaml:"name"`
	Logs []Log  `yaml:"logs"`
}

// Log is one certify log and its legend (by default the reference's name
// for it, analysis.ModelName).
type Log struct {
	Path   string `yaml:"path"`
	Legend string `yaml:"legend,omitempty"`
}

// Table asks for one table of a group.
type Table struct {
	Group  string `yaml:"group"`
	Kind   string `yaml:"kind"`
	Radii  string `yaml:"radii"`
	Format string `yaml:"format,omitempty"` // default latex
	Out    string `yaml:"out,omitempty"`
}

// Plot asks for one figure of a group's certified accuracy curves.
type Plot struct {
	Group     string  `yaml:"group"`
	Out       string  `yaml:"out"`
	Title     string  `yaml:"title,omitempty"`
	Envelope  bool    `yaml:"envelope,omitempty"`
	MaxRadius float64 `yaml:"max_radius,omitempty"` // 0: the logs' largest radius
	Step      float64 `yaml:"step,omitempty"`
	Width     float64 `yaml:"width,omitempty"`  // inches
	Height    float64 `yaml:"height,omitempty"` // inches
	DPI       int     `yaml:"dpi,omitempty"`
}

// Load reads, resolves and validates the spec at path. outDir, when not
// empty, replaces the file's output_dir. Every problem found is reported,
// not just the first.
func Load(path, outDir string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file", path)
		}
		return nil, fmt.Errorf("%s: %s", path, yamlNames.Replace(err.Error()))
	}
	s.name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	if err := s.resolve(filepath.Dir(path), outDir); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if problems := s.validate(); len(problems) > 0 {
		return nil, fmt.Errorf("%s: %d problem(s):\n  %s", path, len(problems), strings.Join(problems, "\n  "))
	}
	return &s, nil
}

// yamlNames puts the decoder's Go type names in the file's words.
var yamlNames = strings.NewReplacer(
	"yaml: unmarshal errors:\n  ", "",
	"in type spec.Spec", "at the top level",
	"in type spec.Group", "in a group",
	"in type spec.Log", "in a group's log",
	"in type spec.Table", "in a table",
	"in type spec.Plot", "in a plot",
	"field ", "key ",
)

// resolve makes paths absolute and fills in defaults.
func (s *Spec) resolve(dir, outDir string) error {
	abs := func(base, p string) (string, error) {
		if p == "" || filepath.IsAbs(p) {
			return p, nil
		}
		return filepath.Abs(filepath.Join(base, p))
	}
	var err error
	if outDir != "" {
		s.OutputDir, err = filepath.Abs(outDir)
	} else {
		s.OutputDir, err = abs(dir, s.OutputDir)
	}
	if err != nil {
		return err
	}
	for g := range s.Groups {
		for i, l := range s.Groups[g].Logs {
			if l.Legend == "" {
				s.Groups[g].Logs[i].Legend = analysis.ModelName(l.Path)
			}
			if s.Groups[g].Logs[i].Path, err = abs(dir, l.Path); err != nil {
				return err
			}
		}
	}
	outBase := s.OutputDir
	if outBase == "" {
		outBase = "."
	}
	for i := range s.Tables {
		if s.Tables[i].Format == "" && s.Tables[i].Kind != Best {
			s.Tables[i].Format = string(analysis.LaTeX)
		}
		if s.Tables[i].Out, err = abs(outBase, s.Tables[i].Out); err != nil {
			return err
		}
	}
	for i, p := range s.Plots {
		o := p.options().Defaults()
		s.Plots[i].Step, s.Plots[i].Width, s.Plots[i].Height, s.Plots[i].DPI = o.Step, o.Width, o.Height, o.DPI
		if s.Plots[i].Out, err = abs(outBase, p.Out); err != nil {
			return err
		}
	}
	return nil
}

func (p Plot) options() figure.Options {
	return figure.Options{Title: p.Title, MaxRadius: p.MaxRadius, Step: p.Step, Envelope: p.Envelope, Width: p.Width, Height: p.Height, DPI: p.DPI}
}

// validate lists every problem with a resolved spec.
func (s *Spec) validate() []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if s.Version != Version {
		bad("version is %d, want %d", s.Version, Version)
	}
	if len(s.Groups) == 0 {
		bad("no groups")
	}
	groups := map[string]bool{}
	for g, group := range s.Groups {
		where := fmt.Sprintf("groups[%d] (%s)", g, group.Name)
		if group.Name == "" {
			bad("groups[%d]: no name", g)
		} else if groups[group.Name] {
			bad("%s: name used twice", where)
		}
		groups[group.Name] = true
		if len(group.Logs) == 0 {
			bad("%s: no logs", where)
		}
		for i, l := range group.Logs {
			if l.Path == "" {
				bad("%s.logs[%d]: no path", where, i)
			} else if _, err := os.Stat(l.Path); err != nil {
				bad("%s.logs[%d]: %v", where, i, err)
			}
		}
	}
	if len(s.Tables)+len(s.Plots) == 0 {
		bad("no tables or plots to make")
	}
	for i, t := range s.Tables {
		where := fmt.Sprintf("tables[%d]", i)
		if !groups[t.Group] {
			bad("%s: unknown group %q", where, t.Group)
		}
		switch t.Kind {
		case Envelope, Models:
			if _, err := analysis.ParseFormat(t.Format); err != nil {
				bad("%s: %v", where, err)
			}
		case Best:
			if t.Format != "" {
				bad("%s: a best table has the reference's one format; remove format %q", where, t.Format)
			}
		default:
			bad("%s: kind %q: want %s, %s or %s", where, t.Kind, Envelope, Models, Best)
		}
		if _, err := analysis.ParseRadii(t.Radii); err != nil {
			bad("%s: %v", where, err)
		}
	}
	for i, p := range s.Plots {
		where := fmt.Sprintf("plots[%d]", i)
		if !groups[p.Group] {
			bad("%s: unknown group %q", where, p.Group)
		}
		if p.Out == "" {
			bad("%s: no out file", where)
		} else if _, err := figure.FormatOf(p.Out); err != nil {
			bad("%s: %v", where, err)
		}
		if err := p.options().Check(); err != nil {
			bad("%s: %v", where, err)
		}
	}
	outs := s.outputs()
	for i, o := range outs {
		if problem := s.checkOutput(o.path); problem != "" {
			bad("%s: %s", o.where, problem)
		}
		for _, earlier := range outs[:i] {
			if samepath.Same(o.path, earlier.path) {
				bad("%s: out %s is also %s's: one would overwrite the other", o.where, o.path, earlier.where)
			}
		}
	}
	return problems
}

// output is a file the spec writes, and where the spec names it.
type output struct{ where, path string }

// outputs lists the files Run writes: the resolved spec and every table and
// plot with an out file.
func (s *Spec) outputs() []output {
	var out []output
	if s.OutputDir != "" {
		out = append(out, output{"the resolved spec", s.resolvedPath()})
	}
	for i, t := range s.Tables {
		if t.Out != "" {
			out = append(out, output{fmt.Sprintf("tables[%d]", i), t.Out})
		}
	}
	for i, p := range s.Plots {
		if p.Out != "" {
			out = append(out, output{fmt.Sprintf("plots[%d]", i), p.Out})
		}
	}
	return out
}

// checkOutput says what is wrong with writing to path, or "": an output
// may not be one of the spec's logs, and lies inside the output folder
// when one is named (so that a spec cannot write elsewhere, e.g. through
// "../x" or an absolute path).
func (s *Spec) checkOutput(path string) string {
	for _, g := range s.Groups {
		for _, l := range g.Logs {
			if l.Path != "" && samepath.Same(path, l.Path) {
				return fmt.Sprintf("out %s is the input log %s of group %s", path, l.Path, g.Name)
			}
		}
	}
	if s.OutputDir != "" {
		rel, err := filepath.Rel(s.OutputDir, path)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return fmt.Sprintf("out %s lies outside the output folder %s", path, s.OutputDir)
		}
	}
	return ""
}
