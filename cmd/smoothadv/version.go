package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/torchbind"
)

func init() { commands = append(commands, newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the libtorch, CUDA and cuDNN versions, c10d backends, allocator and CPU kernels this binary runs over",
		Long: `Print what this binary runs over: the libtorch its shims were compiled
against, the CUDA runtime and cuDNN that libtorch was built with (when it has
CUDA; no GPU is needed to tell), the c10d backends compiled into the shim, the
malloc that serves CPU tensors, and the vector kernels ATen picks on this CPU
(ATEN_CPU_CAPABILITY lowers them). Paste it into bug reports: results repeat
exactly only on the same libtorch and CPU kernels.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout())
		},
	}
}

func printVersion(w io.Writer) error {
	r, err := torchbind.RuntimeInfo()
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	none := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	backends := strings.Join(r.DistBackends, ", ")
	fmt.Fprintf(w, "libtorch        %s\n", r.Torch)
	fmt.Fprintf(w, "CUDA            %s\n", none(r.CUDA))
	fmt.Fprintf(w, "cuDNN           %s\n", none(r.CuDNN))
	fmt.Fprintf(w, "c10d backends   %s\n", none(backends))
	fmt.Fprintf(w, "allocator       %s\n", r.Allocator)
	fmt.Fprintf(w, "CPU capability  %s\n", r.CPUCapability)
	return nil
}
