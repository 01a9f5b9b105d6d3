// Package jobs reads the reference's job files (jobs.yaml): a list of jobs,
// each a name and the command lines it runs (python code/train_pgd.py ...,
// certify.py ..., predict.py ...), so that smoothadv runs them as its own
// commands with the same arguments. The scheduler's fields (sku, id,
// results_dir, ...) are ignored.
package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
)

// Job is one job: its commands, in order.
type Job struct {
	Name     string
	Commands []Command
}

// Command is one command line of a job: the reference's script, and what
// smoothadv runs for it (its command's name, then the script's arguments).
type Command struct {
	Line string
	Args []string
}

// scripts maps the reference's scripts to our commands.
var scripts = map[string]string{
	"train_pgd.py": "train", // SmoothAdv and Gaussian training (train.py's flags and more)
	"train.py":     "train",
	"certify.py":   "certify",
	"predict.py":   "predict",
}

// IsJobsFile reports whether a YAML file is a job file: its top level has
// a jobs list.
func IsJobsFile(b []byte) bool {
	var top map[string]yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&top); err != nil {
		return false
	}
	_, ok := top["jobs"]
	return ok
}

// Parse reads a job file. Every job needs a name (a folder name) and at
// least one command of a known script.
func Parse(b []byte, source string) ([]Job, error) {
	var file struct {
		Jobs []struct {
			Name    string    `yaml:"name"`
			Command yaml.Node `yaml:"command"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if len(file.Jobs) == 0 {
		return nil, fmt.Errorf("%s: no jobs", source)
	}
	var jobs []Job
	seen := map[string]bool{}
	for i, j := range file.Jobs {
		if j.Name == "" || strings.ContainsAny(j.Name, "/\\") || j.Name == "." || j.Name == ".." {
			return nil, fmt.Errorf("%s: jobs[%d]: name %q, want a folder name", source, i, j.Name)
		}
		if seen[j.Name] {
			return nil, fmt.Errorf("%s: job %s: the name is taken by an earlier job", source, j.Name)
		}
		seen[j.Name] = true
		var lines []string
		switch j.Command.Kind {
		case yaml.ScalarNode:
			lines = []string{j.Command.Value}
		case yaml.SequenceNode:
			if err := j.Command.Decode(&lines); err != nil {
				return nil, fmt.Errorf("%s: job %s: command: want a line or a list of lines", source, j.Name)
			}
		default:
			return nil, fmt.Errorf("%s: job %s: no command", source, j.Name)
		}
		job := Job{Name: j.Name}
		for _, line := range lines {
			args, err := command(line)
			if err != nil {
				return nil, fmt.Errorf("%s: job %s: %w", source, j.Name, err)
			}
			job.Commands = append(job.Commands, Command{Line: line, Args: args})
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// command turns "python code/train_pgd.py ARGS..." into our command line
// "train ARGS...".
func command(line string) ([]string, error) {
	words, err := split(line)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", line, err)
	}
	for i, w := range words {
		if !strings.HasSuffix(w, ".py") {
			continue
		}
		ours, ok := scripts[path.Base(w)]
		if !ok {
			return nil, fmt.Errorf("%q: the script %s is not one smoothadv runs (train_pgd.py, train.py, certify.py, predict.py)", line, w)
		}
		return append([]string{ours}, words[i+1:]...), nil
	}
	return nil, fmt.Errorf("%q: no python script in it", line)
}

// split cuts a command line into words as a shell does for plain words,
// single and double quotes and backslashes (no variables or globs).
func split(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errors.New("an unclosed quote or a trailing backslash")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
