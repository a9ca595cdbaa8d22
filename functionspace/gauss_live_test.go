package functionspace

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/certify-mli/certify/internal/blasbackend"
	"github.com/certify-mli/certify/rundir"
)

// BenchmarkGaussLengthRun times Path.GaussLength with certify --run's
// defaults on the run directory CERTIFY_GAUSS_RUN (skipped when unset;
// CERTIFY_GAUSS_EXAMPLES examples, default 50; the BLAS backend
// CERTIFY_BLAS names; CERTIFY_GAUSS_INTERVALS intervals, default 294),
// with the one-sided jets at kinks carried from the grid point where the
// model allows (polyJets), or with CERTIFY_GAUSS_ROWS=1 from per-row
// passes with the right side carried from the left (carryJumps), or with
// CERTIFY_GAUSS_GENERAL=1 both sides evaluated (the general path).
// Profile it with -cpuprofile; docs/performance.md has the numbers on the
// benchmark network. CERTIFY_GAUSS_DUMP=file writes every example's Gauss
// length, error estimate and kink count there (one line each).
func BenchmarkGaussLengthRun(b *testing.B) {
	p, be, note := gaussLivePath(b)
	p.noJumps = os.Getenv("CERTIFY_GAUSS_GENERAL") == "1"
	p.noPoly = os.Getenv("CERTIFY_GAUSS_ROWS") == "1"
	m := 294
	if s := os.Getenv("CERTIFY_GAUSS_INTERVALS"); s != "" {
		m, _ = strconv.Atoi(s)
	}
	// CERTIFY_GAUSS_POINTS=k stops after k grid points (a cancellation)
	// and prints the CPU seconds spent per grid point so far.
	stop := 0
	if s := os.Getenv("CERTIFY_GAUSS_POINTS"); s != "" {
		stop, _ = strconv.Atoi(s)
	}
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		ctx, cancel := context.WithCancel(context.Background())
		cpu0 := cpuSeconds()
		o := GaussOptions{Intervals: m, MaxIntervals: 4096, Tol: 1e-4, RelTol: 1e-3}
		if stop > 0 {
			o.Progress = func(done, total int) {
				if done == stop {
					fmt.Printf("%d of %d grid points: %.2f CPU s, %.3f CPU s per grid point\n", done, total, cpuSeconds()-cpu0, (cpuSeconds()-cpu0)/float64(done))
					cancel()
				}
			}
		}
		// certify --run's defaults: 49·6 = 294 intervals for 50 α, tol 1e-4, rel 1e-3
		r, err := p.GaussLength(ctx, 0, 1, o)
		cancel()
		if stop > 0 && err == context.Canceled {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		fmt.Printf("Gauss length: %.2f CPU s\n", cpuSeconds()-cpu0)
		if f := os.Getenv("CERTIFY_GAUSS_DUMP"); f != "" {
			// every example's Gauss length, error estimate and kink count,
			// to compare two builds (docs/performance.md, gauss-5000)
			var buf []byte
			for i, g := range r.PerExample {
				buf = fmt.Appendf(buf, "%d %.17g %.17g %d\n", i, g, r.PerExampleError[i], r.KinkCount[i])
			}
			if err := os.WriteFile(f, buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		fmt.Printf("BLAS %s (%s); general %v, rows %v: mean %.12f ± %.3g, M = %d, %d kinks, %d extra rows\n", be, note, p.noJumps, p.noPoly, r.Mean, r.MeanError, r.Intervals, r.Kinks, r.ExtraRows)
	}
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// TestCubicFastLive compares the grid Gauss length with cubicFast against
// cubicJets' full-width carry (noFastCubic, the implementation before it)
// on the run directory CERTIFY_GAUSS_RUN (skipped when unset;
// CERTIFY_GAUSS_EXAMPLES examples, default 50; 294 intervals as
// certify --run's first grid): every example's Gauss length and error
// estimate to 1e-12 relative, the kink counts exactly.
func TestCubicFastLive(t *testing.T) {
	p, _, _ := gaussLivePath(t)
	o := GaussOptions{Intervals: 294, MaxIntervals: 294}
	c0 := cpuSeconds()
	r, err := p.GaussLength(context.Background(), 0, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	c1 := cpuSeconds()
	p.noFastCubic = true
	ref, err := p.GaussLength(context.Background(), 0, 1, o)
	if err != nil {
		t.Fatal(err)
	}
	c2 := cpuSeconds()
	if r.Kinks != ref.Kinks {
		t.Fatalf("%d kinks fast, %d full width", r.Kinks, ref.Kinks)
	}
	var worst, worstErr float64
	for i, g := range ref.PerExample {
		if r.KinkCount[i] != ref.KinkCount[i] {
			t.Fatalf("example %d: %d kinks fast, %d full width", i, r.KinkCount[i], ref.KinkCount[i])
		}
		worst = math.Max(worst, math.Abs(r.PerExample[i]-g)/g)
		worstErr = math.Max(worstErr, math.Abs(r.PerExampleError[i]-ref.PerExampleError[i])/g)
	}
	t.Logf("%d examples, %d kinks: mean %.15f fast, %.15f full width; largest relative difference %.3g (error estimates %.3g of the value); CPU %.1f s fast, %.1f s full width",
		p.N, r.Kinks, r.Mean, ref.Mean, worst, worstErr, c1-c0, c2-c1)
	if worst > 1e-12 || worstErr > 1e-12 {
		t.Fatalf("relative difference %.3g, error estimates %.3g: above 1e-12", worst, worstErr)
	}
}

// gaussLivePath is the live Gauss-length tests' preamble: the run directory
// CERTIFY_GAUSS_RUN (skipped when unset), its first CERTIFY_GAUSS_EXAMPLES
// examples (default 50), the BLAS backend CERTIFY_BLAS selected and in use;
// it returns the path with default options, the backend and its note.
func gaussLivePath(tb testing.TB) (*Path, *blasbackend.Backend, string) {
	tb.Helper()
	dir := os.Getenv("CERTIFY_GAUSS_RUN")
	if dir == "" {
		tb.Skip("CERTIFY_GAUSS_RUN not set")
	}
	be, note, err := blasbackend.Select(os.Getenv("CERTIFY_BLAS"))
	if err != nil {
		tb.Fatal(err)
	}
	be.Use()
	n := 50
	if s := os.Getenv("CERTIFY_GAUSS_EXAMPLES"); s != "" {
		if n, err = strconv.Atoi(s); err != nil || n <= 0 {
			tb.Fatalf("CERTIFY_GAUSS_EXAMPLES=%q: want a positive count", s)
		}
	}
	run, err := rundir.Read(dir, n)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return p, be, note
}

// TestKinkSplitLive compares the grid Gauss length with kinkJets' passes
// split into pieces of kinkBatchRows kinks (the default) against one pass
// per batch of examples (noKinkSplit, the implementation before the
// split) on the run directory CERTIFY_GAUSS_RUN (skipped when unset;
// CERTIFY_GAUSS_EXAMPLES examples, default 50) over [0, CERTIFY_SPLIT_HI]
// (default 1/2352, where a BatchNorm resnet's kinks crowd) on a grid of
// CERTIFY_SPLIT_INTERVALS intervals (default 2): every example's Gauss
// length and error estimate to 1e-12 relative, the kink counts exactly.
// With CERTIFY_SPLIT_REF=fork the reference is instead sideJets with one
// full pass per row (noFork) against forkedPairs.
func TestKinkSplitLive(t *testing.T) {
	p, _, _ := gaussLivePath(t)
	hi, m := 1.0/2352, 2
	if s := os.Getenv("CERTIFY_SPLIT_HI"); s != "" {
		hi, _ = strconv.ParseFloat(s, 64)
	}
	if s := os.Getenv("CERTIFY_SPLIT_INTERVALS"); s != "" {
		m, _ = strconv.Atoi(s)
	}
	o := GaussOptions{Intervals: m, MaxIntervals: m}
	c0 := cpuSeconds()
	r, err := p.GaussLength(context.Background(), 0, hi, o)
	if err != nil {
		t.Fatal(err)
	}
	c1 := cpuSeconds()
	if os.Getenv("CERTIFY_SPLIT_REF") == "fork" {
		p.noFork = true
	} else {
		p.noKinkSplit = true
	}
	ref, err := p.GaussLength(context.Background(), 0, hi, o)
	if err != nil {
		t.Fatal(err)
	}
	c2 := cpuSeconds()
	if r.Kinks != ref.Kinks {
		t.Fatalf("%d kinks split, %d in one pass", r.Kinks, ref.Kinks)
	}
	var worst, worstErr float64
	for i, g := range ref.PerExample {
		if r.KinkCount[i] != ref.KinkCount[i] {
			t.Fatalf("example %d: %d kinks split, %d in one pass", i, r.KinkCount[i], ref.KinkCount[i])
		}
		worst = math.Max(worst, math.Abs(r.PerExample[i]-g)/g)
		worstErr = math.Max(worstErr, math.Abs(r.PerExampleError[i]-ref.PerExampleError[i])/g)
	}
	t.Logf("%d examples, %d kinks on [0, %g] (%d intervals): mean %.15f split, %.15f one pass; largest relative difference %.3g (error estimates %.3g of the value); CPU %.1f s split, %.1f s one pass",
		p.N, r.Kinks, hi, m, r.Mean, ref.Mean, worst, worstErr, c1-c0, c2-c1)
	if worst > 1e-12 || worstErr > 1e-12 {
		t.Fatalf("relative difference %.3g, error estimates %.3g: above 1e-12", worst, worstErr)
	}
}
