// Package noiselevel is the one rule for Gaussian noise levels (sigma, noise_sd)
// that training, sampling and certification accept.
package noiselevel

import "fmt"

// Max bounds the noise levels: images lie in [0, 1], so noise far beyond 1
// only drowns them, and near 1e38 float32 noise overflows to inf.
const Max = 1e4

// Check accepts a noise level in [0, Max]; 0 is no noise (vanilla
// adversarial training, a sampler's clean pass). NaN is refused.
func Check(sd float64) error {
	if !(sd >= 0 && sd <= Max) {
		return fmt.Errorf("%v, want a number in [0, %g] (images lie in [0, 1])", sd, Max)
	}
	return nil
}

// CheckCertify is Check without 0: CERTIFY's radius is sigma times a normal
// quantile, so smoothing with no noise certifies nothing.
func CheckCertify(sd float64) error {
	if !(sd > 0 && sd <= Max) {
		return fmt.Errorf("%v: want a number in (0, %g]: images lie in [0, 1], so larger noise only drowns them (and overflows float32 towards 1e38)", sd, Max)
	}
	return nil
}
