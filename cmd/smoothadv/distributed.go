package main

import "github.com/smoothadv/smoothadv/smoothadv/dist"

// inJob runs f as this process's part of the data-parallel job that torchrun
// or srun launched it into (g is nil for a process launched alone), and
// returns the error the process exits with: its own, or, when it stopped
// because another process failed, that process's.
func inJob(f func(g *dist.Group) error) error {
	g, err := dist.Launched()
	if err != nil {
		return err
	}
	return g.Close(f(g))
}
