package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// openFashionMNIST reads Fashion-MNIST's IDX files (gzipped or not): 28x28 grey images, 10 classes,
// train-* for the training split and t10k-* for the test split. No augmentation.
func openFashionMNIST(dir string, train bool) (Dataset, error) {
	prefix := "t10k"
	if train {
		prefix = "train"
	}
	imgPath, pix, dims, err := readIDX(filepath.Join(dir, prefix+"-images-idx3-ubyte"), 3)
	if err != nil {
		return nil, err
	}
	if dims[1] != 28 || dims[2] != 28 {
		return nil, fmt.Errorf("%s: images are %dx%d, want 28x28", imgPath, dims[1], dims[2])
	}
	lblPath, raw, _, err := readIDX(filepath.Join(dir, prefix+"-labels-idx1-ubyte"), 1)
	if err != nil {
		return nil, err
	}
	if len(raw) != dims[0] {
		return nil, fmt.Errorf("%s has %d labels for the %d images of %s", lblPath, len(raw), dims[0], imgPath)
	}
	labels := make([]int, len(raw))
	for i, l := range raw {
		labels[i] = int(l)
	}
	d := &memDataset{shape: Shape{1, 28, 28}, classes: 10}
	return d, d.add(lblPath, pix, labels)
}

// readIDX reads an IDX file of unsigned bytes with ndim dimensions, trying base+".gz" before base,
// and returns the path it read, the data and the dimensions.
func readIDX(base string, ndim int) (string, []byte, []int, error) {
	path, err := firstExisting(base+".gz", base)
	if err != nil {
		return "", nil, nil, err
	}
	data, dims, err := decodeIDX(path, ndim)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return path, data, dims, nil
}

func decodeIDX(path string, ndim int) ([]byte, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		r = gz
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, err
	}
	// Header: two zero bytes, type 0x08 (unsigned byte), the number of dimensions, then each
	// dimension as a big-endian uint32.
	head := 4 + 4*ndim
	if len(b) < head {
		return nil, nil, fmt.Errorf("%d bytes is too short for an IDX header", len(b))
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 8 || int(b[3]) != ndim {
		return nil, nil, fmt.Errorf("magic % x, want 00 00 08 %02x (unsigned bytes, %d dimensions)", b[:4], ndim, ndim)
	}
	dims := make([]int, ndim)
	n, fits := 1, true
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(b[4+4*i:]))
		if dims[i] != 0 && n > len(b)/dims[i] {
			fits = false // the product would exceed the file (and might overflow)
		}
		n *= dims[i]
	}
	if !fits || n != len(b)-head {
		return nil, nil, fmt.Errorf("dimensions %v do not match the %d bytes of data", dims, len(b)-head)
	}
	return b[head:], dims, nil
}
