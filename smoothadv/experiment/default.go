package experiment

import "github.com/smoothadv/smoothadv/configs"

// DefaultFile is the default experiment's file in the repository, which
// the binary embeds.
const DefaultFile = "configs/" + configs.DefaultFile

// Default is the experiment smoothadv run runs without a file: a small
// Fashion-MNIST comparison of Gaussian augmentation and SmoothAdv that runs
// on a CPU in minutes. Relative paths in it are relative to the working
// folder.
func Default() (*Experiment, error) {
	return Parse(configs.Default, "built-in "+DefaultFile, ".", 0)
}
