package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/smoothadv/models/inputlayer"
	"github.com/smoothadv/smoothadv/smoothadv/models/modelstest"
	"github.com/smoothadv/smoothadv/torchbind"
)

// refusedBefore runs smoothadv with args and checks that it exits 1 with a
// message containing want, having created none of unwritten.
func refusedBefore(t *testing.T, args []string, want string, unwritten ...string) {
	t.Helper()
	out := refused(t, args...)
	if !strings.HasPrefix(out, "smoothadv: ") || !strings.Contains(out, want) {
		t.Errorf("smoothadv %s says\n%s\nwant a message containing %q", strings.Join(args, " "), out, want)
	}
	for _, p := range unwritten {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("smoothadv %s created %s before refusing", strings.Join(args, " "), p)
		}
	}
}

// savedModel saves a fresh arch as a TorchScript file with our metadata.
func savedModel(t *testing.T, arch string, opt models.Options) string {
	t.Helper()
	opt.Dir = testenv.ModelsDir()
	m, err := models.New(arch, 1, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := filepath.Join(t.TempDir(), arch+".pt")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBadInputRefusedBeforeWriting gives certify, predict, train, bench,
// compare and analyze plot each kind of bad number and name: each exits 1
// with a message saying what is wrong, before creating its output.
func TestBadInputRefusedBeforeWriting(t *testing.T) {
	model := fashionModel(t)
	cifar := savedModel(t, "cifar_resnet20", models.Options{})
	center := savedModel(t, "fashion_cnn", models.Options{Normalization: inputlayer.Center})
	dir := t.TempDir()
	out := filepath.Join(dir, "certify.tsv")
	_, noGPU := torchbind.ResolveDevice("cuda:99")
	certifyWith := func(m, sigma string, extra ...string) []string {
		return append([]string{"certify", "fashion-mnist", m, sigma, out, "--device", "cpu", "--N", "10", "--skip", "5000"}, extra...)
	}
	const sigmaRange = ": want a number in (0, 10000]: images lie in [0, 1]"
	for _, c := range []struct {
		args []string
		want string
	}{
		{certifyWith(model, "inf"), "sigma +Inf" + sigmaRange},
		{certifyWith(model, "1e308"), "sigma 1e+308" + sigmaRange},
		{certifyWith(model, "0"), "sigma 0" + sigmaRange},
		{certifyWith(model, "a quarter"), `SIGMA must be a number, got "a quarter"`},
		{certifyWith(model, "-0.25"), "-0.25: a negative number is no argument of this command"},
		{certifyWith(model, "0.25", "--N", "0"), "certify: need N0 >= 1 and N >= 1, got N0=100 N=0"},
		{certifyWith(model, "0.25", "--alpha", "0"), "certify: need 0 < alpha < 1, got 0"},
		{certifyWith(model, "0.25", "--batch", "0"), "batch 0: want >= 1"},
		{certifyWith(model, "0.25", "--workers", "-1"), "workers -1: want >= 0"},
		{certifyWith(model, "0.25", "--group", "-1"), "group -1: want >= 0"},
		{certifyWith(model, "0.25", "--skip", "0"), "skip 0: want >= 1"},
		{certifyWith(model, "0.25", "--seed", "-1"), "--seed -1: want a whole number >= 0"},
		{certifyWith(model, "0.25", "--seed", "18446744073709551616"), "--seed 18446744073709551616: out of range for a whole number >= 0"},
		{certifyWith(model, "0.25", "--N", "many"), "--N many: want a whole number"},
		{certifyWith(model, "0.25", "--shard", "1/2/3"), `shard "1/2/3": want i/n, auto or auto/n, with n a whole number`},
		{certifyWith(model, "0.25", "--max", "-2"), "max -2: want >= -1"},
		{certifyWith(model, "0.25", "--device", "cpu:1"), `device "cpu:1": cpu takes no index (want auto, cpu, cuda or cuda:N)`},
		{certifyWith(model, "0.25", "--device", "gpu"), `unknown device "gpu" (want auto, cpu, cuda or cuda:N)`},
		{certifyWith(model, "0.25", "--device", "cuda:99"), noGPU.Error()},
		{certifyWith(cifar, "0.25"), "model " + cifar + " takes 3x32x32 inputs but fashion-mnist images are 1x28x28"},
		{certifyWith(center, "0.25", "--normalization", "normalize"),
			"model " + center + " records the center input layer (InputCenterLayer) but --normalization asks for normalize (NormalizeLayer)"},
		{certifyWith(model, "0.25", "--normalization", "whiten"), `unknown normalization "whiten"`},
		{certifyWith(model, "0.25", "--target-radius", "-1"), "certify: need a finite target radius >= 0 (0: not adaptive), got -1"},
		{certifyWith(model, "0.25", "--radius", "pc"), `certify: radius rule "pc": want pa (the reference's) or pb`},
		{certifyWith(model, "0.25", "--target-radius", "0.5"), "certify: target radius 0.5 is out of reach: even if all N=10 samples voted for one class"},
		{[]string{"predict", "fashion-mnist", model, "inf", dir + "/predict"}, "sigma +Inf" + sigmaRange},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--N", "0"}, "predict: need N >= 1, got 0"},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--attack", "PGD", "--epsilon", "0"}, "--epsilon 0: want a finite number > 0, in 1/256 units"},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--attack", "PGD", "--epsilon", "-64"}, "--epsilon -64: want a finite number > 0"},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--base-attack"}, "--base-attack sets up an attack, but no --attack is given"},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--epsilon", "32"}, "--epsilon sets up an attack, but no --attack is given"},
		{[]string{"predict", "fashion-mnist", model, "0.25", dir + "/predict", "--device", "cpu:0"}, `device "cpu:0": cpu takes no index`},
		{[]string{"train", "fashion-mnist", "fashion_cnn", dir + "/train", "--noise_sd", "inf"}, "noise_sd: +Inf, want a number in [0, 10000]"},
		{[]string{"train", "fashion-mnist", "fashion_cnn", dir + "/train", "--lr", "0"}, "lr: 0, want > 0"},
		{[]string{"train", "fashion-mnist", "fashion_cnn", dir + "/train", "--train-subset", "100000"}, "train_subset 100000 keeps 1 of the 60000 training images, fewer than one batch (256)"},
		{[]string{"analyze", "best", "--step", "0", dir + "/a.tsv"}, "--step 0"},
		{[]string{"train", "fashion-mnist", "fashion_cnn", dir + "/train", "--gpu", "x"}, `device "cuda:x": GPU index "x" is not a number`},
		{[]string{"bench", "certify", model, "--device", "cpu:1"}, `device "cpu:1": cpu takes no index`},
		{[]string{"bench", "certify", model, "--device", "cpu", "--images", "0"}, "bench: images 0, want >= 1"},
		{[]string{"bench", "certify", model, "--device", "cpu", "--sigma", "inf"}, "bench: sigma +Inf, want a number in [0, 10000]"},
		{[]string{"bench", "train", model, "--device", "cpu", "--steps", "0"}, "bench: steps 0, want >= 1"},
		{[]string{"bench", "train", model, "--device", "cpu", "--config", "gaussian,pgd"}, `bench: configuration "pgd", want one of gaussian, pgd-t2-m2, pgd-t10-m4`},
		{[]string{"bench", "train", model, "--device", "cpu", "--batch", "6"}, "bench: batch 6 is not a multiple of pgd-t10-m4's 4 noise vectors"},
		{[]string{"bench", "train", model, "--device", "gpu"}, `unknown device "gpu"`},
		{[]string{"compare", dir + "/a.tsv", dir + "/b.tsv", "--level", "0"}, "compare: level 0 not in (0, 1)"},
		{[]string{"compare", dir + "/a.tsv", dir + "/b.tsv", "--alpha", "0"}, "compare: alpha 0 not in (0, 1)"},
		{[]string{"compare", dir + "/a.tsv", dir + "/b.tsv", "--confidence", "1"}, "compare: confidence 1 not in (0, 1)"},
		{[]string{"analyze", "plot", "--out", dir + "/plot.png", "--dpi", "0", dir + "/a.tsv"}, "plot: dpi 0 must be positive"},
		{[]string{"analyze", "plot", "--out", dir + "/plot.png", "--step", "0", dir + "/a.tsv"}, "plot: step 0 must be positive"},
	} {
		t.Run(strings.Join(c.args[:min(len(c.args), 2)], " "), func(t *testing.T) {
			refusedBefore(t, c.args, c.want, out, out+".json", out+".samples", dir+"/predict", dir+"/train", dir+"/plot.png")
		})
	}
}

// TestPlainModelCertifiesAndPredicts runs certify and predict on a model
// saved with torch.jit.trace (no metadata, normalisation inside) without
// --arch, and refuses one whose classes do not match the dataset's.
func TestPlainModelCertifiesAndPredicts(t *testing.T) {
	p := modelstest.WritePlain(t)
	if msg := refused(t, "bench", "certify", p.Models["traced"], "--device", "cpu", "--reference", ""); !strings.Contains(msg, "does not record its architecture, and bench takes none") {
		t.Errorf("bench certify on a plain model:\n%s", msg)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "certify.tsv")
	smoothadv(t, "certify", "fashion-mnist", p.Models["traced"], "0.25", out, "--N0", "10", "--N", "100", "--skip", "2500", "--device", "cpu")
	if n := lineCount(out); n != 5 {
		t.Errorf("certify log has %d lines, want a header and 4", n)
	}
	smoothadv(t, "predict", "fashion-mnist", p.Models["scripted"], "0.25", dir, "--N", "100", "--skip", "2500", "--device", "cpu")
	if n := lineCount(filepath.Join(dir, "noise_0.25", "predictions")); n != 5 {
		t.Errorf("predict log has %d lines, want a header and 4", n)
	}
	seven := filepath.Join(dir, "seven.tsv")
	refusedBefore(t, []string{"certify", "fashion-mnist", p.Models["seven"], "0.25", seven, "--device", "cpu"},
		"model "+p.Models["seven"]+" outputs 7 classes but fashion-mnist has 10", seven)
}

// TestAdaptiveCertifyCLI: --target-radius writes the reference's log, its
// samples file and a summary, and analyze and compare read the log as it is.
func TestAdaptiveCertifyCLI(t *testing.T) {
	p := modelstest.WritePlain(t)
	out := filepath.Join(t.TempDir(), "certify.tsv")
	said := smoothadv(t, "certify", "fashion-mnist", p.Models["traced"], "0.25", out, "--N0", "10", "--N", "400", "--skip", "2500",
		"--device", "cpu", "--target-radius", "0.1", "--radius", "pb")
	if !strings.Contains(said, "4 examples used") {
		t.Errorf("certify said %q, want a summary of the samples of 4 examples", said)
	}
	if n := lineCount(out); n != 5 {
		t.Errorf("certify log has %d lines, want a header and 4", n)
	}
	if n := lineCount(out + ".samples"); n != 5 {
		t.Errorf("samples file has %d lines, want a header and 4", n)
	}
	smoothadv(t, "analyze", "table", out, "--radii", "0:0.25:0.25")
	smoothadv(t, "compare", out, out, "--radii", "0.1:0.1:0.1")
}
