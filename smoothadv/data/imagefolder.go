package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // decoders for ImageFolder's extensions that Go can read
	_ "image/png"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/smoothadv/smoothadv/smoothadv/data/augment"
)

// The reference's ImageNet transforms: test Resize(256) then CenterCrop(224); train
// RandomResizedCrop(224) then RandomHorizontalFlip.
const (
	imageNetResize = 256
	imageNetCrop   = 224
)

// imageExtensions are torchvision's IMG_EXTENSIONS, so that the list of files, and with it every
// example's index, is the reference's. Go has no decoder for .ppm and .pgm: those fail in Read.
var imageExtensions = []string{".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}

// maxDepth bounds the folder walk, which follows links and so could loop.
const maxDepth = 64

// openImageNet reads dir/train or dir/val as torchvision's ImageFolder does.
func openImageNet(dir string, train bool) (Dataset, error) {
	sub := "val"
	if train {
		sub = "train"
	}
	return openImageFolder(filepath.Join(dir, sub), train)
}

type sample struct {
	path  string
	label int
}

// folderDataset is an ImageFolder tree: one folder per class, classes in sorted order.
type folderDataset struct {
	classes []string
	samples []sample
	train   bool
	scratch sync.Pool // *image.RGBA of the output size
}

func openImageFolder(root string, train bool) (*folderDataset, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	d := &folderDataset{train: train}
	for _, e := range entries { // ReadDir sorts by name, as find_classes does
		if isDir(filepath.Join(root, e.Name()), e) {
			d.classes = append(d.classes, e.Name())
		}
	}
	if len(d.classes) == 0 {
		return nil, fmt.Errorf("%s has no class folders", root)
	}
	for label, c := range d.classes {
		files, err := imageFiles(filepath.Join(root, c))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("class folder %s has no files with an image extension (%s)", filepath.Join(root, c), strings.Join(imageExtensions, " "))
		}
		for _, f := range files {
			d.samples = append(d.samples, sample{f, label})
		}
	}
	d.scratch.New = func() any { return image.NewRGBA(image.Rect(0, 0, imageNetCrop, imageNetCrop)) }
	return d, nil
}

// isDir reports whether the entry at path is a folder, following a link as Python's is_dir does.
func isDir(path string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink != 0 {
		st, err := os.Stat(path)
		return err == nil && st.IsDir()
	}
	return e.IsDir()
}

// imageFiles lists the image files under dir in torchvision's make_dataset order: the folders of
// os.walk(followlinks=True) sorted by path, and within each folder its files sorted by name.
func imageFiles(dir string) ([]string, error) {
	type folder struct {
		path  string
		files []string
	}
	var folders []folder
	var walk func(path string, depth int) error
	walk = func(path string, depth int) error {
		if depth > maxDepth {
			return fmt.Errorf("%s: folders nest deeper than %d; is there a link cycle?", path, maxDepth)
		}
		entries, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		f := folder{path: path}
		for _, e := range entries {
			p := filepath.Join(path, e.Name())
			if isDir(p, e) {
				if err := walk(p, depth+1); err != nil {
					return err
				}
			} else if hasImageExtension(e.Name()) {
				f.files = append(f.files, p)
			}
		}
		folders = append(folders, f)
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	slices.SortFunc(folders, func(a, b folder) int { return strings.Compare(a.path, b.path) })
	var files []string
	for _, f := range folders {
		files = append(files, f.files...)
	}
	return files, nil
}

func hasImageExtension(name string) bool {
	name = strings.ToLower(name)
	return slices.ContainsFunc(imageExtensions, func(ext string) bool { return strings.HasSuffix(name, ext) })
}

func (d *folderDataset) Len() int        { return len(d.samples) }
func (d *folderDataset) Shape() Shape    { return Shape{3, imageNetCrop, imageNetCrop} }
func (d *folderDataset) NumClasses() int { return len(d.classes) }

func (d *folderDataset) Read(i int, rng *rand.Rand, dst []float32) (int, error) {
	if err := checkRead(d, i, dst); err != nil {
		return 0, err
	}
	s := d.samples[i]
	img, err := decodeImage(s.path)
	if err != nil {
		return 0, err
	}
	out := d.scratch.Get().(*image.RGBA)
	defer d.scratch.Put(out)
	b := img.Bounds()
	flip := false
	if d.train && rng != nil {
		window := augment.DefaultResizedCrop.Window(b.Dx(), b.Dy(), rng).Add(b.Min)
		draw.BiLinear.Scale(out, out.Bounds(), img, window, draw.Src, nil)
		flip = augment.Coin(rng)
	} else {
		// Scale the whole image onto its resized place; only the part inside the crop is computed.
		draw.BiLinear.Scale(out, centreCropPlacement(b.Dx(), b.Dy()), img, b, draw.Src, nil)
	}
	rgbaToCHW(out, dst, flip)
	return s.label, nil
}

func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("%s: empty image", path)
	}
	return img, nil
}

// centreCropPlacement is where a w x h image lands, relative to the crop, after torchvision's
// Resize(256) (shorter side to 256, the longer one scaled and truncated) and CenterCrop(224)
// (offsets rounded half to even, as Python's round does).
func centreCropPlacement(w, h int) image.Rectangle {
	ow, oh := imageNetResize, imageNetResize
	if w <= h {
		oh = int(float64(imageNetResize*h) / float64(w))
	} else {
		ow = int(float64(imageNetResize*w) / float64(h))
	}
	top := int(math.RoundToEven(float64(oh-imageNetCrop) / 2))
	left := int(math.RoundToEven(float64(ow-imageNetCrop) / 2))
	return image.Rect(-left, -top, ow-left, oh-top)
}

// rgbaToCHW writes an opaque RGBA image as CHW values in [0, 1], mirrored left to right if flip.
func rgbaToCHW(img *image.RGBA, dst []float32, flip bool) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	plane := w * h
	for y := range h {
		row := img.Pix[y*img.Stride:]
		for x := range w {
			sx := x
			if flip {
				sx = w - 1 - x
			}
			p := row[4*sx : 4*sx+3]
			o := y*w + x
			dst[o] = float32(p[0]) / 255
			dst[plane+o] = float32(p[1]) / 255
			dst[2*plane+o] = float32(p[2]) / 255
		}
	}
}
