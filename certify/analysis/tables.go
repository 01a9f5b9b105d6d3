package analysis

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// Format is an output format for tables.
type Format string

// The table formats. LaTeX and Markdown follow the reference byte for byte;
// CSV keeps full precision (Python repr); Text is aligned for terminals.
const (
	LaTeX    Format = "latex"
	Markdown Format = "markdown"
	CSV      Format = "csv"
	Text     Format = "text"
)

// Formats lists every Format.
var Formats = []Format{LaTeX, Markdown, CSV, Text}

// ParseFormat checks that s names a Format.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("format %q: want one of %v", s, Formats)
}

// Table is the certified accuracy of several models at several radii.
type Table struct {
	Radii   []float64
	Legends []string
	Acc     [][]float64 // Acc[i][j]: model i at Radii[j]
}

// NewTable computes the table of models at radii.
func NewTable(models []Model, radii []float64) *Table {
	t := &Table{Radii: radii, Acc: Accuracies(models, radii)}
	for _, m := range models {
		t.Legends = append(t.Legends, m.Legend)
	}
	return t
}

// best reports whether model i has the largest accuracy at radius j, the
// first one counting when several tie (numpy's argmax).
func (t *Table) best(i, j int) bool {
	top := 0
	for k := range t.Acc {
		if t.Acc[k][j] > t.Acc[top][j] {
			top = k
		}
	}
	return i == top
}

// Write writes the table; LaTeX and Markdown are the reference's
// latex_table_certified_accuracy and markdown_table_certified_accuracy.
func (t *Table) Write(w io.Writer, f Format) error {
	switch f {
	case LaTeX:
		return writeAll(w, func(b *bufio.Writer) {
			latexHeader(b, t.Radii)
			for i, legend := range t.Legends {
				b.WriteString(legend)
				for j := range t.Radii {
					if v := pyfmt.F(t.Acc[i][j], 2); t.best(i, j) {
						b.WriteString(` & \textbf{` + v + "}")
					} else {
						b.WriteString(" & " + v)
					}
				}
				b.WriteString(`\\` + "\n")
			}
		})
	case Markdown:
		return writeAll(w, func(b *bufio.Writer) {
			b.WriteString("|  | ")
			for _, r := range t.Radii {
				b.WriteString("r = " + pyfmt.G(r, 3) + " |")
			}
			b.WriteString("\n| --- | " + strings.Repeat(" --- |", len(t.Radii)) + "\n")
			for i, legend := range t.Legends {
				b.WriteString("<b> " + legend + " </b>| ")
				for j := range t.Radii {
					b.WriteString(pyfmt.F(t.Acc[i][j], 2))
					if t.best(i, j) {
						b.WriteString("<b>*</b>")
					}
					b.WriteString(" |")
				}
				b.WriteString("\n")
			}
		})
	case CSV:
		rows := [][]string{append([]string{"model"}, reprs(t.Radii)...)}
		for i, legend := range t.Legends {
			rows = append(rows, append([]string{legend}, reprs(t.Acc[i])...))
		}
		return writeCSV(w, rows)
	case Text:
		return writeAligned(w, func(tw io.Writer) {
			fmt.Fprint(tw, "model")
			for _, r := range t.Radii {
				fmt.Fprintf(tw, "\tr=%s", pyfmt.G(r, 3))
			}
			fmt.Fprintln(tw)
			for i, legend := range t.Legends {
				fmt.Fprint(tw, legend)
				for j := range t.Radii {
					mark := ""
					if t.best(i, j) {
						mark = "*"
					}
					fmt.Fprintf(tw, "\t%.4f%s", t.Acc[i][j], mark)
				}
				fmt.Fprintln(tw)
			}
		})
	}
	return fmt.Errorf("table: unknown format %q", f)
}

// latexHeader writes the reference's header row and rule, shared by the
// per-model and envelope tables.
func latexHeader(b *bufio.Writer, radii []float64) {
	b.WriteString(`$\ell_2$ Radius`)
	for _, r := range radii {
		b.WriteString("& $" + pyfmt.G(r, 3) + "$")
	}
	b.WriteString(`\\` + "\n" + `\midrule` + "\n")
}

func reprs(v []float64) []string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = pyfmt.Repr(x)
	}
	return s
}

// writeAll buffers what write produces and reports the first write error.
func writeAll(w io.Writer, write func(*bufio.Writer)) error {
	b := bufio.NewWriter(w)
	write(b)
	return b.Flush()
}

func writeCSV(w io.Writer, rows [][]string) error {
	c := csv.NewWriter(w)
	if err := c.WriteAll(rows); err != nil {
		return fmt.Errorf("writing csv: %w", err)
	}
	return nil
}

// writeAligned writes tab-separated cells as aligned columns.
func writeAligned(w io.Writer, write func(io.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	write(tw)
	return tw.Flush()
}
