package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/smoothadv/smoothadv/smoothadv/jobs"
)

// jobPaths are, for each command the reference's scripts become, the
// positions of its positional arguments that are paths of the job's own
// files, its output last: relative ones are taken under the job's folder
// OUT/NAME, so that a job's training and its certification meet there.
var jobPaths = map[string][]int{
	"train":   {2},    // DATASET ARCH OUTDIR
	"certify": {1, 3}, // DATASET MODEL SIGMA OUTFILE
	"predict": {1, 3}, // DATASET MODEL SIGMA OUTDIR
}

// jobRun is one command of a job, ready to run.
type jobRun struct {
	job    string
	args   []string // our command line
	folder string   // made before it runs: where its output goes
}

// runJobs runs the reference's job file b: every command of every job is
// checked first (an unknown flag or a missing argument names the job), then
// each runs in turn as our command, with the job's relative paths under
// out/NAME.
func runJobs(ctx context.Context, b []byte, source, out string, stdout, stderr io.Writer) error {
	js, err := jobs.Parse(b, source)
	if err != nil {
		return err
	}
	var runs []jobRun
	for _, j := range js {
		for _, c := range j.Commands {
			r, err := planJob(c.Args, filepath.Join(out, j.Name))
			if err != nil {
				return fmt.Errorf("%s: job %s: %q: %w", source, j.Name, c.Line, err)
			}
			r.job = j.Name
			runs = append(runs, r)
		}
	}
	for _, r := range runs {
		if err := os.MkdirAll(r.folder, 0o755); err != nil {
			return fmt.Errorf("job %s: %w", r.job, err)
		}
		fmt.Fprintf(stdout, "job %s: smoothadv %s\n", r.job, strings.Join(r.args, " "))
		if err := execute(ctx, r.args, stdout, stderr); err != nil {
			return fmt.Errorf("job %s: %w", r.job, err)
		}
	}
	return nil
}

// planJob checks a command line against our command's flags and arguments
// and returns it with the job's relative paths under dir.
func planJob(args []string, dir string) (jobRun, error) {
	cmd, rest, err := newRootCmd().Find(args)
	if err != nil {
		return jobRun{}, err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return jobRun{}, err
	}
	pos := cmd.Flags().Args()
	if err := cmd.ValidateArgs(pos); err != nil {
		return jobRun{}, err
	}
	r := jobRun{folder: dir}
	for _, i := range jobPaths[cmd.Name()] {
		if !filepath.IsAbs(pos[i]) {
			pos[i] = filepath.Join(dir, pos[i])
			r.folder = filepath.Dir(pos[i]) // the output's, the last
		}
	}
	r.args = append([]string{cmd.Name()}, pos...)
	cmd.Flags().Visit(func(f *pflag.Flag) { r.args = append(r.args, "--"+f.Name+"="+f.Value.String()) })
	return r, nil
}
