package data

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/smoothadv/data/augment"
	"github.com/smoothadv/smoothadv/smoothadv/data/internal/nppickle"
)

func TestCIFAR10MatchesPickle(t *testing.T) {
	dir := t.TempDir()
	var want map[string]expectedSet
	fixture(t, "cifar", dir, &want)
	for _, format := range []string{"py", "bin"} {
		t.Run(format, func(t *testing.T) {
			test, err := Open("cifar10", filepath.Join(dir, format), Test)
			if err != nil {
				t.Fatal(err)
			}
			if test.Shape() != (Shape{3, 32, 32}) || test.NumClasses() != 10 {
				t.Fatalf("%v images in %d classes, want 3x32x32 in 10", test.Shape(), test.NumClasses())
			}
			checkPlain(t, test, want[Test])
			train, err := Open("cifar10", filepath.Join(dir, format), Train)
			if err != nil {
				t.Fatal(err)
			}
			checkAugmented(t, train, want[Train])
		})
	}
}

// checkAugmented checks that a training split gives the expected pixels after the reference's
// random crop and flip, drawn from the same seed, and the plain pixels without a random source
// (evaluation on the training split).
func checkAugmented(t *testing.T, ds Dataset, want expectedSet) {
	t.Helper()
	checkPlain(t, ds, want)
	s := ds.Shape()
	got, exp := make([]float32, s.Size()), make([]float32, s.Size())
	for i, wantLabel := range want.Labels {
		label, err := ds.Read(i, rand.New(rand.NewPCG(7, uint64(i))), got)
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range want.Pixels[i*s.Size() : (i+1)*s.Size()] {
			exp[j] = float32(v) / 255
		}
		augment.CropFlip(augment.Image{C: s.C, H: s.H, W: s.W, Pix: exp}, 4, rand.New(rand.NewPCG(7, uint64(i))))
		if label != wantLabel {
			t.Errorf("example %d: label %d, Python reads %d", i, label, wantLabel)
		}
		for j := range got {
			if got[j] != exp[j] {
				t.Fatalf("example %d value %d: %v, want %v", i, j, got[j], exp[j])
			}
		}
	}
}

func TestImageNet32LabelsFromZero(t *testing.T) {
	dir := t.TempDir()
	var want map[string]expectedSet
	fixture(t, "imagenet32", dir, &want)
	test, err := Open("imagenet32", dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if test.NumClasses() != 1000 {
		t.Errorf("NumClasses() = %d, want 1000", test.NumClasses())
	}
	checkPlain(t, test, want[Test])
	train, err := Open("imagenet32", dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	// The first batch holds labels 1 and 1000, the ends of the 1-based range.
	if l := want[Train].Labels[:2]; l[0] != 0 || l[1] != 999 {
		t.Fatalf("fixture's first labels %v, want the reference's 0 and 999", l)
	}
	checkAugmented(t, train, want[Train])
}

func TestPseudoLabelledIsHWC(t *testing.T) {
	var want struct {
		Path string `json:"path"`
		expectedSet
	}
	fixture(t, "pseudo", t.TempDir(), &want)
	plain, err := loadPseudoLabelled(want.Path)
	if err != nil {
		t.Fatal(err)
	}
	checkPlain(t, plain, want.expectedSet)
	ds, err := OpenPseudoLabelled(want.Path)
	if err != nil {
		t.Fatal(err)
	}
	checkAugmented(t, ds, want.expectedSet)
}

func TestHostilePickleIsRefused(t *testing.T) {
	dir := t.TempDir()
	fixture(t, "hostile", dir, new(struct{}))
	_, _, err := readCIFARPickle(filepath.Join(dir, "data_batch_1"))
	if err == nil || !strings.Contains(err.Error(), "system, which is not allowed") {
		t.Fatalf("error %v, want a refusal of os.system", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("the pickle's command ran")
	}
}

func TestTruncatedPicklesFail(t *testing.T) {
	dir := t.TempDir()
	fixture(t, "cifar", dir, &map[string]expectedSet{})
	for _, name := range []string{"data_batch_1", "data_batch_3", "data_batch_5"} {
		b, err := os.ReadFile(filepath.Join(dir, "py", "cifar-10-batches-py", name))
		if err != nil {
			t.Fatal(err)
		}
		// Cut everywhere in the header and the tail, and at a spread of places in the pixels.
		for cut := 0; cut < len(b); cut++ {
			if cut > 300 && cut < len(b)-300 && cut%97 != 0 {
				continue
			}
			p := filepath.Join(dir, "cut")
			write(t, p, b[:cut])
			if _, _, err := readCIFARPickle(p); err == nil {
				t.Fatalf("%s cut to %d of %d bytes: no error", name, cut, len(b))
			}
		}
		// Flipping bytes of the header must give errors or other values, never a crash.
		for i := range min(300, len(b)) {
			c := append([]byte(nil), b...)
			c[i] ^= 0xa5
			nppickle.Load(c)
		}
	}
}

func TestCIFAR10BinBadRecords(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "cifar-10-batches-bin")
	write(t, filepath.Join(bin, "test_batch.bin"), make([]byte, 3073*2+5))
	if _, err := Open("cifar10", dir, Test); err == nil || !strings.Contains(err.Error(), "whole number") {
		t.Fatalf("error %v, want a complaint about partial records", err)
	}
	rec := make([]byte, 3073)
	rec[0] = 10
	write(t, filepath.Join(bin, "test_batch.bin"), rec)
	if _, err := Open("cifar10", dir, Test); err == nil || !strings.Contains(err.Error(), "label 10") {
		t.Fatalf("error %v, want a complaint about label 10", err)
	}
}
