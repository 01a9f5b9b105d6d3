package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
)

// Most tests run the commands in this process (execute); the tests of
// signals and of several processes run the built binary (binary).

func TestMain(m *testing.M) {
	// The commands find the architectures where `make models` put them.
	models, err := filepath.Abs(testenv.ModelsDir())
	if err == nil {
		err = os.Setenv("SMOOTHADV_MODELS", models)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// run runs smoothadv with args in this process and returns what it printed,
// with its error as main prints it.
func run(args ...string) (string, error) {
	var out bytes.Buffer
	err := execute(context.Background(), args, &out, &out)
	if err != nil {
		fmt.Fprintf(&out, "smoothadv: %v\n", err)
	}
	return out.String(), err
}

// smoothadv runs smoothadv, which must succeed, and returns what it printed.
func smoothadv(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(args...)
	if err != nil {
		t.Fatalf("smoothadv %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// refused runs smoothadv, which must fail (main exits with status 1), and
// returns what it printed.
func refused(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(args...)
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("smoothadv %s: %v, want a refusal\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// built is the smoothadv command built from this source, once.
var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// binary builds the command (once) for a test that signals it or runs
// several processes, and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "smoothadv-test-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "smoothadv")
		if out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("building smoothadv: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

// runBinary runs the built command, which must succeed, and returns what it
// printed.
func runBinary(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("smoothadv %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fashionModel saves an untrained fashion_cnn (seed 3) as a TorchScript
// file with our metadata. Under sigma 1 its noisy predictions spread over
// several classes, so every radius depends on the noise drawn.
func fashionModel(t *testing.T) string {
	t.Helper()
	m, err := models.New("fashion_cnn", 3, models.Options{Dir: testenv.ModelsDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	path := filepath.Join(t.TempDir(), "model.pt")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// certifyArgs certifies 20 Fashion-MNIST test images.
func certifyArgs(model, out string, extra ...string) []string {
	return append([]string{"certify", "fashion-mnist", model, "1.0", out,
		"--N0", "50", "--N", "600", "--skip", "500", "--batch", "200", "--seed", "7", "--device", "cpu"}, extra...)
}
