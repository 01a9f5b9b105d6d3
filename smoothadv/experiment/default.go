package experiment

import _ "embed"

//go:generate cp ../../configs/fashion_mnist_default.yaml default.yaml

// DefaultFile is the default experiment's file in the repository; the
// binary carries a copy (default.yaml, kept equal by a test).
const DefaultFile = "configs/fashion_mnist_default.yaml"

//go:embed default.yaml
var defaultYAML []byte

// Default is the experiment smoothadv run runs without a file: a small
// Fashion-MNIST comparison of Gaussian augmentation and SmoothAdv that runs
// on a CPU in minutes. Relative paths in it are relative to the working
// folder.
func Default() (*Experiment, error) {
	return Parse(defaultYAML, "built-in "+DefaultFile, ".")
}
