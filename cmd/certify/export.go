package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/rundir"
)

// exportCmd writes a self-contained copy of a run directory: model.json,
// init/final checkpoints and config.json as they are, and the evaluation data
// (the first N examples) as data.safetensors, so another tool — PyTorch,
// tools/torchref/torchref.py — evaluates exactly the examples certify does.
func exportCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	runDir := fs.String("run", "", "run directory to export (required)")
	var examples examplesFlag
	fs.Var(&examples, "examples", "keep the first `N` evaluation examples; 0: every example the run has; unset: those certify --run evaluates by default")
	out := fs.String("out", "", "directory to write (required; must not exist)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *runDir == "" || *out == "" {
		return badInputf("export: --run and --out are required")
	}
	if _, err := os.Stat(*out); err == nil {
		return badInputf("export: %s exists", *out)
	}
	run, err := rundir.Read(*runDir, examples.load())
	if err != nil {
		return badInput(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"model.json", "init.safetensors", "final.safetensors", "config.json"} {
		b, err := os.ReadFile(filepath.Join(*runDir, name))
		if err != nil {
			if name == "config.json" && os.IsNotExist(err) {
				continue
			}
			return err
		}
		if err := atomicfile.Write(filepath.Join(*out, name), b); err != nil {
			return err
		}
	}
	if err := rundir.WriteDataFrom(filepath.Join(*out, "data.safetensors"), run.X, run.Targets, run.DataOrigin); err != nil {
		return err
	}
	n, _ := run.X.Dims()
	fmt.Fprintf(stdout, "exported %s with %d examples (%s) to %s\n", *runDir, n, run.DataSource, *out)
	return nil
}
