package attack

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/smoothadv/smoothadv/internal/testenv"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// BenchmarkPiecesResNet20 times SmoothAdv training's attack (PGD, 2 steps,
// m = 2) on half a batch of 256 CIFAR-sized images, whole on all cores and
// in one-thread pieces, one per core (BENCHMARKS.md):
//
//	go test -run '^$' -bench Pieces -count 3 ./smoothadv/attack/
func BenchmarkPiecesResNet20(b *testing.B) {
	dir := testenv.ModelsDir()
	if _, err := os.Stat(filepath.Join(dir, "cifar_resnet20.pt")); err != nil {
		b.Skip("no exported cifar_resnet20 (run make models)")
	}
	if err := torchbind.UseCores(1); err != nil {
		b.Fatal(err)
	}
	model, err := models.New("cifar_resnet20", 1, models.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer model.Close()
	if err := model.Train(false); err != nil {
		b.Fatal(err)
	}
	if err := model.SetRequiresGrad(false); err != nil {
		b.Fatal(err)
	}
	g, err := torchbind.NewGenerator("cpu", 1)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	const images, m = 128, 2
	s := torchbind.NewScope()
	defer s.Close()
	inputs := s.RepeatInterleave(s.Rand(g, "cpu", images, 3, 32, 32), []int64{m})
	noise := s.RandnLike(inputs, sigma, g)
	labels := s.Argmax(model.Forward(s, inputs), 1)
	labels = s.Narrow(labels, 0, 0, images) // any labels will do
	if err := s.Err(); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, runtime.NumCPU()} {
		c := Config{Kind: PGD, Epsilon: 0.5, Steps: 2, NoiseVectors: m, Checked: true, Workers: workers}
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for range b.N {
				ss := torchbind.NewScope()
				if _, err := c.Attack(ss, model, inputs, labels, noise, g); err != nil {
					b.Fatal(err)
				}
				ss.Close()
			}
		})
	}
}
