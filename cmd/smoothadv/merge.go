package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/certify"
)

func init() { commands = append(commands, newMergeCmd) }

// mergeOptions are the flags of smoothadv merge.
type mergeOptions struct {
	datasetLen, skip, max int
}

func (o *mergeOptions) register(cmd *cobra.Command) {
	cmd.Flags().IntVar(&o.datasetLen, "n", 0, "number of examples in the split, for logs without run parameters: the merged indices must be exactly the run's selection")
	cmd.Flags().IntVar(&o.skip, "skip", 1, "the run's --skip (needs --n)")
	cmd.Flags().IntVar(&o.max, "max", -1, "the run's --max (needs --n)")
}

// expect returns the selection to check against, or nil without --n.
func (o *mergeOptions) expect(cmd *cobra.Command) (*certify.Selection, error) {
	if !cmd.Flags().Changed("n") {
		if cmd.Flags().Changed("skip") || cmd.Flags().Changed("max") {
			return nil, errors.New("merge: --skip and --max need --n")
		}
		return nil, nil
	}
	return &certify.Selection{DatasetLen: o.datasetLen, Skip: o.skip, Max: o.max}, nil
}

func newMergeCmd() *cobra.Command {
	var o mergeOptions
	cmd := &cobra.Command{
		Use:   "merge OUT SHARD...",
		Short: "Join the certify or predict logs of a sharded run into one log",
		Long: `Join the certify or predict logs that the shards of one run wrote (--shard i/n)
into one log in the reference's format, lines in index order, written
atomically, with the run's parameters recorded beside it (OUT.json, as part 0/1).

The run parameters that certify and predict record beside each shard
(SHARD.json) must agree on everything but the shard (and the device, batch,
workers and group), every part i/n of the run must be given exactly once, and
each shard must hold all of its examples: resume a shard that stopped early
before merging. Overlapping indices, torn shards and an OUT that is one of the
shards are refused too; nothing is written then.

Logs without run parameters (the Python reference's or an older smoothadv's)
need --n, the number of examples in the split, with the run's --skip and
--max: the merged indices must then be exactly the run's selection.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			expect, err := o.expect(cmd)
			if err != nil {
				return err
			}
			n, err := certify.Merge(cmd.Context(), args[0], args[1:], expect)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "merged %d lines from %d shards into %s\n", n, len(args)-1, args[0])
			return nil
		},
	}
	o.register(cmd)
	return cmd
}
