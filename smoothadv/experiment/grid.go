package experiment

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/smoothadv/smoothadv/internal/yamlfield"
	"github.com/smoothadv/smoothadv/smoothadv/train/settings"
)

// Run is one point of an experiment's grid: one training, certified once.
type Run struct {
	Config Config // resolved: no grid, sigma and device filled in
	// Rel is the run's folder, relative to the experiment's folder.
	Rel string
	// TrainRel is the folder it trains in: Rel, or a parent of it shared with
	// the runs that differ from it only in certification knobs.
	TrainRel string
}

// ModelFile is the model the run certifies: its checkpoint, or the one its
// training writes under the experiment folder exp.
func (r Run) ModelFile(exp string) string {
	if ckpt := r.Config.Model.Checkpoint; ckpt != "" {
		return ckpt
	}
	return filepath.Join(r.TrainDir(exp), settings.CheckpointFile)
}

// Sigma is the noise level the run is certified at.
func (r Run) Sigma() float64 { return *r.Config.Certification.Sigma }

// Dir, TrainDir and CertifyLog are the run's folders and certify log under
// the experiment folder exp; the log is named as the reference names it
// (test/sigma_0.25).
func (r Run) Dir(exp string) string      { return filepath.Join(exp, r.Rel) }
func (r Run) TrainDir(exp string) string { return filepath.Join(exp, r.TrainRel) }
func (r Run) CertifyLog(exp string) string {
	return filepath.Join(exp, r.Rel, r.Config.Certification.Split, "sigma_"+twoDecimals(r.Sigma()))
}

// axis is one knob that a grid varies, and its values.
type axis struct {
	path   string // SECTION.KEY
	values []*yaml.Node
}

// product is one grid mapping: its runs are every combination of its axes.
type product []axis

// gridRuns is how many runs the grids make before duplicates are dropped,
// counted without making them (saturating, so no product overflows).
func gridRuns(grids []product) int {
	total := 0
	for _, p := range grids {
		n := 1
		for _, a := range p {
			n = min(n*max(len(a.values), 1), math.MaxInt32)
		}
		total = min(total+n, math.MaxInt32)
	}
	return max(total, 1)
}

// gridSections are the sections whose knobs a grid may vary.
var gridSections = []string{"data", "model", "training", "certification"}

// knob returns the field of c that path (SECTION.KEY) names, or why it
// cannot be varied. c must be addressable through the pointer.
func knob(c *Config, path string) (reflect.Value, error) {
	section, key, ok := strings.Cut(path, ".")
	if !ok || !slices.Contains(gridSections, section) {
		return reflect.Value{}, fmt.Errorf("want SECTION.KEY with SECTION one of %s", strings.Join(gridSections, ", "))
	}
	if why, owned := ownedByRunner[key]; owned && section == "training" {
		return reflect.Value{}, fmt.Errorf("%s", why)
	}
	f := yamlfield.ByKey(yamlfield.ByKey(reflect.ValueOf(c).Elem(), section), key)
	if !f.IsValid() {
		return reflect.Value{}, fmt.Errorf("%s has no knob %q", section, key)
	}
	return f, nil
}

// parseGrid reads the grid node: a mapping of knob paths to lists of
// values, or a list of such mappings. Every axis with a problem is reported
// and left out.
func parseGrid(n *yaml.Node) ([]product, []string) {
	if n.Kind == 0 {
		return nil, nil
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	var mappings []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		mappings = []*yaml.Node{n}
	case yaml.SequenceNode:
		mappings = n.Content
		if len(mappings) == 0 {
			bad("line %d: grid: empty list", n.Line)
		}
	default:
		bad("line %d: grid: want a mapping of knobs to lists of values, or a list of such mappings", n.Line)
	}
	scratch := defaults()
	var products []product
	for g, m := range mappings {
		where := "grid"
		if n.Kind == yaml.SequenceNode {
			where = fmt.Sprintf("grid[%d]", g)
		}
		if m.Kind != yaml.MappingNode || len(m.Content) == 0 {
			bad("line %d: %s: want a non-empty mapping of knobs to lists of values", m.Line, where)
			continue
		}
		var p product
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, values := m.Content[i], m.Content[i+1]
			at := fmt.Sprintf("line %d: %s: %s", key.Line, where, key.Value)
			if slices.ContainsFunc(p, func(a axis) bool { return a.path == key.Value }) {
				bad("%s: listed twice", at)
				continue
			}
			f, err := knob(&scratch, key.Value)
			if err != nil {
				bad("%s: %v", at, err)
				continue
			}
			if values.Kind != yaml.SequenceNode || len(values.Content) == 0 {
				bad("%s: want a non-empty list of values", at)
				continue
			}
			ok := true
			for _, v := range values.Content {
				if msg := decodeProblem(v, f.Type()); msg != "" {
					bad("line %d: %s: %s: %s", v.Line, where, key.Value, msg)
					ok = false
				}
			}
			if ok {
				p = append(p, axis{key.Value, values.Content})
			}
		}
		if len(p) > 0 {
			products = append(products, p)
		}
	}
	return products, problems
}

// decodeProblem says why v cannot be a value of type t, or returns "".
func decodeProblem(v *yaml.Node, t reflect.Type) string {
	if v.Kind != yaml.ScalarNode {
		return "want a single value, not a list or mapping"
	}
	err := v.Decode(reflect.New(t).Interface())
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) && len(typeErr.Errors) > 0 {
		_, msg, _ := strings.Cut(typeErr.Errors[0], ": ") // drop "line N: "
		return msg
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// expand makes the runs of base's grids, checks each, and drops repeats.
// Relative paths that the grid sets are relative to dir. A problem that
// every run has is reported once; one that only some runs have names them.
func expand(base Config, grids []product, dir string) ([]Run, []string) {
	var configs []Config
	var varied []string
	if len(grids) == 0 {
		configs = append(configs, base.clone())
	}
	for _, p := range grids {
		for _, a := range p {
			if !slices.Contains(varied, a.path) {
				varied = append(varied, a.path)
			}
		}
		configs = append(configs, combinations(base, p)...)
	}
	var runs []Run
	var order []string
	withProblem := map[string][]string{}
	byRel := map[string]int{}
	byTrainRel := map[string]int{}
	var problems []string // besides those of checkRun
	once := func(format string, a ...any) {
		if msg := fmt.Sprintf(format, a...); !slices.Contains(problems, msg) {
			problems = append(problems, msg)
		}
	}
	var resolved []Config
	for _, c := range configs {
		c.Grid = yaml.Node{}
		c.resolve(base)
		if err := c.resolvePaths(dir); err != nil {
			once("%v", err)
		}
		matched, err := c.globCheckpoint()
		if err != nil {
			once("%v", err)
		}
		resolved = append(resolved, matched...)
	}
	root := checkpointRoot(resolved)
	// A checkpoint certified once is named by its folder alone; one
	// certified several ways gets cert_KNOB_VALUE folders below it.
	perCheckpoint := map[string]int{}
	for _, c := range resolved {
		perCheckpoint[c.Model.Checkpoint]++
	}
	for _, c := range resolved {
		trainRel, rel := layout(&c, varied, root)
		if ckpt := c.Model.Checkpoint; ckpt != "" && perCheckpoint[ckpt] == 1 {
			rel = trainRel
		}
		if i, seen := byRel[rel]; seen {
			if !reflect.DeepEqual(runs[i].Config, c) {
				once("grid: runs differ in knobs that their folder %s does not show", rel)
			}
			continue
		}
		if i, seen := byTrainRel[trainRel]; seen {
			o := runs[i].Config
			if !reflect.DeepEqual(o.Data, c.Data) || !reflect.DeepEqual(o.Model, c.Model) || !reflect.DeepEqual(o.Training, c.Training) {
				once("grid: trainings differ in knobs that their folder %s does not show", trainRel)
			}
		} else {
			byTrainRel[trainRel] = len(runs)
		}
		byRel[rel] = len(runs)
		runs = append(runs, Run{Config: c, Rel: rel, TrainRel: trainRel})
		for _, msg := range c.checkRun() {
			if _, seen := withProblem[msg]; !seen {
				order = append(order, msg)
			}
			withProblem[msg] = append(withProblem[msg], rel)
		}
	}
	for _, msg := range order {
		rels := withProblem[msg]
		if len(rels) == len(runs) {
			problems = append(problems, msg)
			continue
		}
		list := strings.Join(rels[:min(3, len(rels))], ", ")
		if len(rels) > 3 {
			list += fmt.Sprintf(" and %d more", len(rels)-3)
		}
		problems = append(problems, fmt.Sprintf("%s (in run %s)", msg, list))
	}
	return runs, problems
}

// combinations returns base with every combination of p's values, the
// first axis varying slowest.
func combinations(base Config, p product) []Config {
	var out []Config
	idx := make([]int, len(p))
	for {
		c := base.clone()
		for a, ax := range p {
			f, err := knob(&c, ax.path)
			if err == nil { // parseGrid checked the knob and its values
				_ = ax.values[idx[a]].Decode(f.Addr().Interface())
			}
		}
		out = append(out, c)
		a := len(p) - 1
		for ; a >= 0; a-- {
			if idx[a]++; idx[a] < len(p[a].values) {
				break
			}
			idx[a] = 0
		}
		if a < 0 {
			return out
		}
	}
}

// globCheckpoint is c once for each file its checkpoint pattern matches, in
// order (c itself when it certifies no checkpoint or names one file).
func (c Config) globCheckpoint() ([]Config, error) {
	pattern := c.Model.Checkpoint
	if pattern == "" || !strings.ContainsAny(pattern, "*?[") {
		return []Config{c}, nil
	}
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("model.checkpoint: %s matches no file", pattern)
	}
	out := make([]Config, len(files))
	for i, f := range files {
		out[i] = c.clone()
		out[i].Model.Checkpoint = f
	}
	return out, nil
}

// checkpointRoot is the deepest folder that holds every run's checkpoint,
// so that a run's folder is its checkpoint's folder below it; "" when no
// run certifies a checkpoint.
func checkpointRoot(configs []Config) string {
	var dirs []string
	for _, c := range configs {
		if c.Model.Checkpoint != "" {
			dirs = append(dirs, filepath.Dir(c.Model.Checkpoint))
		}
	}
	if len(dirs) == 0 {
		return ""
	}
	root := dirs[0]
	for _, d := range dirs[1:] {
		for root != filepath.Dir(root) && !strings.HasPrefix(d+string(filepath.Separator), root+string(filepath.Separator)) {
			root = filepath.Dir(root)
		}
	}
	if len(dirs) == 1 || slices.Contains(dirs, root) {
		root = filepath.Dir(root) // a run's folder is never "."
	}
	return root
}

// layout names a run's training folder and its own folder (see the package
// documentation): the method and noise level as the reference's folders
// show them, then one KNOB_VALUE folder per other varied knob. A run that
// certifies a checkpoint is named by the checkpoint's folder below root,
// then its certification knobs.
func layout(c *Config, varied []string, root string) (trainRel, rel string) {
	if ckpt := c.Model.Checkpoint; ckpt != "" {
		trainRel, _ = filepath.Rel(root, filepath.Dir(ckpt))
		var cert []string
		for _, path := range varied {
			if section, key, _ := strings.Cut(path, "."); section == "certification" {
				cert = append(cert, "cert_"+key+"_"+knobValue(c, path))
			}
		}
		return trainRel, filepath.Join(append([]string{trainRel}, cert...)...)
	}
	t := c.Training
	shown := map[string]bool{"training.method": true, "training.adv_training": true, "training.noise_sd": true}
	var parts []string
	if t.Method != settings.Gaussian && t.Method != settings.SmoothAdv {
		parts = append(parts, t.Method) // macer/m16, consistency/PGD_2steps/m2/eps_64, ...
	}
	for method, keys := range settings.MethodKnobs {
		for _, k := range keys {
			shown["training."+k] = method != t.Method // reset to the base's (resolve)
		}
	}
	switch {
	case t.AdvTraining:
		parts = append(parts, fmt.Sprintf("%s_%dsteps", t.Attack, t.NumSteps), fmt.Sprintf("m%d", t.NumNoiseVec),
			"eps_"+strconv.FormatFloat(t.Epsilon, 'f', -1, 64))
		for _, k := range []string{"attack", "num_steps", "num_noise_vec", "epsilon"} {
			shown["training."+k] = true
		}
	case t.Method == settings.Gaussian:
		parts = append(parts, "gaussian")
	default:
		parts = append(parts, fmt.Sprintf("m%d", t.NumNoiseVec))
		shown["training.num_noise_vec"] = true
	}
	if !t.AdvTraining {
		for _, k := range settings.AttackKnobs {
			shown["training."+k] = true
		}
	}
	parts = append(parts, "noise_"+twoDecimals(t.NoiseSD))
	var cert []string
	for _, path := range varied {
		if shown[path] {
			continue
		}
		section, key, _ := strings.Cut(path, ".")
		part := key + "_" + knobValue(c, path)
		if section == "certification" {
			cert = append(cert, "cert_"+part)
		} else {
			parts = append(parts, part)
		}
	}
	return filepath.Join(parts...), filepath.Join(append(parts, cert...)...)
}

// unsafeInName are the characters a folder name made from a value drops.
var unsafeInName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// knobValue is the value of the knob at path as a folder name shows it.
func knobValue(c *Config, path string) string {
	f, err := knob(c, path)
	if err != nil {
		return "invalid"
	}
	if f.Kind() == reflect.Pointer {
		if f.IsNil() {
			return "default"
		}
		f = f.Elem()
	}
	switch f.Kind() {
	case reflect.Float64:
		return strconv.FormatFloat(f.Float(), 'f', -1, 64)
	case reflect.String:
		if f.String() == "" {
			return "default"
		}
		return strings.Trim(unsafeInName.ReplaceAllString(f.String(), "_"), "_")
	}
	return fmt.Sprint(f.Interface())
}

// twoDecimals formats a noise level as the reference's folders do (0.12,
// 0.50, 1.00), with more digits when two would round it.
func twoDecimals(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if x, _ := strconv.ParseFloat(s, 64); x != v {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return s
}
