package augment

import (
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomImage(c, h, w int, seed uint64) Image {
	rng := rand.New(rand.NewPCG(seed, 0))
	img := Image{C: c, H: h, W: w, Pix: make([]float32, c*h*w)}
	for i := range img.Pix {
		img.Pix[i] = 0.01 + rng.Float32() // never 0, so padding is recognisable
	}
	return img
}

// padCrop is RandomCrop written out as torchvision does it: pad with zeros, then cut a window
// of the original size at (top, left) of the padded image.
func padCrop(img Image, pad, top, left int) []float32 {
	ph, pw := img.H+2*pad, img.W+2*pad
	padded := make([]float32, img.C*ph*pw)
	for c := range img.C {
		for y := range img.H {
			for x := range img.W {
				padded[(c*ph+y+pad)*pw+x+pad] = img.Pix[(c*img.H+y)*img.W+x]
			}
		}
	}
	out := make([]float32, 0, len(img.Pix))
	for c := range img.C {
		for y := range img.H {
			out = append(out, padded[(c*ph+top+y)*pw+left:][:img.W]...)
		}
	}
	return out
}

func TestShiftIsPaddedCrop(t *testing.T) {
	const pad = 4
	for top := range 2*pad + 1 {
		for left := range 2*pad + 1 {
			img := randomImage(3, 6, 7, 1)
			want := padCrop(img, pad, top, left)
			Shift(img, top-pad, left-pad)
			if len(img.Pix) != 3*6*7 || !slices.Equal(img.Pix, want) {
				t.Fatalf("Shift(%d, %d) differs from cropping the padded image at (%d, %d)", top-pad, left-pad, top, left)
			}
		}
	}
}

func TestShiftLeavesZeroBorder(t *testing.T) {
	img := randomImage(2, 5, 5, 2)
	Shift(img, 2, -3) // content moves up by 2 and right by 3
	for c := range 2 {
		for y := range 5 {
			for x := range 5 {
				v := img.Pix[(c*5+y)*5+x]
				if border := y >= 3 || x < 3; border != (v == 0) {
					t.Fatalf("(c %d, y %d, x %d) = %v; the zero border is rows 3-4 and columns 0-2", c, y, x, v)
				}
			}
		}
	}
	Shift(img, 5, 0)
	if slices.Max(img.Pix) != 0 {
		t.Fatal("shifting by the full height leaves content")
	}
}

func TestFlipH(t *testing.T) {
	img := randomImage(3, 4, 5, 3)
	orig := slices.Clone(img.Pix)
	FlipH(img)
	for i, v := range orig {
		c, y, x := i/20, i/5%4, i%5
		if img.Pix[c*20+y*5+4-x] != v {
			t.Fatalf("(c %d, y %d, x %d) did not move to x %d", c, y, x, 4-x)
		}
	}
	FlipH(img)
	if !slices.Equal(img.Pix, orig) {
		t.Fatal("flipping twice is not the identity")
	}
}

func TestCropFlipSeeded(t *testing.T) {
	a, b := randomImage(3, 32, 32, 4), randomImage(3, 32, 32, 4)
	CropFlip(a, 4, rand.New(rand.NewPCG(5, 6)))
	CropFlip(b, 4, rand.New(rand.NewPCG(5, 6)))
	if !slices.Equal(a.Pix, b.Pix) {
		t.Fatal("one seed gave two results")
	}
	// Over many draws every offset in [-4, 4] and both flip outcomes occur, about equally often.
	rng := rand.New(rand.NewPCG(7, 8))
	offsets, flips := map[[2]int]int{}, 0
	const n = 81 * 200
	for range n {
		dy, dx := CropOffset(4, rng)
		offsets[[2]int{dy, dx}]++
		if Coin(rng) {
			flips++
		}
	}
	if len(offsets) != 81 {
		t.Fatalf("%d distinct offsets, want 81", len(offsets))
	}
	for o, k := range offsets {
		if o[0] < -4 || o[0] > 4 || o[1] < -4 || o[1] > 4 || k < 130 || k > 270 {
			t.Fatalf("offset %v drawn %d times of %d", o, k, n)
		}
	}
	if math.Abs(float64(flips)/n-0.5) > 0.02 {
		t.Fatalf("%d flips in %d draws", flips, n)
	}
}

func TestResizedCropWindow(t *testing.T) {
	rc := DefaultResizedCrop
	rng := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		w, h := 50+rng.IntN(500), 50+rng.IntN(500)
		r := rc.Window(w, h, rng)
		if r.Empty() || !r.In(image.Rect(0, 0, w, h)) {
			t.Fatalf("%dx%d: window %v is not inside the image", w, h, r)
		}
		// Area and ratio are in range up to the rounding of the sides, whether the window comes
		// from the ten tries or from the fallback.
		area := float64(r.Dx()*r.Dy()) / float64(w*h)
		ratio := float64(r.Dx()) / float64(r.Dy())
		slack := 1/float64(r.Dx()) + 1/float64(r.Dy())
		if area < 0.08*(1-slack)*(1-slack) || area > 1+slack || ratio < 0.75*(1-slack) || ratio > 4.0/3*(1+slack) {
			t.Fatalf("%dx%d: window %v has area %.3f and ratio %.3f", w, h, r, area, ratio)
		}
	}
	a := rc.Window(640, 480, rand.New(rand.NewPCG(1, 1)))
	if b := rc.Window(640, 480, rand.New(rand.NewPCG(1, 1))); a != b {
		t.Fatalf("one seed gave windows %v and %v", a, b)
	}
}

func TestResizedCropFallback(t *testing.T) {
	// In a 1000x10 strip no window of at least 8% of the area and ratio <= 4/3 fits (its height
	// would be >= sqrt(800 * 3/4) > 10), so torchvision falls back to the centred crop of the full
	// height and width round(10 * 4/3) = 13, at column (1000 - 13) // 2 = 493.
	r := DefaultResizedCrop.Window(1000, 10, rand.New(rand.NewPCG(1, 2)))
	if want := image.Rect(493, 0, 506, 10); r != want {
		t.Fatalf("window %v, want %v", r, want)
	}
	// And a 10x1000 strip: width 10, height round(10 / (3/4)) = 13 at row 493.
	r = DefaultResizedCrop.Window(10, 1000, rand.New(rand.NewPCG(1, 2)))
	if want := image.Rect(0, 493, 10, 506); r != want {
		t.Fatalf("window %v, want %v", r, want)
	}
}
