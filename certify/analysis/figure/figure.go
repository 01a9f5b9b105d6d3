// Package figure draws certified accuracy against radius, one curve per
// certify log, like the reference's plot_certified_accuracy, with gonum/plot.
package figure

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/smoothadv/smoothadv/certify/analysis"
)

// Options says what to draw and how large.
type Options struct {
	Title     string
	MaxRadius float64 // right end of the x axis; 0 picks the largest radius in the logs, rounded up to 0.25
	Step      float64 // radius step of the curves; 0 means the reference's 0.01
	Envelope  bool    // also draw the upper envelope of all curves
	Width     float64 // inches; 0 means 6
	Height    float64 // inches; 0 means 4.5
	DPI       int     // dots per inch of PNG output; 0 means 150
}

// Defaults returns o with the step and size options it leaves at zero set.
func (o Options) Defaults() Options {
	if o.Step == 0 {
		o.Step = 0.01
	}
	if o.Width == 0 {
		o.Width = 6
	}
	if o.Height == 0 {
		o.Height = 4.5
	}
	if o.DPI == 0 {
		o.DPI = 150
	}
	return o
}

// withDefaults fills unset options and checks the rest.
func (o Options) withDefaults(models []analysis.Model) (Options, error) {
	if len(models) == 0 {
		return o, fmt.Errorf("plot: no certify logs")
	}
	o = o.Defaults()
	if o.MaxRadius == 0 {
		o.MaxRadius = 0.25
		for _, m := range models {
			o.MaxRadius = math.Max(o.MaxRadius, math.Ceil(m.Log.MaxRadius()*4)/4)
		}
	}
	return o, o.Check()
}

// Check reports every problem with options that Defaults has filled; a
// MaxRadius of 0 still means the logs' largest radius.
func (o Options) Check() error {
	var problems []string
	if !(o.MaxRadius >= 0) || math.IsInf(o.MaxRadius, 0) {
		problems = append(problems, fmt.Sprintf("max radius %v must be finite and not negative", o.MaxRadius))
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"step", o.Step}, {"width", o.Width}, {"height", o.Height}, {"dpi", float64(o.DPI)}} {
		if !(c.v > 0) || math.IsInf(c.v, 0) {
			problems = append(problems, fmt.Sprintf("%s %v must be positive", c.name, c.v))
		}
	}
	if o.Width*float64(o.DPI) > 20000 || o.Height*float64(o.DPI) > 20000 {
		problems = append(problems, fmt.Sprintf("%vx%v inches at %d dpi is over 20000 pixels a side", o.Width, o.Height, o.DPI))
	}
	if len(problems) > 0 {
		return fmt.Errorf("plot: %s", strings.Join(problems, "; "))
	}
	return nil
}

// New draws the certified accuracy curves of models.
func New(models []analysis.Model, opt Options) (*plot.Plot, error) {
	opt, err := opt.withDefaults(models)
	if err != nil {
		return nil, err
	}
	radii, err := analysis.Radii(0, opt.MaxRadius, opt.Step)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	p := plot.New()
	p.Title.Text = plainText(opt.Title)
	p.X.Label.Text = "L2 radius"
	p.Y.Label.Text = "certified accuracy"
	p.X.Min, p.X.Max = 0, opt.MaxRadius
	p.Y.Min, p.Y.Max = 0, 1
	p.X.Tick.Marker = stepTicks{}
	p.Y.Tick.Marker = stepTicks{}
	p.Legend.Top = true
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(8)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Add(plotter.NewGrid())
	for i, m := range models {
		line, err := curve(radii, m.Log.CertifiedAccuracies(radii))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", m.Legend, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		p.Add(line)
		p.Legend.Add(plainText(m.Legend), line)
	}
	if opt.Envelope {
		var acc []float64
		for _, pick := range analysis.UpperEnvelope(models, radii) {
			acc = append(acc, pick.Accuracy)
		}
		line, err := curve(radii, acc)
		if err != nil {
			return nil, fmt.Errorf("plot envelope: %w", err)
		}
		line.Width = vg.Points(2.5)
		line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(line)
		p.Legend.Add("upper envelope", line)
	}
	return p, nil
}

// stepTicks labels an axis every 0.25, 0.5 or 1, whichever gives at most ten
// labels; gonum's default leaves only two or three.
type stepTicks struct{}

func (stepTicks) Ticks(min, max float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{0.25, 0.5} {
		if (max-min)/s <= 10 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	for i := math.Ceil(min / step); i*step <= max+1e-9; i++ {
		v := i * step
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
	}
	return ticks
}

// latexSymbols turns the LaTeX that legends carry for tables into plain
// text for the figure ("$\sigma = 0.25$" becomes "σ = 0.25"). gonum's own
// LaTeX renderer panics on markup it cannot parse, so it is not used.
var latexSymbols = strings.NewReplacer(
	"$", "", `\sigma`, "σ", `\epsilon`, "ε", `\varepsilon`, "ε", `\alpha`, "α",
	`\rho`, "ρ", `\delta`, "δ", `\ell`, "l", `\,`, " ", `\_`, "_", "{", "", "}", "",
)

func plainText(s string) string { return latexSymbols.Replace(s) }

func curve(x, y []float64) (*plotter.Line, error) {
	xy := make(plotter.XYs, len(x))
	for i := range x {
		xy[i] = plotter.XY{X: x[i], Y: y[i]}
	}
	return plotter.NewLine(xy)
}

// Save draws models into path, a .png, .svg or .pdf file.
func Save(path string, models []analysis.Model, opt Options) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	opt, err = opt.withDefaults(models)
	if err != nil {
		return err
	}
	canvas := newCanvas(format, opt)
	p, err := New(models, opt)
	if err != nil {
		return err
	}
	p.Draw(draw.New(canvas))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := canvas.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// FormatOf is the image format Save writes to path, from its extension.
func FormatOf(path string) (string, error) {
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	switch format {
	case "png", "svg", "pdf":
		return format, nil
	}
	return "", fmt.Errorf("plot %s: unknown image format %q: want .png, .svg or .pdf", path, format)
}

func newCanvas(format string, opt Options) vg.CanvasWriterTo {
	w, h := vg.Length(opt.Width)*vg.Inch, vg.Length(opt.Height)*vg.Inch
	switch format {
	case "svg":
		return vgsvg.New(w, h)
	case "pdf":
		return vgpdf.New(w, h)
	}
	return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(opt.DPI))}
}
