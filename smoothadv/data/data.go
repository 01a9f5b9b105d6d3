// Package data reads the datasets of the reference code (CIFAR-10, ImageNet, downsampled ImageNet
// 32x32 and the pseudo-labelled extra set for self-training) and Fashion-MNIST, as float32 CHW
// images in [0, 1] (torchvision's ToTensor) with the reference's transforms, and batches them with
// a Loader. Normalisation is left to the model's first layer, as in the reference.
package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
)

// Shape is the size of one example: C planes of H rows of W values.
type Shape struct{ C, H, W int }

// Size is the number of values in one example.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// Dataset is a fixed list of labelled images. Read may be called from many goroutines at once.
type Dataset interface {
	Len() int
	Shape() Shape
	NumClasses() int
	// Read writes example i into dst, Shape().Size() values in CHW order in [0, 1], and returns its
	// label. A training split augments the example with draws from rng and from nothing else, so a
	// given rng state always gives the same result. A nil rng reads the example without
	// augmentation, as the test split would transform it: evaluation on a training split (certify
	// --split train) is then a function of the example alone. Other splits ignore rng.
	Read(i int, rng *rand.Rand, dst []float32) (label int, err error)
}

// The splits every dataset has; the reference's test split of ImageNet is its val folder.
const (
	Train = "train"
	Test  = "test"
)

// cropPad is the zero padding of the reference's random crop for 32x32 training images.
const cropPad = 4

type source struct {
	// defaultDir is where the data lies when the caller names no directory: the reference's
	// location, or "" when there is none.
	defaultDir func() string
	open       func(dir string, train bool) (Dataset, error)
}

var sources = map[string]source{
	"cifar10":       {constDir("datasets/dataset_cache"), openCIFAR10},
	"imagenet":      {func() string { return os.Getenv("IMAGENET_DIR") }, openImageNet},
	"imagenet32":    {constDir("datasets/Imagenet32"), openImageNet32},
	"fashion-mnist": {constDir("/usr/share/datasets/fashion-mnist"), openFashionMNIST},
}

func constDir(dir string) func() string { return func() string { return dir } }

// Names lists the datasets Open knows, sorted.
func Names() []string {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens split (Train or Test) of the named dataset under dataDir. An empty dataDir means the
// dataset's default: the reference's datasets/dataset_cache for cifar10 and datasets/Imagenet32
// for imagenet32, $IMAGENET_DIR for imagenet, and Debian's /usr/share/datasets/fashion-mnist.
func Open(name, dataDir, split string) (Dataset, error) {
	src, ok := sources[name]
	if !ok {
		return nil, fmt.Errorf("unknown dataset %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if split != Train && split != Test {
		return nil, fmt.Errorf("dataset %s: unknown split %q (want %s or %s)", name, split, Train, Test)
	}
	if dataDir == "" {
		dataDir = src.defaultDir()
		if dataDir == "" {
			return nil, fmt.Errorf("dataset %s: no data directory given and IMAGENET_DIR is not set", name)
		}
	}
	ds, err := src.open(dataDir, split == Train)
	if err != nil {
		return nil, fmt.Errorf("dataset %s (%s split): %w", name, split, err)
	}
	if ds.Len() == 0 {
		return nil, fmt.Errorf("dataset %s (%s split) in %s has no examples", name, split, dataDir)
	}
	return ds, nil
}

// firstExisting returns the first of paths that exists, or an error that names them all.
func firstExisting(paths ...string) (string, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("looked for %s: not found", strings.Join(paths, " and "))
}

// checkRead validates the arguments of Dataset.Read.
func checkRead(ds Dataset, i int, dst []float32) error {
	if i < 0 || i >= ds.Len() {
		return fmt.Errorf("example %d out of range [0, %d)", i, ds.Len())
	}
	if len(dst) != ds.Shape().Size() {
		return fmt.Errorf("destination holds %d values, an example of shape %v needs %d", len(dst), ds.Shape(), ds.Shape().Size())
	}
	return nil
}
