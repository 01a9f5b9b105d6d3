package spec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/figure"
	"github.com/smoothadv/smoothadv/internal/atomicfile"
)

// Run makes every table and plot of s. Tables without an out file go to
// stdout, each under a "== group: kind" line when there are several.
func (s *Spec) Run(stdout io.Writer) error {
	models, err := s.load()
	if err != nil {
		return err
	}
	if s.OutputDir != "" {
		if err := os.MkdirAll(s.OutputDir, 0o755); err != nil {
			return err
		}
		if err := s.writeResolved(); err != nil {
			return err
		}
	}
	toStdout := 0
	for _, t := range s.Tables {
		if t.Out == "" {
			toStdout++
		}
	}
	for i, t := range s.Tables {
		var buf bytes.Buffer
		if err := t.write(&buf, models[t.Group]); err != nil {
			return fmt.Errorf("tables[%d]: %w", i, err)
		}
		if t.Out != "" {
			if err := writeFile(t.Out, buf.Bytes()); err != nil {
				return err
			}
			continue
		}
		if toStdout > 1 {
			fmt.Fprintf(stdout, "== %s: %s\n", t.Group, t.Kind)
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	for i, p := range s.Plots {
		if err := os.MkdirAll(filepath.Dir(p.Out), 0o755); err != nil {
			return err
		}
		if err := figure.Save(p.Out, models[p.Group], p.options()); err != nil {
			return fmt.Errorf("plots[%d]: %w", i, err)
		}
	}
	return nil
}

// load reads every group's logs, each file once.
func (s *Spec) load() (map[string][]analysis.Model, error) {
	logs := analysis.LogCache{}
	models := map[string][]analysis.Model{}
	for _, g := range s.Groups {
		for _, l := range g.Logs {
			log, err := logs.Read(l.Path)
			if err != nil {
				return nil, fmt.Errorf("group %s: %w", g.Name, err)
			}
			models[g.Name] = append(models[g.Name], analysis.Model{Legend: l.Legend, Log: log})
		}
	}
	return models, nil
}

func (t Table) write(w io.Writer, models []analysis.Model) error {
	radii, err := analysis.ParseRadii(t.Radii)
	if err != nil {
		return err
	}
	switch t.Kind {
	case Best:
		return analysis.WriteBest(w, analysis.BestModels(models, radii))
	case Envelope:
		return analysis.UpperEnvelope(models, radii).Write(w, analysis.Format(t.Format))
	}
	return analysis.NewTable(models, radii).Write(w, analysis.Format(t.Format))
}

// writeResolved records the spec as it was run beside the results.
func (s *Spec) writeResolved() error {
	data, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding the resolved spec: %w", err)
	}
	return writeFile(s.resolvedPath(), data)
}

// resolvedPath is where the resolved spec is written.
func (s *Spec) resolvedPath() string { return filepath.Join(s.OutputDir, s.name+".resolved.yaml") }

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}
