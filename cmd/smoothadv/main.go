// Command smoothadv trains, certifies, attacks and analyses randomized-smoothing
// classifiers (SmoothAdv, Salman et al. 2019) over libtorch.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"syscall"

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
	root.SetFlagErrorFunc(flagError)
	return root
}

// badNumber matches pflag's message for a flag value that strconv refused.
var badNumber = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: strconv\.(\w+): parsing ".*": (invalid syntax|value out of range)$`)

// negativeArg matches pflag's message for an argument like -0.25, which it
// takes for a bundle of one-letter flags.
var negativeArg = regexp.MustCompile(`^unknown shorthand flag: '[0-9.]' in (-[0-9.]+)`)

// flagError says what a flag wants instead of showing strconv's message.
func flagError(_ *cobra.Command, err error) error {
	if m := negativeArg.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("%s: a negative number is no argument of this command (sigma, radii and counts are positive)", m[1])
	}
	m := badNumber.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	want := map[string]string{"ParseUint": "a whole number >= 0", "ParseInt": "a whole number", "ParseFloat": "a number", "ParseBool": "true or false"}[m[3]]
	if want == "" {
		want = "another value"
	}
	if m[4] == "value out of range" {
		return fmt.Errorf("%s %s: out of range for %s", m[2], m[1], want)
	}
	return fmt.Errorf("%s %s: want %s", m[2], m[1], want)
}

// execute runs the command line args (without the program's name),
// printing to stdout and stderr; tests call it in-process.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// quietEnv are the variables that mute libtorch's own logging of errors
// that smoothadv reports in its words (a rendezvous that times out printed
// glog's "Logging before InitGoogleLogging" and a socket.cpp line first):
// glog in Debian's build, c10's logger in PyPI's. A user's setting wins.
var quietEnv = map[string]string{"GLOG_minloglevel": "3", "TORCH_CPP_LOG_LEVEL": "FATAL"}

// quietLibTorch re-executes the command once with quietEnv set: libtorch
// reads these variables when it is loaded, before main runs. It returns
// only when that is not needed or not possible.
func quietLibTorch() {
	var add []string
	for k, v := range quietEnv {
		if _, set := os.LookupEnv(k); !set {
			add = append(add, k+"="+v)
		}
	}
	if len(add) == 0 {
		return
	}
	self, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(self, os.Args, append(os.Environ(), add...)) // returns only on failure
}

func main() {
	quietLibTorch()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stopOnSignals(cancel)
	err := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	var sig signalError
	if errors.Is(err, context.Canceled) && errors.As(context.Cause(ctx), &sig) {
		fmt.Fprintf(os.Stderr, "smoothadv: stopped by %v; finished work is saved (--resume continues)\n", sig)
		os.Exit(sig.exitCode())
	}
	fmt.Fprintf(os.Stderr, "smoothadv: %v\n", err)
	os.Exit(1)
}

// signalError is the cause of a run cancelled by a signal.
type signalError struct{ os.Signal }

// Error names the signal as Slurm and kill(1) do.
func (e signalError) Error() string {
	switch e.Signal {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return e.Signal.String()
}

// exitCode is the shell's convention, 128 + the signal's number: 130 for
// SIGINT, 143 for SIGTERM.
func (e signalError) exitCode() int {
	if s, ok := e.Signal.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// stopOnSignals cancels the run on SIGINT or SIGTERM (what Slurm preemption
// and Kubernetes eviction send), so commands stop between examples or
// batches with their output complete. A second signal exits at once.
func stopOnSignals(cancel context.CancelCauseFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "smoothadv: %v: stopping after the current step (send it again to stop at once)\n", signalError{sig})
		cancel(signalError{sig})
		sig = <-sigs
		fmt.Fprintf(os.Stderr, "smoothadv: %v again: exiting now\n", signalError{sig})
		os.Exit(signalError{sig}.exitCode())
	}()
}
