// Command smoothadv trains, certifies, attacks and analyses randomized-smoothing
// classifiers (SmoothAdv, Salman et al. 2019) over libtorch.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
)

// commands holds the constructors of the top-level subcommands. Each command
// file appends its constructor in an init function, so that commands can be
// added without editing this file.
var commands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "smoothadv",
		Short:         "Provably robust classifiers: SmoothAdv training, randomized-smoothing certification, attacks and analysis",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range commands {
		root.AddCommand(c())
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "smoothadv: interrupted")
		os.Exit(130)
	}
	fmt.Fprintf(os.Stderr, "smoothadv: %v\n", err)
	os.Exit(1)
}
