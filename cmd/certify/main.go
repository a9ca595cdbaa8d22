// Command certify tells whether a trained network's loss falls monotonically
// along the straight line from its initial weights θ0 to its trained weights
// θT (the Monotonic Linear Interpolation property), and why.
//
// Usage:
//
//	certify --run DIR [flags]    analyse a run directory (RUN_FORMAT.md)
//	certify train [flags]        train a run on MNIST or Fashion-MNIST
//	certify import [flags]       make a run directory from PyTorch .pt or ONNX files
//	certify demo [flags]         train a small run on the built-in MNIST subset and analyse it
//	certify bench [flags]        time the analysis against PyTorch (docs/performance.md)
//
// Run `certify COMMAND -h` for a command's flags. Exit status: 0 on success,
// 2 for bad input (flags, a malformed run directory, missing data), 1 for an
// internal fault, 130 when interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// inputError marks an error caused by the user's input; it exits with status 2.
type inputError struct{ err error }

func (e inputError) Error() string { return e.err.Error() }
func (e inputError) Unwrap() error { return e.err }

func badInput(err error) error {
	if err == nil {
		return nil
	}
	return inputError{err}
}

func badInputf(format string, args ...any) error { return inputError{fmt.Errorf(format, args...)} }

// interruptedError is a command stopped by its context (Ctrl-C or SIGTERM):
// msg, e.g. "interrupted at step 12; continue with the same flags and
// --resume", is the one line run prints about it (after "certify: "), and
// err is the context's error. When several wrap one another, run prints
// the outermost, so a caller replaces a callee's advice by wrapping again.
type interruptedError struct {
	msg string
	err error
}

func (e interruptedError) Error() string { return e.msg }
func (e interruptedError) Unwrap() error { return e.err }

// interrupted wraps err, a context's error, with the line to print.
func interrupted(err error, format string, args ...any) error {
	return interruptedError{msg: fmt.Sprintf(format, args...), err: err}
}

// stdout and stderr are the command's outputs (tests replace them).
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

const usage = `certify: does the loss fall monotonically from θ0 to θT?

Usage:
  certify --run DIR [flags]   analyse a run directory (its flags are listed below)
  certify train [flags]       train a run (see certify train -h)
  certify demo [flags]        train a small MNIST run from the built-in subset and analyse it
  certify sweep GRID --out DIR [flags]  train and certify every point of a grid (see certify sweep -h)
  certify export [flags]      copy a run with its evaluation data in data.safetensors (for PyTorch)
  certify import --init A --final B --out DIR [flags]  a run directory from PyTorch .pt, ONNX, safetensors or .npz files (docs/from-pytorch.md)
  certify table RUNS_DIR [flags]    tabulate non-monotonic runs by configuration (see certify table -h)
  certify figures RUNS_DIR --out DIR [flags]  Δ, Gauss length and distance across runs (see certify figures -h)
  certify theory RUNS_DIR --out DIR [flags]   mse runs: Theorem B against the per-example certificate (see certify theory -h)
  certify lmc A B --out DIR [flags]   loss, error and barriers along the line between two runs (see certify lmc -h)
  certify lmc-table DIR...            one table (latex, markdown, csv) across certify lmc results
  certify bench [flags]       time the analysis (and, with --torch, PyTorch's) on a large MNIST run

Run certify COMMAND -h for a command's flags.
Exit status: 0 success, 2 bad input, 1 internal fault, 130 interrupted.
`

// helpText is the usage followed by the analysis flags (certify --help).
func helpText() string {
	var b strings.Builder
	b.WriteString(usage)
	b.WriteString("\nFlags of certify --run DIR (the analysis):\n")
	fs := newAnalyzeFlagSet(new(analyzeFlags))
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	var err error
	if computes(args) {
		setupBLAS() // before any product: OpenBLAS when the machine has it (blas.go)
	}
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage)
		return 2
	case args[0] == "train":
		err = trainCmd(ctx, args[1:])
	case args[0] == "demo":
		err = demoCmd(ctx, args[1:])
	case args[0] == "sweep":
		err = sweepCmd(ctx, args[1:])
	case args[0] == "export":
		err = exportCmd(ctx, args[1:])
	case args[0] == "import":
		err = importCmd(ctx, args[1:])
	case args[0] == "table":
		err = tableCmd(ctx, args[1:])
	case args[0] == "figures":
		err = figuresCmd(ctx, args[1:])
	case args[0] == "theory":
		err = theoryCmd(ctx, args[1:])
	case args[0] == "lmc":
		err = lmcCmd(ctx, args[1:])
	case args[0] == "lmc-table":
		err = lmcTableCmd(ctx, args[1:])
	case args[0] == "bench":
		err = benchCmd(ctx, args[1:])
	case args[0] == "analyze" || args[0] == "analyse":
		err = analyzeCmd(ctx, args[1:])
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help":
		fmt.Fprint(stdout, helpText())
		return 0
	case len(args[0]) > 0 && args[0][0] == '-':
		err = analyzeCmd(ctx, args)
	default:
		fmt.Fprintf(stderr, "certify: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, errHelp) {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		// One line: the command's own (interruptedError), not the bare
		// "context canceled" of whatever was running.
		msg := "interrupted"
		var ie interruptedError
		if errors.As(err, &ie) {
			msg = ie.msg
		}
		fmt.Fprintln(stderr, "certify:", msg)
		return 130
	}
	fmt.Fprintln(stderr, "certify:", err)
	var ie inputError
	if errors.As(err, &ie) {
		return 2
	}
	return 1
}
