package analysis

import (
	"bufio"
	"fmt"
	"io"

	"github.com/smoothadv/smoothadv/internal/pyfmt"
)

// Pick is the model chosen at one radius.
type Pick struct {
	Radius        float64
	Accuracy      float64 // certified accuracy of Model at Radius
	CleanAccuracy float64 // certified accuracy of Model at radius 0
	Model         int     // index into the models
	Legend        string
}

// Envelope is the upper envelope of several models' certified accuracy
// curves: at each radius, the model with the largest certified accuracy.
type Envelope []Pick

// UpperEnvelope picks at each radius the model with the largest certified
// accuracy and, among models that tie, the one with the largest accuracy at
// radius 0 (the first such model if that ties too), as the reference's
// latex_table_certified_accuracy_upper_envelope does.
func UpperEnvelope(models []Model, radii []float64) Envelope {
	return pick(models, radii, true)
}

// BestModels picks at each radius the first model with the largest certified
// accuracy, as the reference's radii_to_best_models does (it does not
// break ties by clean accuracy, so it can name another model than the
// envelope).
func BestModels(models []Model, radii []float64) []Pick {
	return pick(models, radii, false)
}

func pick(models []Model, radii []float64, preferClean bool) []Pick {
	if len(models) == 0 {
		return nil
	}
	acc := Accuracies(models, radii)
	clean := Accuracies(models, []float64{0})
	picks := make([]Pick, len(radii))
	for j, r := range radii {
		top := 0
		for i := range models {
			better := acc[i][j] > acc[top][j]
			tie := acc[i][j] == acc[top][j] && clean[i][0] > clean[top][0]
			if better || (preferClean && tie) {
				top = i
			}
		}
		picks[j] = Pick{Radius: r, Accuracy: acc[top][j], CleanAccuracy: clean[top][0], Model: top, Legend: models[top].Legend}
	}
	return picks
}

// Write writes the envelope. LaTeX is the reference's Table 2 row, byte for
// byte: each cell is $^{(clean accuracy)}$certified accuracy. Markdown, CSV
// and Text have one line per radius naming the chosen model.
func (e Envelope) Write(w io.Writer, f Format) error {
	switch f {
	case LaTeX:
		return writeAll(w, func(b *bufio.Writer) {
			radii := make([]float64, len(e))
			for j, p := range e {
				radii[j] = p.Radius
			}
			latexHeader(b, radii)
			for _, p := range e {
				b.WriteString(" & $^{(" + pyfmt.F(p.CleanAccuracy, 2) + ")}$" + pyfmt.F(p.Accuracy, 2))
			}
			b.WriteString(`\\` + "\n")
		})
	case Markdown:
		return writeAll(w, func(b *bufio.Writer) {
			b.WriteString("| radius | certified accuracy | clean accuracy | model |\n| --- | --- | --- | --- |\n")
			for _, p := range e {
				fmt.Fprintf(b, "| %s | %s | %s | %s |\n", pyfmt.G(p.Radius, 3), pyfmt.F(p.Accuracy, 2), pyfmt.F(p.CleanAccuracy, 2), p.Legend)
			}
		})
	case CSV:
		rows := [][]string{{"radius", "certified_accuracy", "clean_accuracy", "model"}}
		for _, p := range e {
			rows = append(rows, []string{pyfmt.Repr(p.Radius), pyfmt.Repr(p.Accuracy), pyfmt.Repr(p.CleanAccuracy), p.Legend})
		}
		return writeCSV(w, rows)
	case Text:
		return writeAligned(w, func(tw io.Writer) {
			fmt.Fprintln(tw, "radius\tcertified\tclean\tmodel")
			for _, p := range e {
				fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%s\n", pyfmt.G(p.Radius, 3), p.Accuracy, p.CleanAccuracy, p.Legend)
			}
		})
	}
	return fmt.Errorf("envelope: unknown format %q", f)
}

// WriteBest writes picks as the reference's radii_to_best_models file: a
// header, then radius ('{:.3f}'), accuracy (Python repr) and legend,
// tab-separated.
func WriteBest(w io.Writer, picks []Pick) error {
	return writeAll(w, func(b *bufio.Writer) {
		b.WriteString("radius\tbest_cert_accuracy\tbest_model\n")
		for _, p := range picks {
			b.WriteString(pyfmt.F(p.Radius, 3) + "\t" + pyfmt.Repr(p.Accuracy) + "\t" + p.Legend + "\n")
		}
	})
}
