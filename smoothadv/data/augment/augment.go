// Package augment holds the training augmentations of the reference, as torchvision defines them:
// random crop with zero padding, random horizontal flip and the window of a random resized crop.
// Every random choice is drawn from the caller's *rand.Rand, so a seed fixes the result.
package augment

import (
	"image"
	"math"
	"math/rand/v2"
	"slices"
)

// Image is a float32 image in CHW order: Pix holds C planes of H rows of W values.
type Image struct {
	C, H, W int
	Pix     []float32
}

// Shift moves the content of img in place so that the value at (c, y, x) becomes the old value at
// (c, y+dy, x+dx), or zero where that lies outside the image. With |dy|, |dx| <= pad this is
// torchvision's RandomCrop to the image's own size after zero padding by pad.
func Shift(img Image, dy, dx int) {
	lo, hi := max(0, -dx), min(img.W, img.W-dx)
	for c := range img.C {
		plane := img.Pix[c*img.H*img.W : (c+1)*img.H*img.W]
		for k := range img.H {
			// Visit rows in the direction that reads each source row before overwriting it.
			y := k
			if dy < 0 {
				y = img.H - 1 - k
			}
			row := plane[y*img.W : (y+1)*img.W]
			sy := y + dy
			if sy < 0 || sy >= img.H || lo >= hi {
				clear(row)
				continue
			}
			src := plane[sy*img.W : (sy+1)*img.W]
			copy(row[lo:hi], src[lo+dx:hi+dx])
			clear(row[:lo])
			clear(row[hi:])
		}
	}
}

// FlipH mirrors img left to right in place.
func FlipH(img Image) {
	for r := range img.C * img.H {
		slices.Reverse(img.Pix[r*img.W : (r+1)*img.W])
	}
}

// CropOffset draws the offset of torchvision's RandomCrop(size, padding=pad) where size is the
// image's own size: the crop's corner is uniform over the 2*pad+1 positions on each axis.
func CropOffset(pad int, rng *rand.Rand) (dy, dx int) {
	dy = rng.IntN(2*pad+1) - pad
	dx = rng.IntN(2*pad+1) - pad
	return dy, dx
}

// Coin is RandomHorizontalFlip's draw: true with probability 1/2.
func Coin(rng *rand.Rand) bool {
	return rng.Float64() < 0.5
}

// CropFlip is the CIFAR-10 training transform of the reference, RandomCrop(32, padding=pad)
// then RandomHorizontalFlip, applied to img in place.
func CropFlip(img Image, pad int, rng *rand.Rand) {
	dy, dx := CropOffset(pad, rng)
	Shift(img, dy, dx)
	if Coin(rng) {
		FlipH(img)
	}
}

// ResizedCrop is torchvision's RandomResizedCrop window: a fraction of the area in Scale and an
// aspect ratio (width / height) in Ratio, drawn log-uniformly.
type ResizedCrop struct {
	Scale, Ratio [2]float64
}

// DefaultResizedCrop is RandomResizedCrop's default, used by the reference's ImageNet training.
var DefaultResizedCrop = ResizedCrop{Scale: [2]float64{0.08, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}}

// Window draws the crop for an image of width w and height h, as torchvision's get_params does:
// ten tries at a random window that fits, then a central crop with the ratio clamped to Ratio.
// Sizes round half to even, as Python's round does.
func (rc ResizedCrop) Window(w, h int, rng *rand.Rand) image.Rectangle {
	area := float64(w * h)
	logLo, logHi := math.Log(rc.Ratio[0]), math.Log(rc.Ratio[1])
	for range 10 {
		target := area * (rc.Scale[0] + (rc.Scale[1]-rc.Scale[0])*rng.Float64())
		aspect := math.Exp(logLo + (logHi-logLo)*rng.Float64())
		cw := int(math.RoundToEven(math.Sqrt(target * aspect)))
		ch := int(math.RoundToEven(math.Sqrt(target / aspect)))
		if 0 < cw && cw <= w && 0 < ch && ch <= h {
			top := rng.IntN(h - ch + 1)
			left := rng.IntN(w - cw + 1)
			return image.Rect(left, top, left+cw, top+ch)
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < min(rc.Ratio[0], rc.Ratio[1]):
		ch = int(math.RoundToEven(float64(cw) / min(rc.Ratio[0], rc.Ratio[1])))
	case in > max(rc.Ratio[0], rc.Ratio[1]):
		cw = int(math.RoundToEven(float64(ch) * max(rc.Ratio[0], rc.Ratio[1])))
	}
	top, left := (h-ch)/2, (w-cw)/2
	return image.Rect(left, top, left+cw, top+ch)
}
