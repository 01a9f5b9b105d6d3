package data

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("IMAGENET_DIR", "")
	cases := []struct {
		name, dir, split string
		want             []string
	}{
		{"mnist", dir, Train, []string{`unknown dataset "mnist"`, "cifar10, fashion-mnist, imagenet, imagenet32"}},
		{"cifar10", dir, "val", []string{`unknown split "val"`}},
		{"cifar10", dir, Test, []string{filepath.Join(dir, "cifar-10-batches-py"), filepath.Join(dir, "cifar-10-batches-bin")}},
		{"imagenet32", dir, Test, []string{filepath.Join(dir, "val_data"), filepath.Join(dir, "Imagenet32_val", "val_data")}},
		{"imagenet32", dir, Train, []string{filepath.Join(dir, "Imagenet32_train", "train_data_batch_1")}},
		{"imagenet", dir, Test, []string{filepath.Join(dir, "val")}},
		{"imagenet", "", Test, []string{"IMAGENET_DIR is not set"}},
		{"fashion-mnist", dir, Test, []string{filepath.Join(dir, "t10k-images-idx3-ubyte.gz")}},
	}
	for _, c := range cases {
		_, err := Open(c.name, c.dir, c.split)
		if err == nil {
			t.Errorf("Open(%q, %q, %q): no error", c.name, c.dir, c.split)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q, %q, %q): %v; want it to say %q", c.name, c.dir, c.split, err, w)
			}
		}
	}
}

func TestReadChecksArguments(t *testing.T) {
	d := &memDataset{shape: Shape{1, 2, 2}, classes: 3}
	if err := d.add("f", make([]byte, 8), []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		i, n int
	}{{-1, 4}, {2, 4}, {0, 3}} {
		if _, err := d.Read(c.i, nil, make([]float32, c.n)); err == nil {
			t.Errorf("Read(%d) into %d values: no error", c.i, c.n)
		}
	}
	if err := d.add("g", make([]byte, 4), []int{3}); err == nil || !strings.Contains(err.Error(), "g: example 0 has label 3") {
		t.Errorf("label out of range: %v", err)
	}
	if err := d.add("h", make([]byte, 5), []int{1}); err == nil || !strings.Contains(err.Error(), "h: 5 bytes") {
		t.Errorf("pixels and labels that disagree: %v", err)
	}
}
