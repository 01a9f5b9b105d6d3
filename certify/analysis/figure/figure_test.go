package figure

import (
	"bytes"
	"encoding/xml"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/certify/analysis"
	"github.com/smoothadv/smoothadv/certify/analysis/internal/reftest"
)

func cohenModels(t *testing.T) []analysis.Model {
	t.Helper()
	var args []string
	for i, p := range reftest.Set(t, "all_cifar_cohen_fulldataset") {
		args = append(args, p+"=Cohen et al. sigma "+[]string{"0.12", "0.25", "0.50", "1.00"}[i])
	}
	models, err := analysis.LoadModels(args)
	if err != nil {
		t.Fatal(err)
	}
	return models
}

func TestPNGSize(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cohen.png")
	opt := Options{Title: "Cohen et al., CIFAR-10", Envelope: true, Width: 4, Height: 3, DPI: 100, Step: 0.05}
	if err := Save(out, cohenModels(t), opt); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if got := img.Bounds().Size(); got != (image.Point{X: 400, Y: 300}) {
		t.Errorf("size %v, want 400x300 (4x3 inches at 100 dpi)", got)
	}
	if n := colours(img); n < 5 {
		t.Errorf("only %d colours: the curves are missing", n)
	}
}

func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}

func TestSVGAndPDF(t *testing.T) {
	dir := t.TempDir()
	models := cohenModels(t)[:2]
	opt := Options{Width: 5, Height: 4, Step: 0.1}
	svgPath, pdfPath := filepath.Join(dir, "a.svg"), filepath.Join(dir, "a.PDF")
	for _, p := range []string{svgPath, pdfPath} {
		if err := Save(p, models, opt); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		XMLName xml.Name
		Width   string `xml:"width,attr"`
		Height  string `xml:"height,attr"`
	}
	if err := xml.Unmarshal(data, &root); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	// 5x4 inches is 360x288 points.
	if root.XMLName.Local != "svg" || root.Width != "360pt" || root.Height != "288pt" {
		t.Errorf("svg root %+v, want <svg width=360pt height=288pt>", root)
	}
	if !bytes.Contains(data, []byte("sigma 0.25")) {
		t.Error("legend missing from the SVG")
	}
	pdf, err := os.ReadFile(pdfPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("/MediaBox [0 0 360.00 288.00]")) {
		t.Errorf("not a 360x288 pt PDF: %q", pdf[:min(len(pdf), 200)])
	}
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	models := cohenModels(t)[:1]
	for _, c := range []struct {
		path string
		opt  Options
		want string
	}{
		{filepath.Join(dir, "a.gif"), Options{}, `unknown image format "gif"`},
		{filepath.Join(dir, "a.png"), Options{Width: -1, DPI: -3}, "width -1 must be positive; dpi -3 must be positive"},
		{filepath.Join(dir, "a.png"), Options{Width: 300}, "over 20000 pixels"},
		{filepath.Join(dir, "no", "a.png"), Options{Step: 0.5}, "no such file"},
	} {
		if err := Save(c.path, models, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: error %v, want %q", c.path, c.opt, err, c.want)
		}
	}
	if err := Save(filepath.Join(dir, "b.png"), nil, Options{}); err == nil {
		t.Error("no logs accepted")
	}
}

func TestPlainText(t *testing.T) {
	if got := plainText(`PGD, $m = 4$, $\epsilon = 0.25$, $\sigma_{0} = 0.12$`); got != "PGD, m = 4, ε = 0.25, σ_0 = 0.12" {
		t.Errorf("plainText = %q", got)
	}
}
