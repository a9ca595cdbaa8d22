package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path"
	"strings"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/presentation"
)

// studyFlags are the flags shared by `certify table` and `certify figures`.
type studyFlags struct {
	threshold    optionalFloat
	maxTrainLoss optionalFloat
	skipBad      bool
}

func (s *studyFlags) register(fs *flag.FlagSet) {
	fs.Var(&s.threshold, "threshold", "`DELTA` threshold: a run is non-monotonic when its grid Δ exceeds it or its verdict is non_monotone at a tolerance ≥ it (default: each report's own tolerance, i.e. its verdict)")
	fs.Var(&s.maxTrainLoss, "max-train-loss", "keep only runs whose config.json train_loss is ≤ `LOSS` (runs without train_loss are left out)")
	fs.BoolVar(&s.skipBad, "skip-bad", false, "list and skip run directories with a missing or malformed certificate.json or config.json instead of failing")
}

func (s *studyFlags) filter() certify.StudyFilter {
	return certify.StudyFilter{Threshold: s.threshold.ptr(), MaxTrainLoss: s.maxTrainLoss.ptr()}
}

// optionalFloat is a float flag that remembers whether it was set.
type optionalFloat struct {
	v   float64
	set bool
}

func (o *optionalFloat) String() string {
	if o == nil || !o.set {
		return ""
	}
	return fmt.Sprint(o.v)
}

func (o *optionalFloat) Set(s string) error {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("want a finite number ≥ 0, found %q", s)
	}
	o.v, o.set = v, true
	return nil
}

func (o *optionalFloat) ptr() *float64 {
	if !o.set {
		return nil
	}
	v := o.v
	return &v
}

// parseWithDir parses flags that may come before or after the one
// positional argument RUNS_DIR.
func parseWithDir(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", errHelp
			}
			return "", badInput(err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		return "", badInputf("%s: want one RUNS_DIR argument, found %d (%s)", fs.Name(), len(pos), strings.Join(pos, " "))
	}
	return pos[0], nil
}

// loadStudy reads the runs under dir, listing skipped ones on stderr.
func loadStudy(dir string, skipBad bool) ([]certify.StudyRun, error) {
	return loadStudyWith(certify.LoadStudy, dir, skipBad)
}

// loadStudyWith is loadStudy with load (certify.LoadStudy or
// certify.LoadStudyVariants) reading the runs.
func loadStudyWith(load func(string, bool) ([]certify.StudyRun, []certify.BadRun, error), dir string, skipBad bool) ([]certify.StudyRun, error) {
	runs, skipped, err := load(dir, skipBad)
	for _, b := range skipped {
		fmt.Fprintf(stderr, "certify: skipped %s: %v\n", b.Path, b.Err)
	}
	if err != nil {
		return nil, badInput(err)
	}
	return runs, nil
}

func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}

// tableCmd is `certify table RUNS_DIR`: the study table of the runs found
// under RUNS_DIR (presentation.BuildTable).
func tableCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf studyFlags
	sf.register(fs)
	rows := fs.String("rows", "optim", "comma-separated config.json keys forming the rows (nested as data.name; derived: depth, width, bottleneck, and with --variants variant, bn)")
	cols := fs.String("cols", "lr", "comma-separated config.json keys forming the columns")
	variants := fs.Bool("variants", false, "also count each run's analysis variants (RUN/variants/NAME/variant.json, e.g. from certify --run RUN --bn recompute) as runs of their own, with the run's config.json; the keys variant (NAME, or run for the run's own certificate.json) and bn (the report's BatchNorm policy) tell them apart, e.g. --cols bn")
	variantGlob := fs.String("variant", "", "with --variants (implied): count only the variants whose NAME matches this shell `GLOB` (e.g. 'bn=recompute_examples=25_*'), beside every run's own report")
	format := fs.String("format", "latex", "output format: latex (booktabs), markdown or csv")
	out := fs.String("out", "", "write the table to FILE, atomically (default: stdout)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: certify table RUNS_DIR [flags]\n\n"+
			"Aggregates the runs found under RUNS_DIR (every directory holding certificate.json)\n"+
			"into a table: per cell, the fraction of decided runs that are non-monotonic (their number),\n"+
			"the mean grid Δ over them, and the counts of certified monotone / monotone on the grid only /\n"+
			"inconclusive runs (inconclusive runs are never counted as monotone).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	switch *format {
	case presentation.FormatLaTeX, presentation.FormatMarkdown, presentation.FormatCSV:
	default:
		return badInputf("table: --format: want latex, markdown or csv, found %q", *format)
	}
	if lmcOnly(dir) {
		if err := lmcOnlyFlags(fs, "format", "out"); err != nil {
			return err
		}
		return writeLMCTable([]string{dir}, *format, *out)
	}
	load := certify.LoadStudy
	if *variants || *variantGlob != "" {
		load = certify.LoadStudyVariants
	}
	if _, err := path.Match(*variantGlob, ""); err != nil {
		return badInputf("table: --variant %q: %v", *variantGlob, err)
	}
	runs, err := loadStudyWith(load, dir, sf.skipBad)
	if err != nil {
		return err
	}
	if *variantGlob != "" {
		kept := runs[:0]
		for _, r := range runs {
			if ok, _ := path.Match(*variantGlob, r.Variant); r.Variant == "" || ok {
				kept = append(kept, r)
			}
		}
		runs = kept
	}
	t, err := presentation.BuildTable(runs, presentation.TableSpec{Rows: splitKeys(*rows), Cols: splitKeys(*cols), StudyFilter: sf.filter()})
	if err != nil {
		return badInputf("table: %v", err)
	}
	var buf bytes.Buffer
	if err := t.Write(&buf, *format); err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	return atomicfile.Write(*out, buf.Bytes())
}

// figuresCmd is `certify figures RUNS_DIR --out DIR`: the study figures of
// the runs found under RUNS_DIR (presentation.WriteStudyFigures).
func figuresCmd(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("figures", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var sf studyFlags
	sf.register(fs)
	out := fs.String("out", "", "directory to write the figures into, created if missing (required)")
	paper := fs.Bool("paper-gauss", false, "use gauss_length_mean_trapezoid (the paper's trapezoid rule, no corners) instead of gauss_length_mean")
	heatX := fs.String("heat-x", "lr", "config.json key of the heatmap's columns")
	heatY := fs.String("heat-y", "depth", "config.json key of the heatmap's rows (e.g. depth or width)")
	formats := fs.String("format", "png,pdf", "comma-separated formats: png, svg, pdf")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: certify figures RUNS_DIR --out DIR [flags]\n\n"+
			"Draws, for the runs found under RUNS_DIR: %s (Δ against normalised weight distance),\n"+
			"%s (Δ against mean Gauss length), %s (log Gauss length against log distance with\n"+
			"its least-squares line, slope and R²) and %s (mean Δ over --heat-x × --heat-y).\n\nFlags:\n",
			presentation.FigureDeltaDistance, presentation.FigureDeltaGauss, presentation.FigureGaussDistance, presentation.FigureDeltaHeatmap)
		fs.PrintDefaults()
	}
	dir, err := parseWithDir(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return badInputf("figures: --out DIR is required")
	}
	fmts := splitKeys(*formats)
	for _, f := range fmts {
		if f != "png" && f != "svg" && f != "pdf" {
			return badInputf("figures: --format: want png, svg or pdf, found %q", f)
		}
	}
	if lmcOnly(dir) {
		if err := lmcOnlyFlags(fs, "format", "out"); err != nil {
			return err
		}
		return lmcFigures(dir, *out, fmts)
	}
	runs, err := loadStudy(dir, sf.skipBad)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	spec := presentation.StudyFigureSpec{PaperGauss: *paper, HeatX: *heatX, HeatY: *heatY, Formats: fmts, StudyFilter: sf.filter(), Runs: dir}
	// The default heatmap keys (lr, depth) may not exist in these runs:
	// then the other figures are drawn and the heatmap skipped with a
	// warning. A key named with --heat-x/--heat-y must exist (a typo).
	skipped, chosen := 0, false
	fs.Visit(func(f *flag.Flag) { chosen = chosen || f.Name == "heat-x" || f.Name == "heat-y" })
	if !chosen {
		spec.SkipHeatmap = func(reason string) {
			skipped = len(fmts)
			fmt.Fprintf(stderr, "certify: warning: %s not drawn: %s; choose its keys with --heat-x and --heat-y\n", presentation.FigureDeltaHeatmap, reason)
		}
	}
	if err := presentation.WriteStudyFigures(*out, runs, spec); err != nil {
		return badInputf("figures: %v", err)
	}
	kept, _, _ := spec.Apply(runs)
	if fit, err := presentation.FitGaussDistance(kept, *paper); err == nil {
		fmt.Fprintf(stdout, "Gauss length ∝ distance^%.3g (R² = %.3g, %d runs)\n", fit.Slope, fit.RSquared, fit.N)
	}
	fmt.Fprintf(stdout, "wrote %d figures for %d runs to %s\n", 4*len(fmts)-skipped, len(kept), *out)
	return nil
}
