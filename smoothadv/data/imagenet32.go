package data

import (
	"fmt"
	"path/filepath"
)

// openImageNet32 reads the downsampled ImageNet 32x32 batches where the reference looks for them:
// dir/Imagenet32_train/train_data_batch_{1..10} for training and dir/val_data (or, as the
// official archive unpacks, dir/Imagenet32_val/val_data) for testing.
func openImageNet32(dir string, train bool) (Dataset, error) {
	var paths []string
	if train {
		for k := 1; k <= 10; k++ {
			paths = append(paths, filepath.Join(dir, "Imagenet32_train", fmt.Sprintf("train_data_batch_%d", k)))
		}
	} else {
		p, err := firstExisting(filepath.Join(dir, "val_data"), filepath.Join(dir, "Imagenet32_val", "val_data"))
		if err != nil {
			return nil, err
		}
		paths = []string{p}
	}
	d := &memDataset{shape: Shape{3, 32, 32}, classes: 1000}
	if train {
		d.pad = cropPad
	}
	return d, d.addFiles(paths, readImageNet32)
}

// readImageNet32 reads one batch; its labels count from 1 and, as in the reference, become 0-based.
func readImageNet32(path string) ([]byte, []int, error) {
	pix, labels, err := readPickledImages(path, "labels", -1, pixels32)
	for i := range labels {
		labels[i]--
	}
	return pix, labels, err
}
