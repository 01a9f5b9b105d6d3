package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/certify"
	"github.com/smoothadv/smoothadv/internal/pyfmt"
	"github.com/smoothadv/smoothadv/smoothadv/attack"
	"github.com/smoothadv/smoothadv/smoothadv/smoothing"
)

// attackFlags are predict.py's attack options; radii in 1/256 units.
type attackFlags struct {
	kind       string
	epsilon    float64
	steps      int
	noiseVecs  int
	noGrad     bool
	base       bool
	initNorm   float64
	visualize  bool
	frozen     bool
	gammaDDN   float64
	hasGammaDN bool
}

// outDir is predict.py's output folder under OUTDIR.
func (a attackFlags) outDir(root string, sigma float64) string {
	if a.kind == "" {
		return filepath.Join(root, "noise_"+pyfmt.G(sigma, 3))
	}
	name := fmt.Sprintf("%s_%s_noise_%s_mtest_%d", a.kind, pyfmt.Repr(attack.From256(a.epsilon)), pyfmt.G(sigma, 3), a.noiseVecs)
	if a.base {
		name += "_base"
	}
	return filepath.Join(root, name)
}

func (a attackFlags) config() (attack.Config, error) {
	if !(a.epsilon > 0 && !math.IsInf(a.epsilon, 1)) {
		return attack.Config{}, fmt.Errorf("--epsilon %v: want a finite number > 0, in 1/256 units (64 is an L2 radius of 0.25)", a.epsilon)
	}
	eps := attack.From256(a.epsilon)
	c := attack.Config{Kind: a.kind, Epsilon: eps, Steps: a.steps, NoiseVectors: a.noiseVecs, NoGrad: a.noGrad,
		InitNorm: attack.From256(a.initNorm), Gamma: a.gammaDDN}
	if a.kind == attack.DDN && !a.hasGammaDN {
		g, err := attack.EvalGamma(eps, a.steps)
		if err != nil {
			return c, err
		}
		c.Gamma = g
	}
	return c, c.Validate()
}

// attackOnlyFlags are predict's flags that only --attack uses.
var attackOnlyFlags = []string{"frozen-attack", "epsilon", "num-steps", "num-noise-vec", "no-grad-attack", "base-attack",
	"init-norm-DDN", "gamma-DDN", "visualize-examples"}

func newPredictCmd() *cobra.Command {
	var f smoothingFlags
	var a attackFlags
	cmd := &cobra.Command{
		Use:   "predict DATASET MODEL SIGMA OUTDIR",
		Short: "Predict with the smoothed classifier (Cohen et al.'s PREDICT), optionally under attack",
		Long: `Predict runs PREDICT on the selected examples and writes the reference's log
(idx, label, predict, basePredict, correct, time) to OUTDIR/noise_SIGMA/predictions, or with
--attack to OUTDIR/ATTACK_EPS_noise_SIGMA_mtest_M/predictions (_base with --base-attack).
With --attack each image is first attacked as predict.py does (tiled --num-noise-vec times,
noised, attacked, first copy kept), which measures empirical robust accuracy.`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.hasGammaDN = cmd.Flags().Changed("gamma-DDN")
			if a.kind == "" {
				for _, name := range attackOnlyFlags {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("--%s sets up an attack, but no --attack is given (PGD or DDN): it would be ignored", name)
					}
				}
			}
			p := certify.PredictParams{N: f.n, Alpha: f.alpha}
			var cfg attack.Config
			var sigma float64
			job, m, err := f.setup(args[0], args[1], args[2], "", cmd.ErrOrStderr(), func(s float64) error {
				sigma = s
				if a.kind != "" {
					var err error
					if cfg, err = a.config(); err != nil {
						return err
					}
				}
				return p.Validate()
			})
			if err != nil {
				return err
			}
			defer m.Close()
			defer job.Sampler.Close()
			dir := a.outDir(args[3], sigma)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			job.Out = filepath.Join(dir, "predictions")
			var at *smoothing.PredictAttack
			if a.kind != "" {
				at = &smoothing.PredictAttack{Config: cfg, Base: a.base, Frozen: a.frozen}
				if a.visualize {
					at.Visualize = pngWriter(filepath.Join(dir, "examples"), job.Sampler.Shape)
				}
			}
			return smoothing.PredictModel(cmd.Context(), job, m, p, at)
		},
	}
	f.register(cmd.Flags(), 100000)
	fs := cmd.Flags()
	fs.StringVar(&a.kind, "attack", "", "attack the inputs first: PGD or DDN")
	fs.BoolVar(&a.frozen, "frozen-attack", true, "attack a frozen copy of the model, BatchNorm folded into the convolutions (same function, faster; false: the model itself, as the reference)")
	fs.Float64Var(&a.epsilon, "epsilon", 64, "attack radius in 1/256 units (64 = L2 radius 0.25)")
	fs.IntVar(&a.steps, "num-steps", 20, "attack steps")
	fs.IntVar(&a.noiseVecs, "num-noise-vec", 1, "noise draws per image in the attack (m_test)")
	fs.BoolVar(&a.noGrad, "no-grad-attack", false, "gradient-free (Stein) attack")
	fs.BoolVar(&a.base, "base-attack", false, "attack the base classifier (no noise)")
	fs.Float64Var(&a.initNorm, "init-norm-DDN", 256, "DDN's initial norm in 1/256 units")
	fs.Float64Var(&a.gammaDDN, "gamma-DDN", 0.05, "DDN's norm step (default in predict: 1 - (3/510/eps)^(1/steps))")
	fs.BoolVar(&a.visualize, "visualize-examples", false, "write PNGs of clean and attacked images to OUTDIR/.../examples")
	return cmd
}

// pngWriter saves clean and attacked images as IDX_clean.png and IDX_adv.png.
func pngWriter(dir string, shape []int64) func(int, []float32, []float32) error {
	return func(idx int, clean, adv []float32) error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for name, pix := range map[string][]float32{"clean": clean, "adv": adv} {
			path := filepath.Join(dir, fmt.Sprintf("%d_%s.png", idx, name))
			if err := writePNG(path, pix, shape); err != nil {
				return err
			}
		}
		return nil
	}
}

func writePNG(path string, pix []float32, shape []int64) error {
	c, h, w := int(shape[0]), int(shape[1]), int(shape[2])
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	level := func(v float32) uint8 { return uint8(min(max(v, 0), 1)*255 + 0.5) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			at := func(ch int) uint8 { return level(pix[(ch*h+y)*w+x]) }
			r, g, b := at(0), at(0), at(0)
			if c == 3 {
				g, b = at(1), at(2)
			}
			img.SetNRGBA(x, y, color.NRGBA{r, g, b, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func init() { commands = append(commands, newPredictCmd) }
