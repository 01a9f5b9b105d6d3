package data

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/smoothadv/smoothadv/smoothadv/data/internal/nppickle"
)

// pixels32 is the size of one 32x32 RGB image.
const pixels32 = 3 * 32 * 32

// openCIFAR10 reads CIFAR-10 from dir/cifar-10-batches-py (torchvision's cache: pickled batches)
// or, failing that, dir/cifar-10-batches-bin (the official binary version).
func openCIFAR10(dir string, train bool) (Dataset, error) {
	names := []string{"test_batch"}
	if train {
		names = []string{"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"}
	}
	pyDir := filepath.Join(dir, "cifar-10-batches-py")
	root, err := firstExisting(pyDir, filepath.Join(dir, "cifar-10-batches-bin"))
	if err != nil {
		return nil, err
	}
	read, suffix := readCIFARBin, ".bin"
	if root == pyDir {
		read, suffix = readCIFARPickle, ""
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(root, n+suffix)
	}
	d := &memDataset{shape: Shape{3, 32, 32}, classes: 10}
	if train {
		d.pad = cropPad
	}
	return d, d.addFiles(paths, read)
}

func readCIFARPickle(path string) ([]byte, []int, error) {
	return readPickledImages(path, "labels", -1, pixels32)
}

// readCIFARBin reads a file of records of one label byte and 3072 channel-major pixel bytes.
func readCIFARBin(path string) ([]byte, []int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	const record = 1 + pixels32
	if len(b)%record != 0 {
		return nil, nil, fmt.Errorf("%s: %d bytes is not a whole number of %d-byte records", path, len(b), record)
	}
	n := len(b) / record
	pix, labels := make([]byte, 0, n*pixels32), make([]int, n)
	for i := range n {
		r := b[i*record : (i+1)*record]
		labels[i] = int(r[0])
		pix = append(pix, r[1:]...)
	}
	return pix, labels, nil
}

// readPickledImages reads a pickled dict with uint8 images under "data", of the given shape
// (-1 for any number of images), and integer labels under labelKey.
func readPickledImages(path, labelKey string, shape ...int) ([]byte, []int, error) {
	v, err := nppickle.LoadFile(path)
	if err != nil {
		return nil, nil, err
	}
	pix, labels, err := imagesAndLabels(v, labelKey, shape)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return pix, labels, nil
}

func imagesAndLabels(v any, labelKey string, shape []int) ([]byte, []int, error) {
	data, err := nppickle.Get(v, "data")
	if err != nil {
		return nil, nil, err
	}
	pix, _, err := nppickle.Uint8s(data, shape...)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	l, err := nppickle.Get(v, labelKey)
	if err != nil {
		return nil, nil, err
	}
	labels, err := nppickle.Ints(l)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", labelKey, err)
	}
	return pix, labels, nil
}
