package smoothing

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/smoothadv/attack"
	"github.com/smoothadv/smoothadv/smoothadv/models"
	"github.com/smoothadv/smoothadv/torchbind"
)

// runParams are the run parameters of a job (see certify.RunParams) but for
// the kind of run and its sample sizes, which Certify and Predict fill in.
// The model is known by the hash of its file and by the architecture and
// input layer it was loaded with: a reference checkpoint loaded behind
// another input layer is another classifier.
func runParams(o JobOptions, datasetLen int, shard certify.Shard, m *models.Model, workers int) (certify.RunParams, error) {
	hash, err := hashFile(o.Model)
	if err != nil {
		return certify.RunParams{}, err
	}
	return certify.RunParams{
		Dataset: o.Dataset, Split: o.Split, DatasetLen: datasetLen, Skip: o.Skip, Max: o.Max, Shard: shard,
		ModelHash: hash, Arch: m.Meta.Arch, Input: m.Meta.Normalization,
		Sigma: o.Sigma, Seed: o.Seed, Noise: NoiseScheme,
		Model: o.Model, DataDir: o.DataDir, Device: m.Device(), Batch: o.Batch, Workers: workers, Threads: torchbind.NumThreads(), Group: o.Group,
		Unoptimized: o.Unoptimized, Precision: string(o.Precision), ChannelsLast: o.ChannelsLast,
	}, nil
}

// hashFile returns the hex SHA-256 of the file at path.
func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash model %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// AttackParams describes an attack for the run parameters of a predict
// run; base says whether the base classifier is attacked.
func AttackParams(c attack.Config, base bool) *certify.Attack {
	a := &certify.Attack{Kind: c.Kind, Epsilon: c.Epsilon, Steps: c.Steps, NoiseVectors: c.NoiseVectors, Base: base, NoGrad: c.NoGrad}
	if c.Kind == attack.DDN {
		a.InitNorm, a.Gamma = c.InitNorm, c.Gamma
	}
	return a
}
