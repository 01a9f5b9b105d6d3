// Package configs holds the experiment files; the binary carries the
// default one.
package configs

import _ "embed"

// DefaultFile is the default experiment's file name in this folder.
const DefaultFile = "fashion_mnist_default.yaml"

// Default is the default experiment: a small Fashion-MNIST comparison of
// Gaussian augmentation and SmoothAdv that runs on two CPU cores in minutes.
//
//go:embed fashion_mnist_default.yaml
var Default []byte
