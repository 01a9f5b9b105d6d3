package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/smoothadv/smoothadv/internal/samepath"
	"github.com/smoothadv/smoothadv/smoothadv/models"
)

func init() { commands = append(commands, newImportCmd) }

// importOptions are the flags of smoothadv import.
type importOptions struct {
	out, arch, normalization string
	forceNormalization       bool
}

func (o *importOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.out, "out", "", "TorchScript model file to write")
	cmd.Flags().StringVar(&o.arch, "arch", "", "architecture the checkpoint must be (it names its own, but for a MACER checkpoint)")
	cmd.Flags().StringVar(&o.normalization, "normalization", "",
		`input layer the net was trained behind: "normalize" (NormalizeLayer, the default), "center" (InputCenterLayer) or "none" (the default for MACER's checkpoints)`)
	cmd.Flags().BoolVar(&o.forceNormalization, "force-normalization", false, "use --normalization even where the checkpoint records another input layer")
}

// newImportCmd converts a reference checkpoint. Such checkpoints do not say
// which input layer their net was trained behind; the help text tells the
// user how to find out.
func newImportCmd() *cobra.Command {
	var o importOptions
	cmd := &cobra.Command{
		Use:   "import CHECKPOINT --out MODEL.pt",
		Short: "Convert a checkpoint.pth.tar of the Python reference into a TorchScript model with metadata",
		Long: `Convert a checkpoint.pth.tar written by the Python reference (SmoothAdv or
Cohen et al.; torch.save's legacy or zip format) into a TorchScript model file
that records its architecture, dataset and input layer. The checkpoint is read
without running any code it contains. Every command also loads such
checkpoints directly; importing records the input layer once and for all.

The reference's checkpoints do not record whether the net was trained behind
NormalizeLayer ((x - mean) / sd) or InputCenterLayer (x - mean); the state
dict is the same either way. NormalizeLayer is assumed unless --normalization
center is given. To find out, import with each choice and certify a few
hundred test images with each model (e.g. --skip 20 and a small --N): the
right layer gives about the clean accuracy the paper reports, the wrong one far
less (often around 30% on CIFAR-10) or nearly the same label for every image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if samepath.Same(o.out, args[0]) {
				return fmt.Errorf("--out %s is the checkpoint being imported: write the model elsewhere", o.out)
			}
			m, err := models.LoadCheckpoint(args[0], models.Options{Arch: o.arch, Normalization: o.normalization, ForceNormalization: o.forceNormalization})
			if err != nil {
				return err
			}
			defer m.Close()
			if err := m.Save(o.out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s: %s (%s, epoch %d) behind the %s input layer\n",
				o.out, m.Meta.Arch, m.Meta.Dataset, m.Meta.Epoch, m.Meta.Normalization)
			if o.normalization == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "reference checkpoints do not record the input layer: see smoothadv import --help to check it")
			}
			return nil
		},
	}
	o.register(cmd)
	_ = cmd.MarkFlagRequired("out") // fails only for an unknown flag name
	return cmd
}
