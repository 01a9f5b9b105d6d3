package data

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
)

func TestFashionMNISTMatchesNumpy(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	var want map[string]struct {
		N        int   `json:"n"`
		Counts   []int `json:"counts"`
		Examples map[string]struct {
			Label  int   `json:"label"`
			Pixels []int `json:"pixels"`
		} `json:"examples"`
	}
	fixture(t, "fashion", testenv.FashionMNISTDir, &want)
	for _, split := range []string{Train, Test} {
		ds, err := Open("fashion-mnist", "", split)
		if err != nil {
			t.Fatal(err)
		}
		w := want[split]
		if ds.Len() != w.N || ds.Shape() != (Shape{1, 28, 28}) || ds.NumClasses() != 10 {
			t.Fatalf("%s: %d examples of %v in %d classes, want %d of 1x28x28 in 10", split, ds.Len(), ds.Shape(), ds.NumClasses(), w.N)
		}
		dst := make([]float32, 28*28)
		counts := make([]int, 10)
		for i := range ds.Len() {
			label, err := ds.Read(i, nil, dst)
			if err != nil {
				t.Fatal(err)
			}
			counts[label]++
		}
		for c, n := range w.Counts {
			if counts[c] != n {
				t.Errorf("%s: class %d has %d examples, numpy counts %d", split, c, counts[c], n)
			}
		}
		for key, ex := range w.Examples {
			i, err := strconv.Atoi(key)
			if err != nil {
				t.Fatal(err)
			}
			checkPlain(t, &window{ds, i}, expectedSet{Pixels: ex.Pixels, Labels: []int{ex.Label}})
		}
	}
}

// window is the single example i of a dataset.
type window struct {
	Dataset
	i int
}

func (w *window) Len() int { return 1 }
func (w *window) Read(_ int, rng *rand.Rand, dst []float32) (int, error) {
	return w.Dataset.Read(w.i, rng, dst)
}

func TestFashionMNISTBadFiles(t *testing.T) {
	testenv.NeedFashionMNIST(t)
	images, err := os.ReadFile(filepath.Join(testenv.FashionMNISTDir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	labels, err := os.ReadFile(filepath.Join(testenv.FashionMNISTDir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		t.Fatal(err)
	}
	rawLabels := gunzip(t, labels)
	cases := []struct {
		name           string
		images, labels []byte
		want           string
	}{
		{"truncated gzip", images[:len(images)/2], labels, "unexpected EOF"},
		{"not gzip", []byte("hello, world"), labels, "gzip"},
		{"empty", nil, labels, "EOF"},
		{"short data", images, gzipped(rawLabels[:len(rawLabels)-1]), "do not match"},
		{"header only", images, gzipped(rawLabels[:6]), "too short"},
		{"wrong magic", gzipped(append([]byte{0, 0, 9, 3}, gunzip(t, images)[4:]...)), labels, "magic"},
		{"huge dimension", images, gzipped(append([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff}, rawLabels[8:]...)), "do not match"},
		{"count mismatch", images, gzipped(append([]byte{0, 0, 8, 1, 0, 0, 0x27, 0x0f}, rawLabels[8:len(rawLabels)-1]...)), "9999 labels"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), c.images)
			write(t, filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), c.labels)
			_, err := Open("fashion-mnist", dir, Test)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %v, want one that names the file and says %q", err, c.want)
			}
		})
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
