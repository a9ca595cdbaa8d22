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
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/certify-mli/certify/internal/atomicfile"
	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/internal/keyed"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/internal/sweep"
	"github.com/certify-mli/certify/rundir"
)

// sweepFlags are the flags of `certify sweep GRID`.
type sweepFlags struct {
	out        string
	jobs       int
	dryRun     bool
	only       listFlag
	index      int
	emit       string
	arrayLimit int
	slurmOpts  listFlag
	certifyBin string
	gridSHA    string
	quiet      bool
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

const sweepUsage = `Usage: certify sweep GRID --out DIR [flags]

Trains and certifies every point of the grid file GRID (JSON; docs/sweeps.md)
into DIR/NAME, with --jobs workers; a rerun skips finished points and redoes
interrupted ones. DIR/sweep.json indexes the points.

Flags:
`

func newSweepFlagSet(sf *sweepFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), sweepUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&sf.out, "out", "", "directory of the sweep's run directories and sweep.json (required)")
	fs.IntVar(&sf.jobs, "jobs", runtime.NumCPU(), "points trained and certified at once")
	fs.BoolVar(&sf.dryRun, "dry-run", false, "list the points and their status; with --emit, print the script; run nothing")
	fs.Var(&sf.only, "only", "run only points whose name matches `PATTERN`: a shell glob on the whole name, or re:REGEXP matched anywhere (repeatable: any match)")
	fs.IntVar(&sf.index, "index", -1, "run only point I of the grid (what a SLURM array task does)")
	fs.StringVar(&sf.emit, "emit", "", "write a job script instead of running: slurm (DIR/sweep.sbatch)")
	fs.IntVar(&sf.arrayLimit, "array-limit", 0, "with --emit slurm: at most N array tasks at once (--array=...%N; 0: no limit)")
	fs.Var(&sf.slurmOpts, "slurm-opt", "with --emit slurm: an sbatch `OPTION` for the script, e.g. --slurm-opt --time=01:00:00 (repeatable)")
	fs.StringVar(&sf.certifyBin, "certify", "", "with --emit slurm: absolute path of the certify binary the tasks run (default: this binary)")
	fs.StringVar(&sf.gridSHA, "grid-sha256", "", "refuse to run unless GRID's SHA-256 is this (the SLURM script passes it)")
	fs.BoolVar(&sf.quiet, "quiet", false, "print nothing but errors")
	return fs
}

// sweepReserved are the flags the sweep sets itself; a grid may not set them.
// A point's analysis resumes its certificate from its checkpoint with the
// default save interval (--fresh, --save-state-every: checkpoint.go): they
// change no result, so they are no grid setting.
var sweepReserved = []string{"out", "force", "resume", "quiet", "run", "json", "spawn-from", "at-step", "fresh", "save-state-every"} // a grid spawns through its "spawn" section (sweep_spawn.go)

// trainGrid is rundir.TrainConfig as a grid's "base" and "axes" see it:
// its keys are the flags of `certify train`.
type trainGrid struct{ *rundir.TrainConfig }

func (trainGrid) Name() string { return "certify train" }

// sweepSchema checks grid files against the training configuration
// (rundir.TrainConfig, every key of which is a flag of `certify train`) and
// the analysis's (analysisConfig, every key of which is an analysis flag),
// so every setting they gain is a valid axis at once.
func sweepSchema() sweep.Schema {
	return sweep.Schema{
		Train: func() sweep.Config {
			c := rundir.DefaultTrainConfig()
			return trainGrid{&c}
		},
		Analysis: func() sweep.Config {
			c := defaultAnalysisConfig()
			return sweep.Struct("certify", &c)
		},
		Reserved: sweepReserved,
	}
}

// parseInterleaved parses flags that may come before or after positional
// arguments (certify sweep GRID --out DIR, or certify sweep --out DIR GRID).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, badInput(err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func sweepCmd(ctx context.Context, args []string) error {
	var sf sweepFlags
	fs := newSweepFlagSet(&sf)
	fs.SetOutput(stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return badInputf("sweep: want one grid file, found %d arguments %q (certify sweep GRID --out DIR)", len(pos), pos)
	}
	if sf.out == "" {
		return badInputf("sweep: --out DIR is required")
	}
	if sf.emit != "" && sf.emit != "slurm" {
		return badInputf("sweep: --emit %q: the only script kind is slurm", sf.emit)
	}
	if sf.index >= 0 && (len(sf.only) > 0 || sf.emit != "") {
		return badInputf("sweep: --index runs one point; it does not combine with --only or --emit")
	}
	g, err := sweep.Load(pos[0], sweepSchema())
	if err != nil {
		return badInput(err)
	}
	// Records, the index and the certificates' commands name absolute
	// paths, so local and SLURM runs of the same grid into the same
	// directory write the same files.
	if g.File, err = filepath.Abs(g.File); err != nil {
		return err
	}
	if sf.out, err = filepath.Abs(sf.out); err != nil {
		return err
	}
	if sf.gridSHA != "" && sf.gridSHA != g.SHA256 {
		return badInputf("sweep: grid %s changed since the job script was written (SHA-256 %s, expected %s); write the script again with --emit slurm", g.File, g.SHA256, sf.gridSHA)
	}
	m, err := sweep.NewMatcher(sf.only)
	if err != nil {
		return badInput(err)
	}
	var pts []sweep.Point
	if sf.index >= 0 {
		if sf.index >= g.Len() {
			return badInputf("sweep: --index %d: grid %s has points 0 to %d", sf.index, g.File, g.Len()-1)
		}
		pts = []sweep.Point{g.Point(sf.index)}
	} else if pts = sweep.Select(g.Points(), m); len(pts) == 0 {
		return badInputf("sweep: --only %s selects none of the %d points of %s (see --dry-run)", sf.only.String(), g.Len(), g.File)
	}
	// Every point's values, before anything is created or run: a typo in
	// the grid is one error now, not one failure per point later.
	for _, p := range g.Points() {
		if err := checkPointValues(g, p); err != nil {
			return err
		}
	}
	st, err := sweep.NewStore(sf.out, g, !sf.dryRun)
	if err != nil {
		return err
	}
	// Before any training: finished or staged points must have been made
	// with the grid's current settings.
	for _, p := range pts {
		if err := checkExisting(st, g, p); err != nil {
			return err
		}
	}
	if !sf.dryRun && sf.index < 0 {
		if err := checkSpawnSelection(st, g, pts); err != nil {
			return err
		}
	}
	switch {
	case sf.emit == "slurm":
		return emitSlurm(st, g, pts, sf)
	case sf.dryRun:
		return printPoints(stdout, st, pts)
	case sf.index >= 0:
		setSlurmProcs()
		return runIndex(ctx, st, g, pts[0], sf)
	}
	return runPool(ctx, st, g, pts, sf)
}

// checkPointValues applies p's settings to the train and analysis flags
// and runs their checks (trainFlags.check, analyzeFlags.check), naming the
// point and the grid.
func checkPointValues(g *sweep.Grid, p sweep.Point) error {
	tf, af, _, err := pointFlags(g, p)
	if err == nil {
		err = tf.check()
	}
	if err == nil {
		err = af.check()
	}
	if err != nil {
		return badInputf("sweep: grid %s, point %d (%s): %v", g.File, p.Index, p.Name, strings.TrimPrefix(err.Error(), "train: "))
	}
	return nil
}

// checkExisting refuses a point whose run directory holds another
// configuration (the grid's base changed under the same names).
func checkExisting(st *sweep.Store, g *sweep.Grid, p sweep.Point) error {
	final := st.Final(p)
	if _, err := os.Stat(final); err != nil {
		return nil
	}
	if !st.Done(p) {
		return badInputf("sweep: %s exists but is not a finished point of the sweep (no certificate.json); move it away", final)
	}
	rec, err := sweep.ReadRecord(final)
	if err != nil {
		return badInputf("sweep: %s: %v; move it away or use another --out", final, err)
	}
	if ok, d := rec.SameSettings(g, p); !ok {
		return badInputf("sweep: %s was made with other settings than point %d of %s: %s; use another --out or remove it", final, p.Index, g.File, d)
	}
	return nil
}

// setSlurmProcs bounds GOMAXPROCS by the CPUs SLURM gave the task, unless
// GOMAXPROCS is set: without task/cgroup affinity a task would otherwise see
// every core of the node.
func setSlurmProcs() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	for _, v := range []string{"SLURM_CPUS_PER_TASK", "SLURM_CPUS_ON_NODE"} {
		if n, err := strconv.Atoi(os.Getenv(v)); err == nil && n > 0 {
			if n < runtime.GOMAXPROCS(0) {
				runtime.GOMAXPROCS(n)
			}
			return
		}
	}
}

func printPoints(w io.Writer, st *sweep.Store, pts []sweep.Point) error {
	fmt.Fprintf(w, "%5s  %-8s  %s\n", "index", "status", "name")
	counts := map[string]int{}
	for _, p := range pts {
		e := st.Entry(p)
		counts[e.Status]++
		fmt.Fprintf(w, "%5d  %-8s  %s\n", p.Index, e.Status, p.Name)
	}
	fmt.Fprintf(w, "%d of %d points", len(pts), st.Grid.Len())
	for _, s := range []string{sweep.StatusDone, sweep.StatusTrained, sweep.StatusPartial, sweep.StatusFailed, sweep.StatusPending} {
		if counts[s] > 0 {
			fmt.Fprintf(w, ", %d %s", counts[s], s)
		}
	}
	fmt.Fprintln(w)
	return nil
}

// emitSlurm writes OUT/sweep.sbatch (or prints it with --dry-run).
func emitSlurm(st *sweep.Store, g *sweep.Grid, pts []sweep.Point, sf sweepFlags) error {
	bin := sf.certifyBin
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("sweep: cannot find this binary's path (%v); pass --certify PATH", err)
		}
		if exe, err = filepath.EvalSymlinks(exe); err != nil {
			return err
		}
		if strings.Contains(exe, string(filepath.Separator)+"go-build") {
			return badInputf("sweep: %s is a temporary `go run` binary; build one (go build -o bin/certify ./cmd/certify) and run it, or pass --certify PATH", exe)
		}
		bin = exe
	}
	var err error
	s := sweep.Slurm{JobName: "certify-" + strings.TrimSuffix(filepath.Base(g.File), filepath.Ext(g.File)),
		GridSHA256: g.SHA256, Limit: sf.arrayLimit, Options: sf.slurmOpts}
	for _, p := range []struct {
		dst *string
		src string
	}{{&s.Certify, bin}, {&s.Grid, g.File}, {&s.Out, sf.out}} {
		if *p.dst, err = filepath.Abs(p.src); err != nil {
			return err
		}
	}
	if sf.quiet {
		s.Extra = []string{"--quiet"}
	}
	for _, p := range pts {
		if !st.Done(p) {
			s.Indices = append(s.Indices, p.Index)
		}
	}
	var children []int
	s.Indices, children = splitSpawnIndices(g, s.Indices)
	submit := "sbatch " + filepath.Join(sf.out, "sweep.sbatch")
	if len(children) > 0 {
		if !sf.dryRun {
			if err := os.MkdirAll(filepath.Join(sf.out, sweep.LogDir), 0o755); err != nil {
				return err
			}
		}
		var err error
		if submit, err = writeSpawnScript(s, children, len(s.Indices) > 0, sf, stdout); err != nil {
			return err
		}
		if !sf.dryRun {
			if err := os.Chmod(filepath.Join(sf.out, spawnScript), 0o755); err != nil {
				return err
			}
		}
		if len(s.Indices) == 0 {
			if _, err := st.WriteIndex(nil); err != nil {
				return err
			}
			if !sf.quiet && !sf.dryRun {
				fmt.Fprintf(stdout, "wrote %s: %s (--array=%s) spawning from finished points\nsubmit with: %s\n",
					filepath.Join(sf.out, spawnScript), plural(len(children), "array task"), sweep.ArraySpec(children, s.Limit), submit)
			}
			return nil
		}
	}
	if len(s.Indices) == 0 {
		if !sf.quiet || sf.dryRun {
			fmt.Fprintf(stdout, "every selected point (%s) is done; no script written\n", plural(len(pts), "point"))
		}
		return nil
	}
	script, err := s.Script()
	if err != nil {
		return badInput(err)
	}
	if sf.dryRun {
		fmt.Fprint(stdout, script)
		return nil
	}
	if err := os.MkdirAll(filepath.Join(sf.out, sweep.LogDir), 0o755); err != nil {
		return err
	}
	path := filepath.Join(sf.out, "sweep.sbatch")
	if err := atomicfile.Write(path, []byte(script)); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return err
	}
	if _, err := st.WriteIndex(nil); err != nil {
		return err
	}
	if !sf.quiet {
		done := ""
		if d := len(pts) - len(s.Indices) - len(children); d > 0 {
			done = fmt.Sprintf("; %d already done, not in it", d)
		}
		spawned := ""
		if len(children) > 0 {
			spawned = fmt.Sprintf(", and %s: %s (--array=%s) spawning from them", filepath.Join(sf.out, spawnScript), plural(len(children), "array task"), sweep.ArraySpec(children, s.Limit))
		}
		fmt.Fprintf(stdout, "wrote %s: %s (--array=%s)%s%s, logs in %s\nsubmit with: %s\n",
			path, plural(len(s.Indices), "array task"), sweep.ArraySpec(s.Indices, s.Limit), spawned, done, filepath.Join(s.Out, sweep.LogDir), submit)
	}
	return nil
}

// outcome is what running one point did.
type outcome int

const (
	outSkipped outcome = iota
	outBusy
	outDone
)

type pointResult struct {
	outcome          outcome
	trained, resumed bool
	rec              *sweep.Record
}

// runIndex runs one point (a SLURM array task) and updates the index.
func runIndex(ctx context.Context, st *sweep.Store, g *sweep.Grid, p sweep.Point, sf sweepFlags) error {
	log := io.Writer(stderr)
	if sf.quiet {
		log = io.Discard
	}
	fmt.Fprintf(log, "point %d of %s: %s\n", p.Index, g.File, p.Name)
	defer blasbackend.SerialProducts()() // as the local pool: see runPool
	start := time.Now()
	res, err := runPoint(ctx, st, g, p, log)
	if _, ierr := st.WriteIndex(nil); ierr != nil && err == nil {
		err = ierr
	}
	if errors.Is(err, context.Canceled) {
		return interrupted(err, "point %d %s interrupted; run the same command again to continue", p.Index, p.Name)
	}
	if err != nil {
		return fmt.Errorf("point %d %s: %w", p.Index, p.Name, err)
	}
	switch res.outcome {
	case outSkipped:
		fmt.Fprintf(log, "%s: already done\n", st.Final(p))
	case outBusy:
		fmt.Fprintf(log, "%s: another process is working on it; nothing done\n", p.Name)
	default:
		fmt.Fprintf(log, "%s: %s in %.1fs\n", st.Final(p), describe(res), time.Since(start).Seconds())
	}
	return nil
}

func describe(res pointResult) string {
	r := res.rec
	s := r.Verdict
	if r.Delta != nil {
		s += fmt.Sprintf(" Δ=%.3g", *r.Delta)
	}
	how := "train"
	if res.resumed {
		how = "train (resumed)"
	} else if !res.trained {
		how = "(trained before)"
	}
	return fmt.Sprintf("%-18s %s %.1fs + analysis %.1fs", s, how, r.TrainSeconds, r.AnalysisSeconds)
}

// runPool runs the points on sf.jobs workers of this process. All workers
// share the Go runtime, whose GOMAXPROCS (default: the cores) bounds the
// parallel matrix work of all jobs together.
func runPool(ctx context.Context, st *sweep.Store, g *sweep.Grid, pts []sweep.Point, sf sweepFlags) error {
	inv := &sweep.Invocation{Started: time.Now().UTC(), Selected: len(pts)}
	// One OpenBLAS thread for the whole sweep, in the pool and in a SLURM
	// task alike (runIndex): OpenBLAS's sums may depend on its thread count
	// in the last bits, and the count is process-global, so a point training
	// while a concurrent point's certificate held SerialProducts trained on
	// one thread part of the time; CI caught a batch_loss differing in its
	// last bit between the pool and SLURM. The points already run one per
	// core (--jobs), so the pool loses no parallelism.
	defer blasbackend.SerialProducts()()
	var todo []sweep.Point
	for _, p := range pts {
		if st.Done(p) {
			inv.Skipped++
		} else {
			todo = append(todo, p)
		}
	}
	log := io.Writer(stderr)
	bar := progress.New(os.Stderr, "sweep")
	if sf.quiet {
		log, bar = io.Discard, nil
	}
	if inv.Skipped > 0 {
		fmt.Fprintf(log, "sweep %s: %s, %d already done, %d to run on %s\n", g.File, plural(len(pts), "point"), inv.Skipped, len(todo), plural(min(sf.jobs, len(todo)), "worker"))
	} else {
		fmt.Fprintf(log, "sweep %s: %s on %s\n", g.File, plural(len(todo), "point"), plural(min(sf.jobs, len(todo)), "worker"))
	}
	var mu sync.Mutex
	finished, running, stopped := 0, 0, 0
	start := time.Now()
	eta := func() string {
		if finished == 0 || finished == len(todo) {
			return ""
		}
		el := time.Since(start)
		return " ETA " + time.Duration(float64(el)/float64(finished)*float64(len(todo)-finished)).Round(time.Second).String()
	}
	errs := runParentsFirst(ctx, todo, sf.jobs, func(ctx context.Context, p sweep.Point) error {
		mu.Lock()
		running++
		bar.Update(finished, len(todo), fmt.Sprintf("%d running", running))
		mu.Unlock()
		st.SetRunning(p, true)
		res, err := runPoint(ctx, st, g, p, io.Discard)
		st.SetRunning(p, false)
		_, ierr := st.WriteIndex(nil)
		mu.Lock()
		defer mu.Unlock()
		running--
		finished++
		bar.Done()
		prefix := fmt.Sprintf("[%*d/%d%s]", len(strconv.Itoa(len(todo))), finished, len(todo), eta())
		switch {
		case err != nil && errors.Is(err, context.Canceled):
			stopped++ // told in the one line about the interruption
		case err != nil:
			inv.Failed++
			fmt.Fprintf(log, "%s FAILED  %s: %v\n", prefix, p.Name, err)
		case res.outcome == outSkipped:
			inv.Skipped++
			fmt.Fprintf(log, "%s skip    %s (done meanwhile)\n", prefix, p.Name)
		case res.outcome == outBusy:
			inv.Busy++
			fmt.Fprintf(log, "%s busy    %s (another process holds it)\n", prefix, p.Name)
		default:
			inv.Analysed++
			if res.trained {
				inv.Trained++
			}
			if res.resumed {
				inv.Resumed++
			}
			fmt.Fprintf(log, "%s done    %-40s %s\n", prefix, p.Name, describe(res))
		}
		bar.Update(finished, len(todo), fmt.Sprintf("%d running", running))
		if err == nil {
			err = ierr
		}
		return err
	})
	bar.Done()
	inv.Seconds = time.Since(start).Seconds()
	idx, ierr := st.WriteIndex(inv)
	if ierr != nil {
		return ierr
	}
	if ctx.Err() != nil {
		midway := ""
		if stopped > 0 {
			midway = fmt.Sprintf(", %d stopped midway (they resume from their last checkpoint)", stopped)
		}
		return interrupted(ctx.Err(), "sweep interrupted: %d of %d points done (%d finished in this run)%s; run the same command again to continue",
			idx.Counts[sweep.StatusDone], g.Len(), inv.Analysed, midway)
	}
	fmt.Fprintf(log, "sweep done in %.1fs: %d trained (%d resumed), %d analysed, %d skipped, %d failed; index %s\n",
		inv.Seconds, inv.Trained, inv.Resumed, inv.Analysed, inv.Skipped, inv.Failed, filepath.Join(sf.out, sweep.IndexFile))
	var failed []string
	input := true
	for i, err := range errs {
		if err != nil {
			failed = append(failed, todo[i].Name)
			var ie inputError
			input = input && errors.As(err, &ie)
		}
	}
	if len(failed) > 0 {
		err := fmt.Errorf("sweep: %d of %d points failed: %s (errors in %s)", len(failed), len(todo), strings.Join(failed, ", "), filepath.Join(sf.out, sweep.IndexFile))
		if input {
			return badInput(err)
		}
		return err
	}
	return nil
}

// pointFlags applies the point's settings to a default training
// configuration and a default analysis configuration, and returns the
// latter too (its values are the point's record of analysis_flags).
func pointFlags(g *sweep.Grid, p sweep.Point) (trainFlags, analyzeFlags, *analysisConfig, error) {
	tf := trainFlags{cfg: rundir.DefaultTrainConfig()}
	var af analyzeFlags
	ac := defaultAnalysisConfig()
	for _, s := range p.Train {
		if p.Parent != nil {
			break // a spawn's at-step and seed: spawnPointFlags
		}
		if err := tf.cfg.Set(s.Flag, s.Value); err != nil {
			return tf, af, nil, badInputf("grid %s: --%s %s: %v", g.File, s.Flag, s.Value, err)
		}
	}
	for _, s := range g.Analysis {
		if err := keyed.Set(&ac, s.Flag, s.Value); err != nil {
			return tf, af, nil, badInputf("grid %s: analysis --%s %s: %v", g.File, s.Flag, s.Value, err)
		}
	}
	af, err := ac.flags()
	if err != nil {
		return tf, af, nil, badInputf("grid %s: %v", g.File, err)
	}
	return tf, af, &ac, nil
}

// runPoint trains and certifies one point: it trains into OUT/.work/NAME
// (certify train's OUT.partial + rename), resuming an interrupted attempt
// from its last checkpoint when its configuration is the point's, writes
// the point's record, analyses the run there, and renames the finished
// directory to OUT/NAME. A point already done is skipped; one locked by
// another process is left alone. A failure is recorded in OUT/.work/NAME.error.
func runPoint(ctx context.Context, st *sweep.Store, g *sweep.Grid, p sweep.Point, log io.Writer) (res pointResult, err error) {
	if st.Done(p) {
		return pointResult{outcome: outSkipped}, nil
	}
	unlock, err := st.LockPoint(p)
	if errors.Is(err, sweep.ErrBusy) {
		return pointResult{outcome: outBusy}, nil
	}
	if err != nil {
		return res, err
	}
	defer unlock()
	if st.Done(p) { // finished by another process before we got the lock
		return pointResult{outcome: outSkipped}, nil
	}
	if err := checkExisting(st, g, p); err != nil {
		return res, err
	}
	os.Remove(st.ErrorFile(p))
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			atomicfile.Write(st.ErrorFile(p), []byte(err.Error()+"\n"))
		}
	}()
	tf, af, ac, err := pointFlags(g, p)
	if err == nil && p.Parent != nil {
		tf, err = spawnPointFlags(st, g, p)
	}
	if err != nil {
		return res, err
	}
	stage := st.Stage(p)
	partial := stage + ".partial"
	rec, rerr := sweep.ReadRecord(stage)
	if rerr == nil {
		if ok, _ := rec.SameSettings(g, p); !ok || rec.TrainedAt.IsZero() {
			rec = nil
		}
	} else {
		rec = nil
	}
	if rec == nil {
		// Not trained yet (or staged with other settings): train.
		if err := os.RemoveAll(stage); err != nil {
			return res, err
		}
		tf.out, tf.force, tf.quiet = stage, true, true
		tf.resume = rundir.Resumable(partial, tf.cfg)
		t0 := time.Now()
		_, err := train(ctx, tf, log)
		if err != nil && tf.resume && !errors.Is(err, context.Canceled) {
			fmt.Fprintf(log, "%s: cannot resume (%v); training from the start\n", p.Name, err)
			tf.resume = false
			t0 = time.Now()
			_, err = train(ctx, tf, log)
		}
		if err != nil {
			return res, err
		}
		host, _ := os.Hostname()
		rec = &sweep.Record{Grid: g.File, GridSHA256: g.SHA256, Index: p.Index, Name: p.Name,
			Train: p.Train, Analysis: g.Analysis, TrainFlags: tf.cfg.Values(), AnalysisFlags: keyed.Values(ac),
			TrainedAt: time.Now().UTC(), Resumed: tf.resume, TrainSeconds: time.Since(t0).Seconds(), Host: host}
		if j := os.Getenv("SLURM_ARRAY_JOB_ID"); j != "" {
			rec.SlurmJob = j + "_" + os.Getenv("SLURM_ARRAY_TASK_ID")
		}
		if err := sweep.WriteRecord(stage, rec); err != nil {
			return res, err
		}
		res.trained, res.resumed = true, tf.resume
	}
	// Certify in the stage directory, recording the command as if run on
	// the final one.
	af.run, af.quiet, af.sweepPoint = stage, true, true
	command := []string{"certify", "--run", st.Final(p)}
	for _, s := range g.Analysis {
		command = append(command, "--"+s.Flag+"="+s.Value)
	}
	t0 := time.Now()
	r, err := analyze(ctx, af, command)
	if err != nil {
		return res, err
	}
	rec.AnalysisSeconds = time.Since(t0).Seconds()
	rec.Verdict = r.Verdict.String()
	d, dc := r.Delta, r.DeltaContinuous
	rec.Delta = &d
	if !math.IsNaN(dc) { // not computed (loss-only): absent, never 0 or NaN
		rec.DeltaContinuous = &dc
	}
	if err := sweep.WriteRecord(stage, rec); err != nil {
		return res, err
	}
	if err := os.Rename(stage, st.Final(p)); err != nil {
		return res, err
	}
	res.outcome, res.rec = outDone, rec
	return res, nil
}
