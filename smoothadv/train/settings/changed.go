package settings

import (
	"fmt"
	"strconv"
)

// AttackKnobs are the configuration keys (yaml) that only adversarial
// training (adv_training) uses.
var AttackKnobs = []string{"attack", "epsilon", "num_steps", "warmup", "no_grad_attack", "init_norm_ddn", "gamma_ddn"}

// ChangedSettings lists, as "name was RECORDED, now GIVEN", the settings of now
// that differ from was among those a resumed run must keep: the data, the
// model, the seed and everything that shapes the noise and the attack. The
// number of epochs (to train longer) and the optimiser's settings may change,
// as the reference allows. Attack settings count only with adversarial
// training on one side or the other, a method's own knobs only when one side
// trains with it.
func ChangedSettings(was, now Config) []string {
	was, now = was.Resolved(), now.Resolved()
	list := []setting{
		{"dataset", was.Dataset, now.Dataset},
		{"arch", was.Arch, now.Arch},
		{"seed", was.Seed, now.Seed},
		{"noise_sd", was.NoiseSD, now.NoiseSD},
		{"num_noise_vec", was.NumNoiseVec, now.NumNoiseVec},
		{"train_multi_noise", was.TrainMultiNoise, now.TrainMultiNoise},
		{"adv_training", was.AdvTraining, now.AdvTraining},
	}
	if was.AdvTraining || now.AdvTraining {
		for _, key := range AttackKnobs {
			list = append(list, setting{key, was.Knob(key).Interface(), now.Knob(key).Interface()})
		}
	}
	list = append(list, methodSettings(was, now)...)
	var diffs []string
	for _, s := range list {
		if s.was != s.now {
			diffs = append(diffs, fmt.Sprintf("%s was %s, now %s", s.name, show(s.was), show(s.now)))
		}
	}
	return diffs
}

// setting is one setting of a recorded run and of a resumed one.
type setting struct {
	name     string
	was, now any
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}
