package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/presentation"
)

// theoryCmd is `certify theory RUNS_DIR --out DIR`: the theory table and the
// Theorem B coverage figure of the mse runs found under RUNS_DIR
// (presentation.TheoryTable, presentation.TheoryCoverageFigure; THEORY.md §6, §11).
func theoryCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("theory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.String("rows", "bottleneck,optim", "comma-separated config.json keys forming the rows (nested as data.name; derived: depth, width, bottleneck)")
	out := fs.String("out", "", "directory to write theory.md, theory.csv and theorem_b_coverage.{png,pdf} into, created if missing (required)")
	skipBad := fs.Bool("skip-bad", false, "list and skip run directories with a missing or malformed certificate.json or config.json instead of failing")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: certify theory RUNS_DIR --out DIR [flags]\n\n"+
			"Summarises, for the mse runs found under RUNS_DIR (analysed with their geometry; the\n"+
			"certificate columns need --example-intervals > 0), per row: the non-monotone runs, mean Δ,\n"+
			"mean Gauss length, and the fractions of examples proven decreasing on [0, 1] by Theorem B\n"+
			"alone and by the per-example certificate (THEORY.md §6, §11); and draws those fractions\n"+
			"against the bottleneck width h (theorem_b_coverage).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return badInputf("theory: --out DIR is required")
	}
	runs, err := loadStudy(dir, *skipBad)
	if err != nil {
		return err
	}
	keys := splitKeys(*rows)
	t, err := presentation.TheoryTable(runs, keys)
	if err != nil {
		return badInput(err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, f := range []struct{ name, format string }{{"theory.md", "markdown"}, {"theory.csv", "csv"}} {
		var buf bytes.Buffer
		if err := presentation.WriteTheoryTable(&buf, keys, t, f.format); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(*out, f.name), buf.Bytes()); err != nil {
			return err
		}
	}
	for _, f := range []string{"png", "pdf"} {
		b, err := presentation.TheoryCoverageFigure(runs, f)
		if err != nil {
			return badInput(err)
		}
		if err := atomicfile.Write(filepath.Join(*out, "theorem_b_coverage."+f), b); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s/theory.md, theory.csv, theorem_b_coverage.png, .pdf (%d runs)\n", *out, len(runs))
	return nil
}
