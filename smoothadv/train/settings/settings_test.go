package settings

import (
	"slices"
	"strings"
	"testing"
)

// TestMethodValidation: the method's settings are checked with the rest,
// and smoothadv is checked as adv_training.
func TestMethodValidation(t *testing.T) {
	for _, c := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Method = "stability" }, `method: "stability", want one of [gaussian smoothadv macer consistency smoothmix]`},
		{func(c *Config) { c.Method, c.AdvTraining = MACER, true }, "adv_training: MACER is attack-free"},
		{func(c *Config) { c.Method, c.AdvTraining = SmoothMix, true }, "adv_training: SmoothMix runs its own attack"},
		{func(c *Config) { c.Method, c.MACERGamma = MACER, 0 }, "macer_gamma: 0, want a finite number > 0"},
		{func(c *Config) { c.Method, c.ConsistencyEta = Consistency, -1 }, "consistency_eta: -1, want a finite number >= 0"},
		{func(c *Config) { c.Method, c.SmoothMixMixStep = SmoothMix, 9 }, "smoothmix_mix_step: 9, want in [0, smoothmix_num_steps = 8]"},
		{func(c *Config) { c.Method, c.SmoothMixWarmup = SmoothMix, 0 }, "smoothmix_warmup: 0, want >= 1"},
		{func(c *Config) { c.Method, c.Attack = SmoothAdv, "FGSM" }, `attack: "FGSM", want PGD or DDN`},
	} {
		cfg := Defaults()
		cfg.Dataset, cfg.Arch, cfg.OutDir = "fashion-mnist", "fashion_cnn", "out"
		c.change(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v, want an error saying %q", err, c.want)
		}
	}
	// Knobs of a method not in use are not checked.
	cfg := Defaults()
	cfg.Dataset, cfg.Arch, cfg.OutDir = "fashion-mnist", "fashion_cnn", "out"
	cfg.MACERGamma, cfg.SmoothMixWarmup = -1, 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("Gaussian augmentation with bad MACER and SmoothMix knobs: %v", err)
	}
	for method, keys := range MethodKnobs {
		for _, key := range keys {
			if !cfg.Knob(key).IsValid() {
				t.Errorf("%s's knob %s is no setting", method, key)
			}
		}
	}
	for _, key := range AttackKnobs {
		if !cfg.Knob(key).IsValid() {
			t.Errorf("attack knob %s is no setting", key)
		}
	}
	if r := (Config{AdvTraining: true}).Resolved(); r.Method != SmoothAdv {
		t.Errorf("adv_training resolves to method %q, want smoothadv", r.Method)
	}
	if r := (Config{Method: SmoothAdv}).Resolved(); !r.AdvTraining {
		t.Error("method smoothadv does not resolve to adv_training")
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Batch, c.LR, c.AdvTraining, c.Attack = 0, -1, true, "FGSM"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	var keys []string
	for _, p := range c.Problems() {
		keys = append(keys, p.Key)
	}
	if want := []string{"dataset", "arch", "outdir", "batch", "lr", "attack"}; !slices.Equal(keys, want) {
		t.Errorf("problems of keys %q, want %q", keys, want)
	}
	for _, want := range []string{"dataset", "arch", "outdir", "batch", "lr", "attack"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestWarmEpsilon(t *testing.T) {
	c := Defaults()
	c.Epsilon, c.Warmup = 256, 4
	for e, want := range []float64{0.25, 0.5, 0.75, 1, 1} {
		if got := c.WarmEpsilon(e); got != want {
			t.Errorf("epoch %d: eps %v, want %v", e, got, want)
		}
	}
}

func TestChangedSettings(t *testing.T) {
	was := Defaults()
	was.Dataset, was.Arch, was.NoiseSD = "cifar10", "cifar_resnet20", 0.25
	now := was
	now.Epochs, now.LR, now.Batch, now.Epsilon = 150, 0.01, 128, 64
	if d := ChangedSettings(was, now); d != nil {
		t.Errorf("longer training, other optimiser settings, attack settings without adversarial training: %v", d)
	}
	now.Dataset, now.NoiseSD, now.AdvTraining = "imagenet32", 0.5, true
	got := strings.Join(ChangedSettings(was, now), "; ")
	want := `dataset was "cifar10", now "imagenet32"; noise_sd was 0.25, now 0.5; adv_training was false, now true; epsilon was 256, now 64`
	if got != want {
		t.Errorf("changed settings\n%s\nwant\n%s", got, want)
	}
	// A method's knobs count when either side trains with it; a record from
	// before methods (no method) is Gaussian augmentation.
	was.Method, was.MACERLambda = "", 4
	now = was
	now.MACERLambda, now.ConsistencyLambda = 12, 20
	if d := ChangedSettings(was, now); d != nil {
		t.Errorf("knobs of methods neither side uses: %v", d)
	}
	now.Method = MACER
	got = strings.Join(ChangedSettings(was, now), "; ")
	want = `method was "gaussian", now "macer"; macer_lbd was 4, now 12`
	if got != want {
		t.Errorf("changed method\n%s\nwant\n%s", got, want)
	}
}

// TestGaussianWithAdvTrainingRefused: method gaussian said together with
// adv_training contradicts itself; unset, adv_training is smoothadv.
func TestGaussianWithAdvTrainingRefused(t *testing.T) {
	c := Defaults()
	c.Dataset, c.Arch, c.OutDir = "fashion-mnist", "fashion_cnn", "out"
	c.AdvTraining = true
	if err := c.Validate(); err != nil {
		t.Errorf("adv_training with method unset: %v", err)
	}
	c.Method = Gaussian
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "method: gaussian does not attack, and adv_training does") {
		t.Errorf("method gaussian with adv_training: %v", err)
	}
}
