package data

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type folderSample struct {
	Path  string `json:"path"`
	Label int    `json:"label"`
}

func TestImageNetFolder(t *testing.T) {
	dir := t.TempDir()
	var want struct {
		Classes []string       `json:"classes"`
		Test    []folderSample `json:"test"`
		Train   []folderSample `json:"train"`
	}
	fixture(t, "imagefolder", dir, &want)
	t.Setenv("IMAGENET_DIR", dir)
	open := func(t *testing.T, split string) Dataset {
		ds, err := Open("imagenet", "", split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Shape() != (Shape{3, 224, 224}) {
			t.Fatalf("shape %v, want 3x224x224", ds.Shape())
		}
		return ds
	}

	t.Run("files and classes as ImageFolder", func(t *testing.T) {
		for split, samples := range map[string][]folderSample{Test: want.Test, Train: want.Train} {
			f := open(t, split).(*folderDataset)
			if !slices.Equal(f.classes, want.Classes) || f.NumClasses() != len(want.Classes) {
				t.Errorf("%s: classes %v, torchvision finds %v", split, f.classes, want.Classes)
			}
			got := make([]folderSample, len(f.samples))
			for i, s := range f.samples {
				rel, err := filepath.Rel(dir, s.path)
				if err != nil {
					t.Fatal(err)
				}
				got[i] = folderSample{rel, s.label}
			}
			if !slices.Equal(got, samples) {
				t.Errorf("%s: samples\n%v\ntorchvision lists\n%v", split, got, samples)
			}
		}
	})

	t.Run("test transform near PIL", func(t *testing.T) {
		ds := open(t, Test)
		got := make([]float32, ds.Shape().Size())
		for i := range ds.Len() {
			if _, err := ds.Read(i, nil, got); err != nil {
				t.Fatal(err)
			}
			exp := readFloat32s(t, filepath.Join(dir, fmt.Sprintf("expected_%d.f32", i)))
			var sum, worst float64
			for j := range got {
				d := math.Abs(float64(got[j] - exp[j]))
				sum += d
				worst = max(worst, d)
			}
			mean := sum / float64(len(got))
			t.Logf("%s: mean |Go - PIL| %.2f/255, max %.1f/255", want.Test[i].Path, 255*mean, 255*worst)
			// Go's JPEG decoder and x/image's filter are not libjpeg's and PIL's (they differ by up
			// to 3 levels); on these smooth images a crop one pixel off already differs by about 7
			// levels on average.
			if mean > 0.75/255 || worst > 6.0/255 {
				t.Errorf("%s: mean difference %.2f/255, max %.1f/255 from torchvision", want.Test[i].Path, 255*mean, 255*worst)
			}
		}
	})

	t.Run("train transform seeded", func(t *testing.T) {
		ds := open(t, Train)
		a, b := make([]float32, ds.Shape().Size()), make([]float32, ds.Shape().Size())
		for i := range ds.Len() {
			ds.Read(i, rand.New(rand.NewPCG(1, 2)), a)
			ds.Read(i, rand.New(rand.NewPCG(1, 2)), b)
			if !slices.Equal(a, b) {
				t.Fatalf("example %d differs between two reads with one seed", i)
			}
			if lo, hi := slices.Min(a), slices.Max(a); lo < 0 || hi > 1 || hi-lo < 0.1 {
				t.Errorf("example %d: values in [%v, %v], want a spread within [0, 1]", i, lo, hi)
			}
			differs := false
			for s := range uint64(5) {
				if _, err := ds.Read(i, rand.New(rand.NewPCG(s, 9)), b); err != nil {
					t.Fatal(err)
				}
				differs = differs || !slices.Equal(a, b)
			}
			if !differs {
				t.Errorf("example %d: five other seeds give the same crop", i)
			}
		}
	})

	// Evaluation on the training split (certify --split train) reads without a random source: the
	// test transform, Resize(256) and CenterCrop(224), of the training image.
	t.Run("train split without a random source", func(t *testing.T) {
		ds := open(t, Train)
		asTest, err := openImageFolder(filepath.Join(dir, Train), false)
		if err != nil {
			t.Fatal(err)
		}
		a, b := make([]float32, ds.Shape().Size()), make([]float32, ds.Shape().Size())
		for i := range ds.Len() {
			if _, err := ds.Read(i, nil, a); err != nil {
				t.Fatalf("Read(%d, nil): %v", i, err)
			}
			if _, err := asTest.Read(i, nil, b); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, b) {
				t.Fatalf("example %d: read without a random source is not the test transform", i)
			}
		}
	})
}

func readFloat32s(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestRGBAToCHWFlip(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	plain, flipped := make([]float32, 3*2*3), make([]float32, 3*2*3)
	rgbaToCHW(img, plain, false)
	rgbaToCHW(img, flipped, true)
	for c := range 3 {
		for y := range 2 {
			for x := range 3 {
				v := float32(img.Pix[y*img.Stride+4*x+c]) / 255
				if plain[c*6+y*3+x] != v || flipped[c*6+y*3+2-x] != v {
					t.Fatalf("(c %d, y %d, x %d): plain %v, mirrored %v, want %v", c, y, x, plain[c*6+y*3+x], flipped[c*6+y*3+2-x], v)
				}
			}
		}
	}
}

func TestCentreCropPlacement(t *testing.T) {
	// torchvision: Resize(256) keeps the ratio with int() truncation, CenterCrop(224) offsets
	// round((size - 224) / 2) half to even.
	cases := []struct {
		w, h int
		want image.Rectangle
	}{
		{256, 256, image.Rect(-16, -16, 240, 240)},
		{500, 375, image.Rect(-58, -16, 283, 240)}, // 256*500/375 = 341.33 -> 341; (341-224)/2 = 58.5 -> 58
		{211, 290, image.Rect(-16, -64, 240, 287)}, // 256*290/211 = 351.8 -> 351; 63.5 -> 64
		{300, 200, image.Rect(-80, -16, 304, 240)}, // 384; 80
	}
	for _, c := range cases {
		if got := centreCropPlacement(c.w, c.h); got != c.want {
			t.Errorf("%dx%d: %v, want %v", c.w, c.h, got, c.want)
		}
	}
}
