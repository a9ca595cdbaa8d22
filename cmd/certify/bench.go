package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
)

// benchDefaultTrain is the run the benchmark builds with --build (issue 7): a
// 784-1024-1024-10 ReLU MLP, one epoch of SGD with momentum on the first
// 10,000 MNIST training images.
var benchDefaultTrain = []string{"--data", "mnist", "--arch", "784-1024-1024-10", "--act", "relu",
	"--optim", "sgd", "--lr", "0.05", "--momentum", "0.9", "--epochs", "1", "--limit", "10000", "--seed", "1", "--quiet"}

// benchResult is what `certify bench --json` prints and bench/results keeps.
type benchResult struct {
	Run       string `json:"run"`        // the run directory timed (an export of SourceRun's data when it had none)
	SourceRun string `json:"source_run"` // the run directory given (--run, or the one --build made)
	Examples  int    `json:"examples"`
	Alphas    int    `json:"alphas"`

	Backend     string `json:"blas_backend"`
	BackendNote string `json:"blas_note"`
	Kernel      string `json:"blas_kernel"`
	BLASSource  string `json:"blas_source"` // where the library came from (Backend.Source; "" for pure Go)
	BLASConfig  string `json:"blas_config"`
	BLASThreads int    `json:"blas_threads"`
	Workers     int    `json:"workers"`
	Chunk       int    `json:"chunk"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	Precision   string `json:"precision"`
	// GridOnly is --grid-only: the timed analysis was the grid's passes
	// alone (gridAnalysis), not the whole --loss-only analysis.
	GridOnly      bool    `json:"grid_only"`
	GemmGFLOPS    float64 `json:"gemm_gflops"`     // the hot product alone
	GemmGFLOPSGo  float64 `json:"gemm_gflops_go"`  // gonum's pure Go on the same product
	SgemmGFLOPS   float64 `json:"sgemm_gflops"`    // the hot product in float32 (--precision float32)
	SgemmGFLOPSGo float64 `json:"sgemm_gflops_go"` // gonum's pure Go Sgemm on it
	AnalysisGFLOP float64 `json:"analysis_gflop"`  // dense-layer products of the analysis
	AnalysisRate  float64 `json:"analysis_gflops"` // AnalysisGFLOP / Seconds

	SetupSeconds   float64 `json:"setup_seconds"`   // functionspace.New (first-layer cache)
	AnalyzeSeconds float64 `json:"analyze_seconds"` // certify.Analyze: --loss-only, or the full default analysis with --full
	Seconds        float64 `json:"seconds"`         // setup + analyze: compared with PyTorch
	CPUSeconds     float64 `json:"cpu_seconds"`     // user+system CPU of the process during it
	// GridSeconds and GridCPUSeconds are the part of AnalyzeSeconds and
	// CPUSeconds spent on the grid's passes (loss, accuracy, turning rates
	// at every α: the paper's method); the rest is what follows them, e.g.
	// the interval-arithmetic proof of a grid witness.
	GridSeconds    float64 `json:"grid_seconds"`
	GridCPUSeconds float64 `json:"grid_cpu_seconds"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"` // VmHWM of the process afterwards
	LossFirst      float64 `json:"loss_first"`     // L(0)
	LossLast       float64 `json:"loss_last"`      // L(1)
	GaussMeanTrap  float64 `json:"gauss_length_mean_trapezoid"`
	GaussStackTrap float64 `json:"gauss_length_stacked_trapezoid"`
	AccuracyLast   float64 `json:"accuracy_last"`

	// LoadAverage is /proc/loadavg's 1-minute load before and after the
	// timed analysis: above the core count, other processes competed.
	LoadAverage [2]float64 `json:"load_average"`

	Torch *torchSide `json:"torch,omitempty"`

	// Full is set by --full: the timed analysis was the full default one.
	Full *fullSide `json:"full,omitempty"`

	// Memory is the --memory measurement: `certify --run` on all the
	// requested examples under /usr/bin/time -v.
	Memory *memorySide `json:"memory,omitempty"`
}

type torchSide struct {
	Version string `json:"version"`
	BLAS    string `json:"blas"`
	Threads int    `json:"threads"`
	// OnePass is torchref's --one-pass: the loss and accuracy are the
	// nested jvp's own forward values and no separate no-grad loss pass
	// runs (LossSeconds 0), one nested jvp per α as a PyTorch user would
	// compute the paper's method. Chunk is the examples per jvp.
	OnePass      bool    `json:"one_pass"`
	Chunk        int     `json:"chunk"`
	LossSeconds  float64 `json:"loss_seconds"`
	GaussSeconds float64 `json:"gauss_seconds"`
	Seconds      float64 `json:"seconds"` // loss + gauss
	// ComputeCPUSeconds is the process CPU (user+system, all threads) of
	// torchref's passes alone, without the interpreter's start-up, torch's
	// import and the run's loading (null from a torchref that does not
	// report it); ComputeCPURatio is certify's analysis CPU over it.
	ComputeCPUSeconds *float64 `json:"compute_cpu_seconds"`
	ComputeCPURatio   *float64 `json:"compute_cpu_ratio"`
	// ProcessCPUSeconds is the user+system CPU time of the whole torchref
	// process (import, load and both passes); CPURatio is certify's
	// analysis CPU seconds over it. Under contention from other processes
	// CPU time tracks the work better than wall time.
	ProcessCPUSeconds float64 `json:"process_cpu_seconds"`
	CPURatio          float64 `json:"cpu_ratio"`
	Ratio             float64 `json:"ratio"` // certify seconds / torch seconds
	AlphaMaxDiff      float64 `json:"alpha_max_abs_diff"`
	LossMaxRel        float64 `json:"loss_max_rel_diff"`
	AccuracyDiffer    int     `json:"accuracy_differ"` // grid points whose accuracy differs
	AccuracyMaxDiff   float64 `json:"accuracy_max_abs_diff"`
	GaussMeanRel      float64 `json:"gauss_mean_rel_diff"`
	GaussStackRel     float64 `json:"gauss_stacked_rel_diff"`
	Agree             bool    `json:"agree"`
}

// benchFlags are the flags of `certify bench`.
type benchFlags struct {
	runDir       string
	build        bool
	cache        string
	examples     int
	alphas       int
	torch        bool
	backend      string
	threads      int
	workers      int
	chunk        int
	torchThreads int
	torchChunk   int
	python       string
	torchref     string
	gemm         bool
	jsonOut      bool
	out          string
	memory       int
	memoryAlphas int
	timeBin      string
	precision    string
	cpuprofile   string
	full         bool
	gridOnly     bool
	// tolerance is --tolerance: the largest rise Δ the full analysis still
	// calls monotone (certify --run's --tolerance; only with --full), and
	// toleranceSet says the flag was given.
	tolerance    float64
	toleranceSet bool
}

func newBenchFlagSet(bf *benchFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&bf.runDir, "run", "", "run directory to time; without data.safetensors it is exported with --examples first")
	fs.BoolVar(&bf.build, "build", false, "train the benchmark run (784-1024-1024-10 ReLU, 1 epoch SGD on 10,000 MNIST images) into --cache if it is not there, and use it")
	fs.StringVar(&bf.cache, "cache", filepath.Join("bench", "runs"), "directory for the built and exported runs")
	fs.IntVar(&bf.examples, "examples", 5000, "evaluation examples (the first N of the run's data)")
	fs.IntVar(&bf.alphas, "alphas", 50, "equally spaced α in [0,1], both ends included")
	fs.BoolVar(&bf.torch, "torch", false, "also run the PyTorch oracle (tools/torchref/torchref.py) on the same data and compare")
	fs.StringVar(&bf.backend, "backend", "", "BLAS backend: auto (OpenBLAS when the machine has it, else pure Go), openblas, go (gonum, pure Go) or a library file (default: $CERTIFY_BLAS, else auto)")
	fs.IntVar(&bf.threads, "threads", 0, "threads of one OpenBLAS product (0: OpenBLAS's default) in the grid, Gauss length and per-layer passes; the certificate and accuracy-bound phases (--full) use one OpenBLAS thread per worker whatever this says (they run one leaf per core, each with one thread: SerialProducts); PyTorch gets --torch-threads")
	fs.IntVar(&bf.workers, "workers", 0, "chunks evaluated concurrently (0: GOMAXPROCS)")
	fs.IntVar(&bf.chunk, "chunk", 1000, "examples evaluated together")
	fs.IntVar(&bf.torchThreads, "torch-threads", 2, "torch.set_num_threads for the PyTorch side")
	fs.IntVar(&bf.torchChunk, "torch-chunk", 0, "examples per nested jvp on the PyTorch side (0: all at once)")
	fs.StringVar(&bf.python, "python", "/usr/bin/python3", "Python with torch and functorch")
	fs.StringVar(&bf.torchref, "torchref", "", "path of torchref.py (default: tools/torchref/torchref.py found upwards from the working directory)")
	fs.BoolVar(&bf.gemm, "gemm", true, "measure the GFLOP/s of the hot matrix product on the chosen backend and on pure Go")
	fs.BoolVar(&bf.jsonOut, "json", false, "print the result as JSON")
	fs.StringVar(&bf.out, "out", "", "also write the JSON result to this file")
	fs.IntVar(&bf.memory, "memory", 0, "also measure the peak resident memory of certify --run on this many examples of the run's dataset (60000: all MNIST training images) under /usr/bin/time -v (0: skip)")
	fs.IntVar(&bf.memoryAlphas, "memory-alphas", 5, "grid points of the --memory run (its memory does not grow with them; its time does)")
	fs.StringVar(&bf.timeBin, "time", "/usr/bin/time", "GNU time, for --memory (Debian package time)")
	fs.StringVar(&bf.precision, "precision", functionspace.Float64.String(), "floating-point format of certify's layer passes (float64 or float32); with --torch, PyTorch runs in the same dtype and the check uses that precision's tolerances")
	fs.StringVar(&bf.cpuprofile, "cpuprofile", "", "write a CPU profile of the timed analysis to this file (go tool pprof -top FILE)")
	fs.BoolVar(&bf.full, "full", false, "time the full default analysis of certify --run (certificate, corner-aware Gauss length, continuous Δ, per-layer L′) instead of --loss-only; PyTorch's side stays the paper's method (loss and trapezoid Gauss length), compared on what both compute; --memory then runs the full analysis too")
	fs.Float64Var(&bf.tolerance, "tolerance", 0, "with --full: the largest rise Δ still called monotone, as certify --run's --tolerance (the paper's MNIST tables used 1e-3); the result records it (full.tolerance)")
	fs.BoolVar(&bf.gridOnly, "grid-only", false, "time the grid's passes alone (the paper's method: loss, accuracy and trapezoid Gauss lengths at the grid's α), not the rest of --loss-only's analysis (the interval proof of a witness the grid shows, whose cost does not grow with --alphas); not with --full")
	return fs
}

// check refuses flag values that have no meaning and finds the programs
// the flags need (torchref.py, Python, GNU time), before any work.
func (bf *benchFlags) check() error {
	if (bf.runDir == "") == !bf.build {
		return badInputf("bench: give exactly one of --run DIR and --build")
	}
	switch {
	case bf.examples <= 0:
		return badInputf("bench: --examples %d: want a positive number of examples", bf.examples)
	case bf.alphas < 2:
		return badInputf("bench: --alphas %d: the grid needs at least 2 points (0 and 1)", bf.alphas)
	case bf.chunk <= 0:
		return badInputf("bench: --chunk %d: want a positive number of examples", bf.chunk)
	case bf.workers < 0:
		return badInputf("bench: --workers %d: want 0 (one per core) or a positive count", bf.workers)
	case bf.gridOnly && bf.full:
		return badInputf("bench: --grid-only times the grid of the loss-only analysis; --full times the full one: give one")
	case bf.toleranceSet && !bf.full:
		return badInputf("bench: --tolerance %v: the tolerance decides the verdict of the full analysis only; give --full (the loss-only analysis bench times is the paper's grid, compared with PyTorch)", bf.tolerance)
	case math.IsNaN(bf.tolerance) || bf.tolerance < 0 || math.IsInf(bf.tolerance, 0):
		return badInputf("bench: --tolerance %v: want a finite number ≥ 0", bf.tolerance)
	case bf.torchThreads < 1:
		return badInputf("bench: --torch-threads %d: want a positive number of PyTorch threads", bf.torchThreads)
	case bf.torchChunk < 0:
		return badInputf("bench: --torch-chunk %d: want 0 (all examples in one jvp) or a positive count", bf.torchChunk)
	case bf.threads < 0:
		return badInputf("bench: --threads %d: want 0 (OpenBLAS's default) or a positive count", bf.threads)
	case bf.memory < 0:
		return badInputf("bench: --memory %d: want 0 (skip) or a number of examples", bf.memory)
	case bf.memory > 0 && bf.memoryAlphas < 2:
		return badInputf("bench: --memory-alphas %d: the grid needs at least 2 points (0 and 1)", bf.memoryAlphas)
	}
	if bf.torch && bf.torchref == "" { // find the oracle before any work
		p, err := findUp(filepath.Join("tools", "torchref", "torchref.py"))
		if err != nil {
			return badInputf("bench: --torch: %v (give --torchref)", err)
		}
		bf.torchref = p
	}
	if bf.torch {
		if _, err := exec.LookPath(bf.python); err != nil {
			return badInputf("bench: --python %s: %v", bf.python, err)
		}
	}
	if bf.memory > 0 {
		if _, err := exec.LookPath(bf.timeBin); err != nil {
			return badInputf("bench: --time %s: GNU time is needed for --memory (Debian package time): %v", bf.timeBin, err)
		}
	}
	if _, ok := benchTolerances[bf.precision]; !ok {
		return badInputf("bench: --precision %q: want float64 or float32", bf.precision)
	}
	return nil
}

// benchCmd times the analysis PyTorch can also do — loss and accuracy at the
// grid's α and the paper-compatible trapezoid Gauss lengths (mean and
// stacked), exactly what `certify --run DIR --loss-only` computes — and, with
// --torch, the same computation by tools/torchref/torchref.py in the same
// session, checks that both agree and prints the ratio of the times. With
// --full it times the full default analysis of `certify --run` instead
// (bench_full.go) against the same PyTorch computation, and checks the
// agreement on what both compute.
func benchCmd(ctx context.Context, args []string) error {
	var bf benchFlags
	fs := newBenchFlagSet(&bf)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { bf.toleranceSet = bf.toleranceSet || f.Name == "tolerance" })
	if err := bf.check(); err != nil {
		return err
	}
	b, note, err := benchBackend(bf.backend)
	if err != nil {
		return err
	}
	b.SetThreads(bf.threads)
	defer restoreBLAS()()
	b.Use()
	log := stderr
	if bf.jsonOut {
		log = io.Discard
	}
	fmt.Fprintf(log, "BLAS      %s: %s\n          %s\n", b, note, b.Config)
	if bf.build {
		if err := benchBuild(ctx, &bf, log); err != nil {
			return err
		}
	}
	dir, err := benchData(ctx, bf.runDir, bf.cache, bf.examples, log)
	if err != nil {
		return err
	}
	res := &benchResult{Run: dir, SourceRun: bf.runDir, Alphas: bf.alphas, Backend: b.Name, BackendNote: note, Kernel: b.Kernel, BLASSource: b.Source,
		BLASConfig: b.Config, BLASThreads: b.Threads(), Chunk: bf.chunk, GOMAXPROCS: runtime.GOMAXPROCS(0),
		Precision: bf.precision, GridOnly: bf.gridOnly}
	res.Workers = bf.workers
	if res.Workers <= 0 {
		res.Workers = runtime.GOMAXPROCS(0)
	}
	run, err := rundir.Read(dir, bf.examples)
	if err != nil {
		return badInput(err)
	}
	res.Examples, _ = run.X.Dims()
	if bf.gemm {
		benchGemm(b, bf.chunk, res, log)
	}
	r, err := benchAnalysis(ctx, bf, run, res, log)
	if err != nil {
		return err
	}
	if bf.torch {
		if err := benchTorch(ctx, bf, dir, r, res, log); err != nil {
			return err
		}
	}
	if bf.memory > 0 {
		if err := benchMemory(ctx, bf, b, res, log); err != nil {
			return err
		}
	}
	if err := writeBenchResult(bf, res); err != nil {
		return err
	}
	if res.Torch != nil && !res.Torch.Agree {
		return fmt.Errorf("bench: certify and PyTorch disagree (see the check line)")
	}
	return nil
}

// benchBuild points --run at the benchmark run in --cache, training it
// first (benchDefaultTrain) when it is not there.
func benchBuild(ctx context.Context, bf *benchFlags, log io.Writer) error {
	bf.runDir = filepath.Join(bf.cache, "mnist-784-1024-1024-10")
	if _, err := os.Stat(filepath.Join(bf.runDir, "final.safetensors")); err == nil {
		return nil
	}
	fmt.Fprintf(log, "training  %s (certify train %s)\n", bf.runDir, strings.Join(benchDefaultTrain, " "))
	if err := trainCmd(ctx, append(append([]string{}, benchDefaultTrain...), "--out", bf.runDir)); err != nil {
		if errors.Is(err, context.Canceled) { // not train's advice: bench trains afresh next time
			return interrupted(err, "bench interrupted while training %s", bf.runDir)
		}
		return fmt.Errorf("bench: train: %w", err)
	}
	return nil
}

// benchGemm measures the GFLOP/s of the hot product — the second layer's
// W·[h ḣ ḧ] for one chunk (THEORY.md §2) — in float64 and float32, on b
// and on pure Go, into res.
func benchGemm(b *blasbackend.Backend, chunk int, res *benchResult, log io.Writer) {
	m, n, k := 3*chunk, 1024, 1024
	res.GemmGFLOPS = blasbackend.DgemmRate(b.Impl, m, n, k)
	res.SgemmGFLOPS = blasbackend.SgemmRate(b.Impl32, m, n, k)
	res.GemmGFLOPSGo, res.SgemmGFLOPSGo = res.GemmGFLOPS, res.SgemmGFLOPS
	if b.Name != "go" {
		res.GemmGFLOPSGo = blasbackend.DgemmRate(blasbackend.PureGo().Impl, m, n, k)
		res.SgemmGFLOPSGo = blasbackend.SgemmRate(blasbackend.PureGo().Impl32, m, n, k)
	}
	fmt.Fprintf(log, "Dgemm     [%d, %d]·[%d, %d]ᵀ: %.1f GFLOP/s (%s), %.1f GFLOP/s (pure Go)\n", m, k, n, k, res.GemmGFLOPS, b.Name, res.GemmGFLOPSGo)
	fmt.Fprintf(log, "Sgemm     the same in float32: %.1f GFLOP/s (%s), %.1f GFLOP/s (pure Go)\n", res.SgemmGFLOPS, b.Name, res.SgemmGFLOPSGo)
}

// benchLogInterval is how often bench's progress writes a line when its log
// is not a terminal (progress.LogInterval; tests lower it).
var benchLogInterval = progress.LogInterval

// benchProgress returns the progress of bench's timed analysis on log: a bar
// when log is a terminal, else a line about every benchLogInterval with the
// phase, done/total and an ETA (a full analysis at 5000 examples runs for
// many minutes); nil (no progress) when log is io.Discard (--json).
func benchProgress(log io.Writer) *progress.Bar {
	if log == io.Discard {
		return nil
	}
	if f, ok := log.(*os.File); ok && progress.IsTerminal(f) {
		return progress.New(f, "bench")
	}
	return progress.NewLog(log, "bench", benchLogInterval)
}

// benchAnalysis times the loss-only analysis (or, with --full, the full
// default one) of run, fills res's times, operation count and values, and
// returns the report.
func benchAnalysis(ctx context.Context, bf benchFlags, run *rundir.Run, res *benchResult, log io.Writer) (*certify.Report, error) {
	opt := certify.Options{Alphas: bf.alphas, LossOnly: true}
	what := "loss/accuracy + trapezoid Gauss lengths"
	if bf.full {
		var err error
		if opt, err = fullAnalysisOptions(bf.alphas); err != nil {
			return nil, err
		}
		opt.Tolerance = bf.tolerance
		what = "the full default analysis (certificate, corner-aware Gauss length, continuous Δ, per-layer L′)"
	}
	if bf.gridOnly {
		what = "the grid alone (loss/accuracy + trapezoid Gauss lengths, no witness proof)"
	}
	bar := benchProgress(log)
	ta, err := timeAnalysis(ctx, run, functionspace.Options{Chunk: bf.chunk, Workers: bf.workers, Precision: functionspace.Precision(bf.precision)}, opt, bf.cpuprofile, bf.gridOnly, bar)
	if err != nil {
		bar.Stop()
	} else {
		bar.Done()
	}
	if err != nil {
		return nil, err
	}
	r := ta.report
	res.CPUSeconds, res.SetupSeconds, res.AnalyzeSeconds, res.Seconds = ta.cpu, ta.setup, ta.analyze, ta.total
	res.PeakRSSBytes, res.LoadAverage = ta.peakRSS, ta.load
	res.GridSeconds, res.GridCPUSeconds = ta.phases["loss on the grid"], ta.gridCPU
	rate := ""
	if !bf.full { // the count is of the loss-only passes
		res.AnalysisGFLOP = analysisFlops(run.Model, res.Examples, bf.alphas, ta.path.FirstLayerCached()) / 1e9
		if w, ok := ta.path.LastCarryWork(); ok {
			// the grid carried the second layer's input (functionspace.Path.AtGrid):
			// its products per α are replaced by the carry's refreshes and updates
			if c, isC := run.Model.Layers[w.Layer].(nn.FLOPCounter); isC {
				res.AnalysisGFLOP += (w.FLOPs - float64(bf.alphas)*c.JetFLOPs(res.Examples, false)) / 1e9
			}
		}
		res.AnalysisRate = res.AnalysisGFLOP / res.Seconds
		rate = fmt.Sprintf(", %.0f GFLOP (%.1f GFLOP/s)", res.AnalysisGFLOP, res.AnalysisRate)
	}
	last := len(r.Loss) - 1
	res.LossFirst, res.LossLast, res.AccuracyLast = r.Loss[0], r.Loss[last], r.Accuracy[last]
	res.GaussMeanTrap, res.GaussStackTrap = r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid
	fmt.Fprintf(log, "certify   %d examples × %d α, %s: %.2f s (setup %.2f s), CPU %.2f s (%.2f cores)%s, peak RSS %.0f MiB\n",
		res.Examples, bf.alphas, what, res.Seconds, res.SetupSeconds, res.CPUSeconds, res.CPUSeconds/res.Seconds,
		rate, float64(res.PeakRSSBytes)/(1<<20))
	fmt.Fprintf(log, "          load average %.2f → %.2f on %d cores\n", res.LoadAverage[0], res.LoadAverage[1], runtime.NumCPU())
	if !bf.full {
		fmt.Fprintf(log, "          of which the %d-α grid %.2f s (CPU %.2f s); after it (a witness's interval proof, conditions) %.2f s (CPU %.2f s)\n",
			bf.alphas, res.GridSeconds, res.GridCPUSeconds, res.AnalyzeSeconds-res.GridSeconds, res.CPUSeconds-res.GridCPUSeconds)
	}
	if bf.precision != functionspace.Float64.String() {
		fmt.Fprintf(log, "          precision %s: the layer passes in %s, the reductions in float64\n", bf.precision, bf.precision)
	}
	if bf.full {
		res.Full = newFullSide(ta)
		printFull(log, res.Full)
	}
	fmt.Fprintf(log, "          L(0) %.10g  L(1) %.10g  accuracy(1) %.4f  Gauss length (trapezoid) mean %.8g stacked %.8g\n",
		res.LossFirst, res.LossLast, res.AccuracyLast, res.GaussMeanTrap, res.GaussStackTrap)
	return r, nil
}

// benchTorch runs the PyTorch oracle on dir, compares it with r and fills
// res.Torch with its times, the ratios and the agreement.
func benchTorch(ctx context.Context, bf benchFlags, dir string, r *certify.Report, res *benchResult, log io.Writer) error {
	ts, err := runTorch(ctx, bf.python, bf.torchref, dir, res.Examples, bf.alphas, bf.torchThreads, bf.torchChunk, bf.precision, r)
	if err != nil && ctx.Err() != nil { // the child was killed because we were interrupted
		return interrupted(ctx.Err(), "bench interrupted while PyTorch ran; nothing written")
	}
	if err != nil {
		return err
	}
	ts.Ratio = res.Seconds / ts.Seconds
	if ts.ProcessCPUSeconds > 0 {
		ts.CPURatio = res.CPUSeconds / ts.ProcessCPUSeconds
	}
	if c := ts.ComputeCPUSeconds; c != nil && *c > 0 {
		q := res.CPUSeconds / *c
		ts.ComputeCPURatio = &q
	}
	res.Torch = ts
	verdict := "agree"
	if !ts.Agree {
		verdict = "DISAGREE"
	}
	tols := benchTolerances[bf.precision]
	passes := "a no-grad loss pass and one nested jvp per α"
	if ts.OnePass {
		passes = "one nested jvp per α"
	}
	fmt.Fprintf(log, "PyTorch   %s (%s, %d threads; %s, %d examples per jvp): %.2f s (loss %.2f s + Gauss %.2f s)\n",
		ts.Version, ts.BLAS, ts.Threads, passes, ts.Chunk, ts.Seconds, ts.LossSeconds, ts.GaussSeconds)
	fmt.Fprintf(log, "check     %s (%s): α max |diff| %.1g, loss max rel %.1g (≤ %g), %s, Gauss mean rel %.1g, stacked rel %.1g (≤ %g)\n",
		verdict, bf.precision, ts.AlphaMaxDiff, ts.LossMaxRel, tols.loss, accuracyCheck(ts.AccuracyDiffer, ts.AccuracyMaxDiff, tols.accuracy), ts.GaussMeanRel, ts.GaussStackRel, tols.gauss)
	fmt.Fprintf(log, "ratio     certify/PyTorch = %.2f s / %.2f s = %.3f (wall); CPU %.1f s / %.1f s (whole torchref process) = %.3f\n",
		res.Seconds, ts.Seconds, ts.Ratio, res.CPUSeconds, ts.ProcessCPUSeconds, ts.CPURatio)
	if ts.ComputeCPURatio != nil {
		fmt.Fprintf(log, "          CPU %.1f s / %.1f s (torchref's passes alone, without start-up, import and loading) = %.3f\n",
			res.CPUSeconds, *ts.ComputeCPUSeconds, *ts.ComputeCPURatio)
		if !bf.full {
			fmt.Fprintf(log, "          the grid alone (the paper's method): CPU %.1f s / %.1f s = %.3f\n",
				res.GridCPUSeconds, *ts.ComputeCPUSeconds, res.GridCPUSeconds / *ts.ComputeCPUSeconds)
		}
	}
	return nil
}

// benchMemory measures the peak resident memory of `certify --run` on
// --memory examples under GNU time, into res.Memory.
func benchMemory(ctx context.Context, bf benchFlags, b *blasbackend.Backend, res *benchResult, log io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	env := []string{blasEnv + "=" + blasEnvValue(b)}
	if bf.threads > 0 {
		env = append(env, "OPENBLAS_NUM_THREADS="+strconv.Itoa(bf.threads))
	}
	m, err := measureMemory(ctx, bf.timeBin, exe, bf.runDir, bf.cache, bf.memory, bf.memoryAlphas, bf.chunk, res.Workers, bf.precision, bf.full, bf.tolerance, env)
	if err != nil && ctx.Err() != nil {
		return interrupted(ctx.Err(), "bench interrupted during the --memory run; nothing written")
	}
	if err != nil {
		return err
	}
	res.Memory = m
	within := "under"
	if !m.Within {
		within = "OVER"
	}
	mode := " --loss-only"
	if m.Full {
		mode = fmt.Sprintf(" --tolerance %g", bf.tolerance)
	}
	fmt.Fprintf(log, "memory    certify --run %s --examples %d --alphas %d%s --precision %s (%s=%s): %d examples, peak RSS %.0f MiB (/usr/bin/time -v), %s the %d MiB budget; wall %s\n",
		bf.runDir, bf.memory, bf.memoryAlphas, mode, m.Precision, blasEnv, blasEnvValue(b), m.Examples, float64(m.PeakRSSBytes)/(1<<20), within, m.BudgetBytes>>20, m.Elapsed)
	if m.Examples < bf.memory {
		fmt.Fprintf(log, "          warning: the run's data holds only %d examples\n", m.Examples)
	}
	return nil
}

// writeBenchResult prints res as JSON with --json and writes it to --out
// (atomically).
func writeBenchResult(bf benchFlags, res *benchResult) error {
	bs, _ := json.MarshalIndent(res, "", "  ")
	if bf.jsonOut {
		fmt.Fprintln(stdout, string(bs))
	}
	if bf.out != "" {
		return atomicfile.Write(bf.out, append(bs, '\n'))
	}
	return nil
}

// benchData returns a run directory with data.safetensors holding at least
// the first n examples of dir's evaluation data: dir itself when it has one,
// else an export into cache, made once per run content and n: its name
// carries a fingerprint of the files the export copies (runFingerprint), so a
// different or retrained run with the same directory name gets its own.
func benchData(ctx context.Context, dir, cache string, n int, log io.Writer) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "data.safetensors")); err == nil {
		return dir, nil
	}
	fp, err := runFingerprint(dir)
	if err != nil {
		return "", badInput(err)
	}
	out := filepath.Join(cache, filepath.Base(filepath.Clean(dir))+"-"+strconv.Itoa(n)+"-"+fp)
	if _, err := os.Stat(filepath.Join(out, "data.safetensors")); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "exporting %s → %s\n", dir, out)
	o := stdout
	stdout = log
	err = exportCmd(ctx, []string{"--run", dir, "--examples", strconv.Itoa(n), "--out", out})
	stdout = o
	return out, err
}

// runFingerprint returns the first 12 hex digits of the SHA-256 of a run
// directory's config.json, model.json, init.safetensors, final.safetensors
// and label_noise.safetensors (those present, each with its name and size),
// the files an export reads. It returns an error naming dir when none of
// them is there or one cannot be read.
func runFingerprint(dir string) (string, error) {
	h := sha256.New()
	found := 0
	for _, name := range []string{"config.json", "model.json", "init.safetensors", "final.safetensors", "label_noise.safetensors"} {
		f, err := os.Open(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00", name)
		size, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		fmt.Fprintf(h, "\x00%d\x00", size)
		found++
	}
	if found == 0 {
		return "", fmt.Errorf("run directory %s: no config.json, model.json or checkpoints", dir)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// analysisFlops counts the floating-point operations of the layers' matrix
// products (nn.FLOPCounter; a dense layer [in → out] costs 2·3n·in·out for
// W·[h ḣ ḧ] plus 2·2n·in·out for ΔW·[h ḣ] per α) in a loss-only analysis
// of n examples on m α. The first layer, whose input does not depend on α,
// costs its constant-input count once when its cache is kept
// (functionspace.Path.FirstLayerCached), else at every α. Layers without
// products (activations, BatchNorm) are not counted.
func analysisFlops(m *nn.Model, n, alphas int, firstCached bool) float64 {
	var f float64
	for i, l := range m.Layers {
		c, ok := l.(nn.FLOPCounter)
		if !ok {
			continue
		}
		if i == 0 {
			once := c.JetFLOPs(n, true)
			if firstCached {
				f += once
			} else {
				f += once * float64(alphas)
			}
			continue
		}
		f += float64(alphas) * c.JetFLOPs(n, false)
	}
	return f
}

// runTorch runs torchref.py on dir with the same grid and compares its
// results with r.
//
// torchref evaluates the first examples examples of dir's data, as certify
// did (dir may hold more), with --one-pass (the paper's method as one
// nested jvp per α, its loss and accuracy from the jvp's forward values)
// and chunk examples per jvp (0: all).
func runTorch(ctx context.Context, python, script, dir string, examples, alphas, threads, chunk int, precision string, r *certify.Report) (*torchSide, error) {
	cmd := exec.CommandContext(ctx, python, script, dir, "--examples", strconv.Itoa(examples), "--grid", strconv.Itoa(alphas),
		"--derivs", "--one-pass", "--chunk", strconv.Itoa(chunk), "--no-paths", "--time", "--threads", strconv.Itoa(threads), "--dtype", precision)
	var errb strings.Builder
	cmd.Stderr = &errb
	outb, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench: %s: %v\n%s", script, err, errb.String())
	}
	var t struct {
		Torch        string    `json:"torch"`
		Alphas       []float64 `json:"alphas"`
		Loss         []float64 `json:"loss"`
		Accuracy     []float64 `json:"accuracy"`
		GaussMean    float64   `json:"gauss_length_mean_trapezoid"`
		GaussStacked float64   `json:"gauss_length_stacked_trapezoid"`
		LossSeconds  float64   `json:"loss_seconds"`
		GaussSeconds float64   `json:"gauss_seconds"`
		LossCPU      *float64  `json:"loss_cpu_seconds"`
		GaussCPU     *float64  `json:"gauss_cpu_seconds"`
		Threads      int       `json:"threads"`
		OnePass      bool      `json:"one_pass"`
		Chunk        int       `json:"chunk"`
	}
	if err := json.Unmarshal(outb, &t); err != nil {
		return nil, fmt.Errorf("bench: torchref output: %v", err)
	}
	if len(t.Alphas) != len(r.Alphas) || len(t.Loss) != len(r.Loss) || len(t.Accuracy) != len(r.Accuracy) {
		return nil, fmt.Errorf("bench: torchref returned %d α, %d losses; certify %d", len(t.Alphas), len(t.Loss), len(r.Alphas))
	}
	s := &torchSide{Version: t.Torch, BLAS: torchBLAS(), Threads: t.Threads, OnePass: t.OnePass, Chunk: t.Chunk,
		LossSeconds: t.LossSeconds, GaussSeconds: t.GaussSeconds, Seconds: t.LossSeconds + t.GaussSeconds}
	if t.LossCPU != nil && t.GaussCPU != nil {
		c := *t.LossCPU + *t.GaussCPU
		s.ComputeCPUSeconds = &c
	}
	if ps := cmd.ProcessState; ps != nil {
		s.ProcessCPUSeconds = (ps.UserTime() + ps.SystemTime()).Seconds()
	}
	for j := range r.Alphas {
		s.AlphaMaxDiff = max(s.AlphaMaxDiff, math.Abs(r.Alphas[j]-t.Alphas[j]))
		s.LossMaxRel = max(s.LossMaxRel, relDiff(r.Loss[j], t.Loss[j]))
		if r.Accuracy[j] != t.Accuracy[j] {
			s.AccuracyDiffer++
		}
		s.AccuracyMaxDiff = max(s.AccuracyMaxDiff, math.Abs(r.Accuracy[j]-t.Accuracy[j]))
	}
	s.GaussMeanRel = relDiff(r.GaussLengthMeanTrapezoid, t.GaussMean)
	s.GaussStackRel = relDiff(r.GaussLengthStackedTrapezoid, t.GaussStacked)
	tol := benchTolerances[precision]
	s.Agree = s.AlphaMaxDiff <= 1e-15 && s.LossMaxRel <= tol.loss && s.AccuracyMaxDiff <= tol.accuracy &&
		s.GaussMeanRel <= tol.gauss && s.GaussStackRel <= tol.gauss
	return s, nil
}

// benchTolerances are the agreement bounds of the PyTorch check per
// precision: relative on the loss at every α and on the trapezoid Gauss
// lengths, absolute on the accuracy at every α. float64: the 1e-9
// and 1e-6 and identical accuracy. float32 (both sides in float32, with
// different summation orders): loss 1e-5 and Gauss lengths 1e-4 relative,
// ≥ 10× the largest differences measured (docs/performance.md); the
// accuracy may differ by 0.2% at an α (10 of 5000 examples whose two top
// outputs are within float32 rounding of each other).
var benchTolerances = map[string]struct{ loss, gauss, accuracy float64 }{
	string(functionspace.Float64): {loss: 1e-9, gauss: 1e-6, accuracy: 0},
	string(functionspace.Float32): {loss: 1e-5, gauss: 1e-4, accuracy: 2e-3},
}

// accuracyCheck is the accuracy part of bench's check line: "accuracy
// agrees at every α" when certify's and PyTorch's accuracy are equal at
// every grid α (differ = 0), else the number of α where they differ and
// the largest difference against its tolerance ("accuracy differs at 2 α
// by at most 0.0004 (≤ 0.002)"). The first user read the old "accuracy
// differs at 0 α (max 0 ≤ 0)" as a failure.
func accuracyCheck(differ int, maxDiff, tol float64) string {
	if differ == 0 {
		return "accuracy agrees at every α"
	}
	return fmt.Sprintf("accuracy differs at %d α by at most %.1g (≤ %g)", differ, maxDiff, tol)
}

func relDiff(a, b float64) float64 {
	if a == b {
		return 0
	}
	return math.Abs(a-b) / max(math.Abs(a), math.Abs(b))
}

// torchBLAS names the library behind Debian's libblas.so.3, which Debian's
// python3-torch calls for float64 products (the alternatives link: reference
// BLAS, or OpenBLAS once libopenblas0 is installed).
func torchBLAS() string {
	p, err := filepath.EvalSymlinks("/usr/lib/x86_64-linux-gnu/libblas.so.3")
	if err != nil {
		return "unknown"
	}
	switch {
	case strings.Contains(p, "openblas"):
		return "OpenBLAS " + filepath.Base(filepath.Dir(p))
	case strings.Contains(p, "/blas/"):
		return "reference BLAS"
	}
	return p
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(d, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			wd, _ := os.Getwd()
			return "", fmt.Errorf("%s not found in %s or any directory above it", rel, wd)
		}
		d = parent
	}
}

// cpuSeconds is the user+system CPU time of the process so far (Linux
// /proc/self/stat; 0 elsewhere).
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	sy, _ := strconv.ParseFloat(f[12], 64)
	return (u + sy) / 100 // USER_HZ is 100 on Linux
}

// peakRSS is the process's peak resident set (VmHWM of /proc/self/status) in
// bytes, 0 where unknown.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// loadAverage is the 1-minute load average (Linux /proc/loadavg; 0 elsewhere).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
