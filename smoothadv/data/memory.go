package data

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/smoothadv/smoothadv/smoothadv/data/augment"
)

// memDataset holds uint8 images in memory, as the array-based datasets are distributed, one chunk
// per file so that large sets are never copied into one buffer.
type memDataset struct {
	shape   Shape
	classes int
	// pad > 0 makes it a training split: CropFlip with that padding when Read has a random source.
	pad    int
	chunks []chunk
	ends   []int // ends[k] is the number of examples in chunks[:k+1]
}

// chunk is the examples of one file: CHW uint8 images one after another, and their labels.
type chunk struct {
	pix    []byte
	labels []int
}

func (d *memDataset) Len() int {
	if len(d.ends) == 0 {
		return 0
	}
	return d.ends[len(d.ends)-1]
}

func (d *memDataset) Shape() Shape    { return d.shape }
func (d *memDataset) NumClasses() int { return d.classes }

// add appends the examples read from file, after checking that they fit the dataset.
func (d *memDataset) add(file string, pix []byte, labels []int) error {
	if len(pix) != len(labels)*d.shape.Size() {
		return fmt.Errorf("%s: %d bytes of pixels for %d labels of %v images", file, len(pix), len(labels), d.shape)
	}
	for i, l := range labels {
		if l < 0 || l >= d.classes {
			return fmt.Errorf("%s: example %d has label %d, outside [0, %d)", file, i, l, d.classes)
		}
	}
	d.ends = append(d.ends, d.Len()+len(labels))
	d.chunks = append(d.chunks, chunk{pix, labels})
	return nil
}

// addFiles reads each path with read and adds its examples.
func (d *memDataset) addFiles(paths []string, read func(path string) ([]byte, []int, error)) error {
	for _, p := range paths {
		pix, labels, err := read(p)
		if err != nil {
			return err
		}
		if err := d.add(p, pix, labels); err != nil {
			return err
		}
	}
	return nil
}

func (d *memDataset) Read(i int, rng *rand.Rand, dst []float32) (int, error) {
	if err := checkRead(d, i, dst); err != nil {
		return 0, err
	}
	k, _ := slices.BinarySearch(d.ends, i+1)
	if k > 0 {
		i -= d.ends[k-1]
	}
	c, n := d.chunks[k], len(dst)
	for j, v := range c.pix[i*n : (i+1)*n] {
		dst[j] = float32(v) / 255
	}
	if d.pad > 0 && rng != nil {
		augment.CropFlip(augment.Image{C: d.shape.C, H: d.shape.H, W: d.shape.W, Pix: dst}, d.pad, rng)
	}
	return c.labels[i], nil
}
