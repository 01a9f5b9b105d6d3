// Package inputlayer names the input layers a model's net sits behind, in
// pure Go, so that settings can be checked without libtorch.
package inputlayer

import "fmt"

// The input layers.
const (
	Normalize = "normalize" // (x - mean) / sd, the reference's NormalizeLayer
	Center    = "center"    // x - mean, the reference's InputCenterLayer
	None      = "none"      // x itself, as MACER's nets take their inputs
)

// Want lists the layers, for messages.
const Want = Normalize + ", " + Center + " or " + None

// referenceNames are the reference's names of the layers.
var referenceNames = map[string]string{Normalize: "NormalizeLayer", Center: "InputCenterLayer", None: "no input layer"}

// Check refuses a name that is not an input layer.
func Check(name string) error {
	if referenceNames[name] == "" {
		return fmt.Errorf("unknown normalization %q (want %s)", name, Want)
	}
	return nil
}

// ReferenceName is the reference's name of a layer ("" for an unknown one).
func ReferenceName(layer string) string { return referenceNames[layer] }
