package models

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
)

var (
	fashionFit = Fit{Dataset: "fashion-mnist", Input: []int64{1, 28, 28}, NumClasses: 10}
	cifarFit   = Fit{Dataset: "cifar10", Input: []int64{3, 32, 32}, NumClasses: 10}
)

// TestPlainTorchScript loads traced and scripted models that record no
// metadata, as users save them, with the dataset describing them.
func TestPlainTorchScript(t *testing.T) {
	p := modelstest.WritePlain(t)
	for _, name := range []string{"traced", "scripted"} {
		m, err := Load(p.Models[name], Options{Fit: &fashionFit})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer m.Close()
		want := Meta{Dataset: "fashion-mnist", NumClasses: 10, Input: []int64{1, 28, 28}}
		if m.Meta.Dataset != want.Dataset || m.Meta.NumClasses != want.NumClasses || !slices.Equal(m.Meta.Input, want.Input) ||
			m.Meta.Arch != "" || m.Meta.Normalization != "" {
			t.Errorf("%s: meta %+v, want %+v", name, m.Meta, want)
		}
	}
	// The network runs as saved, its own normalisation included.
	m, err := Load(p.Models["traced"], Options{Fit: &fashionFit})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	g := golden{Input: p.Input, InputShape: p.InputShape, Logits: p.Logits}
	if d := maxAbsDiff(t, logits(t, m, "", g), readF32(t, p.Logits)); d > tolerance {
		t.Errorf("logits differ from PyTorch's by %g", d)
	}

	// Without a dataset to check it against, a plain file still needs --arch.
	if m, err := Load(p.Models["traced"], Options{}); err == nil {
		m.Close()
		t.Error("a plain model loaded with neither Arch nor Fit")
	} else if !strings.Contains(err.Error(), "has no smoothadv metadata: say which architecture it is (--arch)") {
		t.Errorf("plain model without Fit: %v", err)
	}
}

// TestFitRefusesMisfits checks every way a model can fail to fit a dataset,
// by its metadata or by what its network does on one batch.
func TestFitRefusesMisfits(t *testing.T) {
	p := modelstest.WritePlain(t)
	fashion := filepath.Join(templates, "fashion_cnn.pt")
	imagenet32 := filepath.Join(t.TempDir(), "imagenet32.pth.tar")
	m, err := New("imagenet32_resnet110", 1, Options{Dir: templates})
	if err != nil {
		t.Skipf("no exported imagenet32_resnet110 (make models): %v", err)
	}
	err = SaveCheckpoint(imagenet32, m, 0, nil)
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		opt        Options
		want       string
		also       string // libtorch's own words vary by version: only their gist
	}{
		{"classes", imagenet32, Options{Fit: &cifarFit}, "model " + imagenet32 + " outputs 1000 classes but cifar10 has 10", ""},
		{"input", fashion, Options{Fit: &cifarFit}, "model " + fashion + " takes 1x28x28 inputs but cifar10 images are 3x32x32", ""},
		{"plain classes", p.Models["seven"], Options{Fit: &fashionFit}, "outputs 7 classes but fashion-mnist has 10", ""},
		{"plain input", p.Models["rgb"], Options{Fit: &fashionFit}, "model " + p.Models["rgb"] + " does not run on fashion-mnist images (1x28x28): RuntimeError: ",
			"mat1 and mat2 shapes cannot be multiplied (2x784 and 3072x10)"},
		{"tuple", p.Models["tuple"], Options{Fit: &fashionFit}, "returned Tuple, not a tensor", ""},
		{"metadata", p.Models["liar"], Options{Fit: &fashionFit}, "model " + p.Models["liar"] + " records 10 classes but its network outputs 7", ""},
		{"plain normalization", p.Models["traced"], Options{Fit: &fashionFit, Normalization: inputlayer.Center},
			"has no smoothadv metadata, so its input layer is its own: --normalization cannot change it", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opt.Dir = templates
			m, err := Load(c.path, c.opt)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.also) {
				t.Errorf("error %q does not say %q and %q", err, c.want, c.also)
			}
		})
	}
}

// TestFitKeepsMode checks that the forward pass at load leaves the model in
// the mode it was saved in.
func TestFitKeepsMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "training.pt")
	m, err := New("fashion_cnn", 1, Options{Dir: templates})
	if err != nil {
		t.Skipf("no exported fashion_cnn (make models): %v", err)
	}
	err = m.Train(true)
	if err == nil {
		err = m.Save(path)
	}
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(path, Options{Fit: &fashionFit})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if on, err := back.IsTraining(); err != nil || !on {
		t.Errorf("after the check at load: training %t, %v; want the saved training mode", on, err)
	}
}

// TestNormalizationContradiction refuses an input layer other than the one a
// file records, unless forced; templates and reference checkpoints record
// none, so any layer goes.
func TestNormalizationContradiction(t *testing.T) {
	dir := t.TempDir()
	m, err := New("fashion_cnn", 1, Options{Dir: templates, Normalization: inputlayer.Center})
	if err != nil {
		t.Fatalf("a template behind another input layer: %v", err)
	}
	defer m.Close()
	script, ckpt := filepath.Join(dir, "center.pt"), filepath.Join(dir, "center.pth.tar")
	if err := m.Save(script); err != nil {
		t.Fatal(err)
	}
	if err := SaveCheckpoint(ckpt, m, 1, nil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{script, ckpt} {
		_, err := Load(path, Options{Dir: templates, Normalization: inputlayer.Normalize})
		want := "model " + path + " records the center input layer (InputCenterLayer) but --normalization asks for normalize (NormalizeLayer)"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--force-normalization") {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
		for _, opt := range []Options{{Normalization: inputlayer.Normalize, ForceNormalization: true}, {Normalization: inputlayer.Center}, {}} {
			opt.Dir = templates
			m, err := Load(path, opt)
			if err != nil {
				t.Errorf("%s with %+v: %v", path, opt, err)
				continue
			}
			want := opt.Normalization
			if want == "" {
				want = inputlayer.Center
			}
			if m.Meta.Normalization != want {
				t.Errorf("%s with %+v: %s input layer, want %s", path, opt, m.Meta.Normalization, want)
			}
			m.Close()
		}
	}
	if _, err := Load(script, Options{Dir: templates, Normalization: "zscore"}); err == nil || !strings.Contains(err.Error(), `unknown normalization "zscore"`) {
		t.Errorf("unknown normalization: %v", err)
	}
}
