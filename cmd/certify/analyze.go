package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/presentation"
	"github.com/certify-mli/certify/rundir"
)

type analyzeFlags struct {
	run      string
	examples examplesFlag
	out      string
	opt      certify.Options
	json     bool
	quiet    bool
	chunk    int
	workers  int
	noFigs   bool
	noCert   bool
	bn       string
	bnRef    int
	prec     string
	variant  variantFlags
	// fresh ignores a saved checkpoint; checkpointEvery is the least wall
	// time between two saves of the searches' state (checkpoint.go)
	fresh           bool
	checkpointEvery time.Duration
	// sweepPoint is set by certify sweep: the grid's analysis flags define
	// the point's own report, so even --bn recompute writes certificate.json.
	sweepPoint bool
}

func newAnalyzeFlagSet(af *analyzeFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("certify", flag.ContinueOnError)
	fs.StringVar(&af.run, "run", "", "run directory to analyse (RUN_FORMAT.md)")
	fs.Var(&af.examples, "examples", "evaluate the first `N` examples; 0: every example the run has (all of data.safetensors, or all the training examples config.json's run trained on); unset: all of data.safetensors, or the first 5000 training examples (at most config.json's data.limit). Examples beyond those the run trained on are labelled so in the report")
	fs.StringVar(&af.out, "out", "", "write the report, figures and summary.tex into this directory instead of the run directory (which is then only read)")
	fs.IntVar(&af.opt.Alphas, "alphas", 50, "number of equally spaced α in [0,1], both ends included, of the report's grid")
	fs.Float64Var(&af.opt.Tolerance, "tolerance", 0, "largest rise Δ still called monotone (the paper's MNIST tables used 1e-3)")
	fs.Float64Var(&af.opt.GaussTol, "gauss-tol", 1e-4, "absolute tolerance on the mean per-example Gauss length (radians)")
	fs.Float64Var(&af.opt.GaussRelTol, "gauss-rel-tol", 1e-3, "relative tolerance on the mean per-example Gauss length")
	fs.IntVar(&af.opt.GaussMaxIntervals, "gauss-max-intervals", 4096, "finest grid of the corner-aware Gauss length (intervals on [0,1]); it bounds the first grid too (256 intervals raised to an even multiple of --alphas − 1, lowered to the largest such multiple at most this, with a note in the report); at least the smallest even multiple of --alphas − 1")
	fs.BoolVar(&af.opt.NoGeometry, "no-geometry", false, "skip the output path's geometry (corner-aware Gauss length, arc length, continuous Δ, Theorems A/B), null in the report; the grid, the trapezoid Gauss length and the certificate remain (for nets where the kinks make the Gauss length the dearest phase)")
	fs.BoolVar(&af.opt.LossOnly, "loss-only", false, "compute only the loss, L′ and accuracy on the grid, and the paper's trapezoid Gauss length from the same passes (no corner-aware Gauss length, no continuous Δ, no Theorems A/B, no certificate)")
	fs.IntVar(&af.workers, "workers", 0, "chunks of examples evaluated at once (0: one per core); a sweep with --jobs N may set 1. The certificate and accuracy-bound phases evaluate one leaf per core, each with one OpenBLAS thread (SerialProducts), whatever OPENBLAS_NUM_THREADS says; the other phases use OpenBLAS's thread count")
	fs.IntVar(&af.chunk, "chunk", 1000, "examples evaluated together (memory grows with it)")
	fs.BoolVar(&af.json, "json", false, "print the report as JSON on stdout instead of the summary, and write nothing (with --out DIR: also write it there)")
	fs.BoolVar(&af.quiet, "quiet", false, "print nothing but errors")
	fs.BoolVar(&af.noFigs, "no-figures", false, "do not draw the PNG figures")
	fs.BoolVar(&af.noCert, "no-certificate", false, "skip the rigorous certificate (THEORY.md §7); the verdict is then the grid's")
	fs.IntVar(&af.opt.MaxIntervals, "max-intervals", 4096, "certificate budget: largest number of leaf α-intervals")
	fs.IntVar(&af.opt.ExampleIntervals, "example-intervals", 32, "mse runs: per-example certificate on this many equal α-intervals, compared with Theorem B's per-example ranges (2 interval passes each; 0: skip)")
	fs.Float64Var(&af.opt.MinWidth, "min-width", 1e-9, "certificate: narrowest leaf α-interval still split")
	fs.Float64Var(&af.opt.DeltaTol, "delta-tol", certify.DefaultDeltaTol, "certificate: after the verdict, keep refining until the relative width of delta_bounds, (upper − lower)/max(|lower|, |upper|, tolerance), is at most this (or the budget ends); the report records it (certificate.delta_tol) and the width reached (certificate.delta_rel_width)")
	fs.IntVar(&af.opt.AccuracyIntervals, "accuracy-intervals", 512, "certified accuracy (accuracy_bounds, with the certificate): largest number of leaf α-intervals")
	// interpolate is the default: its endpoints are the evaluation-mode
	// networks θ0 and θT themselves (recompute changes L(0) and L(1)), it
	// does not depend on a choice of reference batch, and its certificate
	// is tighter (recompute's statistics are enclosed over each α-interval).
	fs.StringVar(&af.bn, "bn", functionspace.BNInterpolate.String(), "BatchNorm along the line (THEORY.md §2): interpolate (running statistics affine in α, the evaluation-mode networks at both ends; certifiable) or recompute (statistics of a fixed reference batch at every α, differentiated exactly; certifiable, the statistics enclosed over each α-interval)")
	fs.IntVar(&af.bnRef, "bn-reference", functionspace.DefaultBNReference, "--bn recompute: the reference batch is the first N evaluation examples (all if fewer); biased variance, as training-mode normalisation")
	fs.StringVar(&af.prec, "precision", functionspace.Float64.String(), "floating-point format of the layer passes: float64 or float32 (half the memory of the jets and the first-layer cache; the loss, sums over examples and the certificate stay float64; the grid verdict allows float32's rounding and settles close calls with a few float64 passes)")
	fs.BoolVar(&af.fresh, "fresh", false, "start the certificate and accuracy-bound searches over, ignoring the state an interrupted run of the same command saved in "+checkpointDirName+"/ next to the report (without it, that state is resumed from when its inputs, settings and program version match)")
	fs.DurationVar(&af.checkpointEvery, "save-state-every", certify.DefaultCheckpointEvery, "least wall time between two saves of the certificate's and accuracy bounds' search state into "+checkpointDirName+"/ next to the report (it is also saved when interrupted, and removed once the report is written)")
	addVariantFlags(fs, &af.variant, &af.opt)
	return fs
}

// check refuses flag values that have no meaning, before any work.
func (af *analyzeFlags) check() error {
	o := af.opt
	switch {
	case o.Alphas < 2:
		return badInputf("--alphas %d: the grid needs at least 2 points (0 and 1)", o.Alphas)
	case math.IsNaN(o.Tolerance) || o.Tolerance < 0 || math.IsInf(o.Tolerance, 0):
		return badInputf("--tolerance %v: want a finite number ≥ 0", o.Tolerance)
	case af.examples.n < 0:
		return badInputf("--examples %d: want 0 (every example the run has) or a positive count", af.examples.n)
	case af.chunk <= 0:
		return badInputf("--chunk %d: want a positive number of examples", af.chunk)
	case o.LossOnly && o.NoGeometry:
		return badInputf("--no-geometry with --loss-only: --loss-only already skips the geometry (and the certificate); give one")
	case af.checkpointEvery < 0:
		return badInputf("--save-state-every %v: want a positive duration, e.g. 60s (0: the default, %v)", af.checkpointEvery, certify.DefaultCheckpointEvery)
	case af.workers < 0:
		return badInputf("--workers %d: want 0 (one per core) or a positive count", af.workers)
	case o.MaxIntervals < 1:
		return badInputf("--max-intervals %d: want a positive number of leaf α-intervals (the default is 4096)", o.MaxIntervals)
	case !(o.MinWidth > 0) || o.MinWidth >= 1:
		return badInputf("--min-width %v: want a leaf width in (0, 1) (the default is 1e-9)", o.MinWidth)
	case o.AccuracyIntervals < 1:
		return badInputf("--accuracy-intervals %d: want a positive number of leaf α-intervals (the default is 512)", o.AccuracyIntervals)
	case o.ExampleIntervals < 0:
		return badInputf("--example-intervals %d: want 0 (skip) or a positive number of α-intervals", o.ExampleIntervals)
	case !(o.DeltaTol > 0) || math.IsInf(o.DeltaTol, 0):
		return badInputf("--delta-tol %v: want a finite relative width > 0 (the default is %g)", o.DeltaTol, certify.DefaultDeltaTol)
	case !o.LossOnly && !o.NoGeometry && o.GaussMaxIntervals < certify.GaussFirstGridStep(o.Alphas):
		return badInputf("--gauss-max-intervals %d: the corner-aware Gauss length's grid holds the report's α and has an even number of intervals, so it needs at least %d (the smallest even multiple of --alphas − 1 = %d)", o.GaussMaxIntervals, certify.GaussFirstGridStep(o.Alphas), o.Alphas-1)
	case !(o.GaussTol > 0) || !(o.GaussRelTol > 0):
		return badInputf("--gauss-tol and --gauss-rel-tol must be positive")
	case af.prec != functionspace.Float64.String() && af.prec != functionspace.Float32.String():
		return badInputf("--precision %q: want float64 or float32", af.prec)
	case af.bn != functionspace.BNInterpolate.String() && af.bn != functionspace.BNRecompute.String():
		return badInputf("--bn %q: want %s or %s", af.bn, functionspace.BNInterpolate, functionspace.BNRecompute)
	case af.bnRef < 0 || (af.bn == functionspace.BNRecompute.String() && af.bnRef == 1):
		return badInputf("--bn-reference %d: the reference batch of --bn recompute needs at least 2 examples", af.bnRef)
	}
	return nil
}

func analyzeCmd(ctx context.Context, args []string) error {
	var af analyzeFlags
	if err := parseFlags(newAnalyzeFlagSet(&af), args); err != nil {
		return err
	}
	if af.run == "" {
		return badInputf("--run DIR is required (or a command: train, demo, sweep, …; see certify --help)")
	}
	if err := af.check(); err != nil {
		return err
	}
	r, err := analyze(ctx, af, append([]string{"certify"}, args...))
	if err != nil {
		return err
	}
	if af.json {
		b, err := r.JSON()
		if err != nil {
			return err
		}
		stdout.Write(b)
	} else if !af.quiet {
		printSummary(stdout, af.run, r)
	}
	return nil
}

// missingDirs lists dir and those of its parents that do not exist yet,
// deepest first: the directories os.MkdirAll(dir) would create. Empty for
// dir "".
func missingDirs(dir string) []string {
	var ds []string
	for d := filepath.Clean(dir); dir != ""; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || !os.IsNotExist(err) {
			break
		}
		ds = append(ds, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	return ds
}

// analyze loads the run, analyses it, and writes certificate.json and the
// figures into the run directory — or, for settings other than the
// default analysis's, into DIR/variants/NAME/ (reportLocation); with --out
// into that directory; with --json alone nowhere. A report made with other
// settings is never replaced: that is refused before any work.
func analyze(ctx context.Context, af analyzeFlags, command []string) (*certify.Report, error) {
	run, err := rundir.Read(af.run, af.examples.load())
	if err != nil {
		return nil, badInput(err)
	}
	start, end, err := applyVariant(run, af.variant, &af.opt)
	if err != nil {
		return nil, err
	}
	p, err := functionspace.New(run.Model, start, end, run.X, run.Targets, functionspace.Options{Chunk: af.chunk, Workers: af.workers, BNPolicy: functionspace.BNPolicy(af.bn), BNReference: af.bnRef, Precision: functionspace.Precision(af.prec)})
	if err != nil {
		return nil, badInput(err)
	}
	af.opt.Certificate = !af.noCert && !af.opt.LossOnly
	// Where the report goes, decided (and checked writable) before the work.
	plan := &certify.Report{Options: af.opt.WithDefaults(), BNPolicy: p.BNPolicy().String(), Precision: p.Precision().String(), Examples: p.N}
	plan.Options.Examples, plan.Options.BNReference = p.N, p.BNReference()
	write := !af.json || af.out != ""
	var outDir, reportFile string
	created := missingDirs(af.out) // --out directories this run makes, removed again if it fails before writing
	if write {
		if outDir, reportFile, err = reportDestination(af, run, plan); err != nil {
			return nil, err
		}
	}
	// The searches' checkpoints live next to the report (checkpoint.go),
	// under a key of everything the report depends on.
	ckOpt := plan.Options
	ckOpt.Labels = af.opt.Labels
	ck, err := analysisCheckpoint(af, p, ckOpt, outDir)
	if err != nil {
		return nil, err
	}
	if err := ck.Verify(af.opt); err != nil { // a corrupt or foreign file is refused before the grid, not after it
		return nil, badInput(err)
	}
	af.opt.Checkpoint = ck
	boundHeap() // inputs and first-layer cache are in memory: keep the rest near them
	bar := progress.New(os.Stderr, "analyse")
	if af.quiet || af.json {
		bar = nil
	}
	defer bar.Done()
	// notices (a checkpoint resumed or ignored, the verdict decided) get a
	// line of their own, not the bar's
	notice := func(msg string) { bar.Notice(stderr, msg) }
	if ck != nil {
		ck.Notify = notice
	}
	if !af.quiet { // the verdict of a long certificate is known before its Δ refinement ends
		af.opt.Notify = notice
	}
	bar.SetPlan(analysisPlan(af.opt.WithDefaults(), p.Model.Spec.Loss, write && !af.noFigs)...)
	af.opt.Progress = func(stage string, done, total int) {
		ph, total := analysisPhase(stage, total)
		bar.SetPhase(ph)
		bar.Update(done, total, "")
	}
	r, err := certify.Analyze(ctx, p, af.opt)
	if err != nil {
		bar.Stop() // no "done" line before the error or the interruption
	}
	if err != nil && write && filepath.Base(filepath.Dir(outDir)) == "variants" {
		os.Remove(outDir) // made for this report, still empty
		os.Remove(filepath.Dir(outDir))
	}
	if err != nil && write {
		for _, d := range created {
			os.Remove(d) // only if still empty: never a directory that holds anything
		}
	}
	if errors.Is(err, context.Canceled) {
		if savedCheckpoint(ck) {
			return nil, interrupted(err, "interrupted while analysing %s; no report written, the search state is saved in %s: run the same command again to resume (--fresh to start over)", af.run, ck.Dir)
		}
		return nil, interrupted(err, "interrupted while analysing %s; nothing written", af.run)
	}
	var cerr *certify.CheckpointError
	if errors.As(err, &cerr) {
		return nil, badInput(err)
	}
	if err != nil {
		return nil, err
	}
	r.Data = run.DataSource
	if note := beyondTraining(run); note != "" {
		r.Data += " — " + note
		r.Notes = append(r.Notes, "examples: "+note)
	}
	r.Command = command
	if r.Import, err = readImportSummary(af.run); err != nil {
		return nil, badInput(err)
	}
	r.Notes = append(r.Notes, run.Notes...) // e.g. a wrapper's key prefix stripped while loading
	if note := bnNoEffect(af.bn, p.BNPolicy()); note != "" {
		r.Notes = append(r.Notes, note)
	}
	r.BLAS = setupBLAS().Describe()
	if !write {
		return r, nil
	}
	r.File = reportFile
	if err := r.Write(reportFile); err != nil {
		return nil, err
	}
	if !af.noFigs {
		bar.SetPhase(progress.Phase{Name: "figures"})
		bar.Update(0, 2, "")
		if err := presentation.WriteFigures(outDir, r); err != nil {
			return nil, fmt.Errorf("figures: %w", err)
		}
		bar.Update(1, 2, "")
		if err := presentation.WriteCertificateFigure(outDir, r); err != nil {
			return nil, fmt.Errorf("figures: %w", err)
		}
		bar.Update(2, 2, "")
	}
	if err := presentation.WriteSummary(outDir, r); err != nil {
		return nil, err
	}
	if ck != nil { // the report is written: the searches' state is no longer needed
		if err := certify.RemoveCheckpoints(ck.Dir); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// bnNoEffect is the note for --bn recompute on a model without BatchNorm
// (the path's policy got is BNNone): the option changes nothing, which a
// user who asked for it should be told rather than left to infer from a
// missing "BatchNorm" line. "" otherwise.
func bnNoEffect(asked string, got functionspace.BNPolicy) string {
	if asked != functionspace.BNRecompute.String() || got != functionspace.BNNone {
		return ""
	}
	return "bn: --bn recompute has no effect: the model has no BatchNorm layer (bn_policy none)"
}

func printSummary(w io.Writer, dir string, r *certify.Report) {
	last := len(r.Loss) - 1
	kind := r.LossKind
	if r.LossReduction == "sum" {
		kind += ", summed over outputs"
	}
	fmt.Fprintf(w, "run %s (%s, %d examples, %s)\n", dir, kind, r.Examples, r.Data)
	if im := r.Import; im != nil {
		fmt.Fprintf(w, "  imported           from %s files; the line interpolates %s (import.json)\n", im.Format, im.Parameterisation)
	}
	fmt.Fprintf(w, "  verdict            %s (tolerance %g)\n", r.Verdict, r.Tolerance)
	if r.BNPolicy != "" && r.BNPolicy != "none" {
		fmt.Fprintf(w, "  BatchNorm          %s along the line (--bn; THEORY.md §2)\n", r.BNPolicy)
	}
	if r.Precision == functionspace.Float32.String() {
		fmt.Fprintf(w, "  precision          float32 layer passes (the loss and sums over examples in float64; a certificate always is)\n")
		if cc := r.Float32CloseCalls; cc != nil {
			fmt.Fprintf(w, "  close calls        %s within float32 rounding of the tolerance: %d settled by float64 passes at %d α, %d unsettled\n", plural(cc.Pairs, "grid pair"), cc.Settled, cc.Alphas, cc.Unsettled)
		}
	}
	fmt.Fprintf(w, "  L(0) → L(1)        %s → %s   accuracy %.2f%% → %.2f%%\n", fnum("%.6g", r.Loss[0]), fnum("%.6g", r.Loss[last]), 100*r.Accuracy[0], 100*r.Accuracy[last])
	fmt.Fprintf(w, "  %-19s%s", fmt.Sprintf("Δ on %d α", len(r.Alphas)), fnum("%.4g", r.Delta))
	if len(r.Bumps) > 0 {
		fmt.Fprintf(w, " (%d bump", len(r.Bumps))
		if len(r.Bumps) > 1 {
			fmt.Fprint(w, "s")
		}
		b := r.Bumps[0]
		fmt.Fprintf(w, "; first α ∈ [%.3f, %.3f], height %.4g)", b.Start, b.End, b.Height)
	}
	fmt.Fprintln(w)
	if r.Options.NoGeometry {
		fmt.Fprintf(w, "  Δ continuous       null (--no-geometry: not computed)\n")
	} else if !r.Options.LossOnly {
		fmt.Fprintf(w, "  Δ continuous       %s\n", fnum("%.4g", r.DeltaContinuous))
	}
	if c := r.Certificate; c != nil {
		uns := fmt.Sprintf("%d unsettled", c.UnsettledCount)
		if c.Verdict == certify.CertifiedMonotone && c.UnsettledCount > 0 {
			// unsettled: no proof that L′ ≤ 0 there; their total rise is
			// within the tolerance, so the verdict stands
			uns += " (L′ ≤ 0 not proven there, but their total rise is ≤ the tolerance)"
		}
		// as many digits as --delta-tol's relative width shows; a width
		// other than the default's is said with the width reached
		width := ""
		if c.DeltaTol != certify.DefaultDeltaTol {
			if s := presentation.DeltaBoundsWidth(c); s != "" {
				width = " (" + s + ")"
			}
		}
		fmt.Fprintf(w, "  certificate        Δ ∈ [%s, %s]%s, %d leaves, %s, %.1fs\n", presentation.FormatDeltaBound(c.DeltaLower, c, false), presentation.FormatDeltaBound(c.DeltaUpper, c, true), width, c.Leaves, uns, c.Seconds)
		if c.Reason != "" {
			fmt.Fprintf(w, "  inconclusive       %s\n", c.Reason)
		}
	}
	if r.Witness != nil {
		b, a := presentation.AlphaPair(r.Witness.Beta, r.Witness.Alpha)
		fmt.Fprintf(w, "  witness            L(%s) − L(%s) = %.4g\n", b, a, r.Witness.Rise)
	}
	stackedNote := ""
	if c := r.GaussLengthStackedConverged; c != nil && !*c {
		stackedNote = " (not converged on the finest grid)"
		if kinkedRun(dir) {
			stackedNote = " (not converged on the finest grid: more kinks than grid intervals)"
		}
	}
	if r.Options.LossOnly {
		fmt.Fprintf(w, "  Gauss length       paper's trapezoid on the grid: mean %s, stacked %s rad (--loss-only: nothing else computed)\n", fnum("%.4f", r.GaussLengthMeanTrapezoid), fnum("%.4f", r.GaussLengthStackedTrapezoid))
	} else if r.Options.NoGeometry {
		fmt.Fprintf(w, "  Gauss length       paper's trapezoid on the grid: mean %s, stacked %s rad (--no-geometry: the corner-aware one not computed)\n", fnum("%.4f", r.GaussLengthMeanTrapezoid), fnum("%.4f", r.GaussLengthStackedTrapezoid))
	} else if math.IsNaN(r.GaussLengthMean) {
		fmt.Fprintf(w, "  Gauss length       null (not computed; see the report's notes)\n")
	} else {
		fmt.Fprintf(w, "  Gauss length       mean %.4f ± %.1g rad (paper's trapezoid: %.4f), stacked %.4f rad%s\n", r.GaussLengthMean, r.GaussLengthMeanError, r.GaussLengthMeanTrapezoid, r.GaussLengthStacked, stackedNote)
	}
	if th := r.Conditions.Theorems; th != nil && th.Applies {
		fmt.Fprintf(w, "  Theorem A          %s\n", th.TheoremAConclusion)
		fmt.Fprintf(w, "  Theorem B          %s\n", th.TheoremBConclusion)
		if c := r.Conditions.TheoremBExamples; c != "" {
			fmt.Fprintf(w, "  per example        %s\n", c)
		}
	}
	if b := r.Conditions.BilinearModel; b != nil && b.Applies {
		fmt.Fprintf(w, "  bilinear model     %s\n", b.Statement)
	}
	if a := r.Conditions.AffineModel; a != nil && a.Applies {
		fmt.Fprintf(w, "  affine model       %s\n", a.Statement)
	}
	printVariant(w, r)
	fmt.Fprintf(w, "  weight distance    %.4g (normalised %.4g)\n", r.WeightDistance, r.WeightDistanceNormalized)
	if r.BLAS != "" {
		fmt.Fprintf(w, "  BLAS               %s\n", r.BLAS)
	}
	for _, n := range r.Notes { // loading (prefix stripped, …), examples, overflow
		fmt.Fprintf(w, "  note               %s\n", n)
	}
	if r.File == "" {
		fmt.Fprintf(w, "  report             not written (%.1fs)\n", r.Seconds)
	} else {
		fmt.Fprintf(w, "  report             %s (%.1fs)\n", r.File, r.Seconds)
	}
}

// fnum formats x with format, or is "null" when x is not finite (the
// report's null, explained in its notes).
func fnum(format string, x float64) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "null"
	}
	return fmt.Sprintf(format, x)
}

// plural is "1 grid pair", "2 grid pairs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// kinkedRun reports whether the run in dir (its model.json) has a layer
// with corners at any depth (nn.Model.MayKink), whose kinks are what keeps
// the stacked Gauss length from converging on a grid; false when model.json
// cannot be read or built.
func kinkedRun(dir string) bool {
	s, err := nn.ReadSpec(filepath.Join(dir, "model.json"))
	if err != nil {
		return false
	}
	m, err := nn.Build(s)
	return err == nil && m.MayKink()
}
