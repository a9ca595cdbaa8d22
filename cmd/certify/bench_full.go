package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/progress"
	"github.com/certify-mli/certify/rundir"
)

// fullSide is what `certify bench --full` adds to the result: the full
// default analysis of `certify --run` (certificate, corner-aware Gauss
// length, continuous Δ, per-layer L′) was timed instead of --loss-only.
type fullSide struct {
	// Tolerance is the largest rise Δ the analysis still called monotone
	// (bench --tolerance, as certify --run's; the report's tolerance).
	Tolerance          float64     `json:"tolerance"`
	Verdict            string      `json:"verdict"`
	DeltaBounds        *[2]float64 `json:"delta_bounds"` // the certificate's enclosure of the continuous Δ
	Leaves             int         `json:"certificate_leaves"`
	Unsettled          int         `json:"certificate_unsettled"`
	CertificateSeconds float64     `json:"certificate_seconds"` // the certificate's own clock
	DeltaContinuous    float64     `json:"delta_continuous"`
	GaussMean          float64     `json:"gauss_length_mean"` // corner-aware, per example
	GaussMeanError     float64     `json:"gauss_length_mean_error"`
	GaussStacked       float64     `json:"gauss_length_stacked"`
	GaussIntervals     int         `json:"gauss_length_intervals"`
	// PhaseSeconds is the wall time of each phase the analysis reports
	// (phaseTimes: each up to its last progress report); the time after the
	// last report is under "rest".
	PhaseSeconds map[string]float64 `json:"phase_seconds"`
	// PhaseCPUSeconds is the process's user+system CPU time of each phase,
	// split at the same reports (the measure to compare on a loaded machine).
	PhaseCPUSeconds map[string]float64 `json:"phase_cpu_seconds,omitempty"`
	// PeakRSSReset says that the process's peak resident memory was reset
	// before the analysis (/proc/self/clear_refs), so peak_rss_bytes is the
	// analysis's own; otherwise it includes what ran before (loading, the
	// products of --gemm).
	PeakRSSReset bool `json:"peak_rss_reset"`
}

// fullAnalysisOptions are the options of `certify --run` with no flags but
// --alphas: the full default analysis, certificate included.
func fullAnalysisOptions(alphas int) (certify.Options, error) {
	var af analyzeFlags
	if err := parseFlags(newAnalyzeFlagSet(&af), nil); err != nil {
		return certify.Options{}, err
	}
	o := af.opt
	o.Alphas = alphas
	o.Certificate = !af.noCert && !o.LossOnly
	return o, nil
}

// phaseTimes adds up wall time per phase of an analysis from its progress
// reports: the time since the previous report (or the start) goes to the
// phase of the report. So each phase runs up to its last report, and work
// before a phase's first report (the certificate's first leaves, the
// conditions after the Gauss length) counts to that phase.
//
// With cpu set (the process's CPU seconds so far), the CPU time is split
// the same way into cpuSeconds.
type phaseTimes struct {
	now        func() time.Time
	start      time.Time
	last       time.Time
	seconds    map[string]float64
	cpu        func() float64
	lastCPU    float64
	cpuSeconds map[string]float64
}

func newPhaseTimes(now func() time.Time) *phaseTimes {
	t := now()
	return &phaseTimes{now: now, start: t, last: t, seconds: map[string]float64{}}
}

// withCPU makes p split the CPU seconds cpu reports too.
func (p *phaseTimes) withCPU(cpu func() float64) *phaseTimes {
	p.cpu, p.lastCPU, p.cpuSeconds = cpu, cpu(), map[string]float64{}
	return p
}

// report is a progress report of stage (certify.Options.Progress).
func (p *phaseTimes) report(stage string) {
	t := p.now()
	p.seconds[stage] += t.Sub(p.last).Seconds()
	p.last = t
	if p.cpu != nil {
		c := p.cpu()
		p.cpuSeconds[stage] += c - p.lastCPU
		p.lastCPU = c
	}
}

// end closes the timing: the time since the last report goes to "rest".
func (p *phaseTimes) end() map[string]float64 {
	p.seconds["rest"] += p.now().Sub(p.last).Seconds()
	p.last = p.now()
	if p.cpu != nil {
		c := p.cpu()
		p.cpuSeconds["rest"] += c - p.lastCPU
		p.lastCPU = c
	}
	return p.seconds
}

// timedAnalysis is one timed analysis of the benchmark.
type timedAnalysis struct {
	report                *certify.Report
	path                  *functionspace.Path
	setup, analyze, total float64 // seconds: functionspace.New, certify.Analyze, both
	cpu                   float64 // user+system CPU seconds of the process during both
	phases                map[string]float64
	phaseCPU              map[string]float64 // CPU seconds per phase
	gridCPU               float64            // CPU seconds of Analyze up to its last "loss on the grid" report
	peakRSS               int64              // VmHWM after the analysis
	peakReset             bool               // VmHWM was reset before it
	load                  [2]float64
}

// timeAnalysis times functionspace.New (the first-layer cache) and
// certify.Analyze with opt on run, with a CPU profile to cpuprofile when it
// is not empty, resetting the process's peak resident memory first where
// Linux allows.
//
// With gridOnly it times gridAnalysis (the grid's passes alone) in place of
// certify.Analyze.
//
// bar (nil: none) shows the analysis's progress, phase by phase, as
// `certify --run` does.
func timeAnalysis(ctx context.Context, run *rundir.Run, popt functionspace.Options, opt certify.Options, cpuprofile string, gridOnly bool, bar *progress.Bar) (*timedAnalysis, error) {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	ta := &timedAnalysis{peakReset: resetPeakRSS()}
	ta.load[0] = loadAverage()
	cpu0 := cpuSeconds()
	t0 := time.Now()
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, popt)
	if err != nil {
		return nil, badInput(err)
	}
	boundHeap()
	t1 := time.Now()
	pt := newPhaseTimes(time.Now).withCPU(cpuSeconds)
	cpuA := cpuSeconds()
	opt.Progress = func(stage string, done, total int) {
		pt.report(stage)
		if stage == "loss on the grid" { // the grid is the analysis's first phase
			ta.gridCPU = cpuSeconds() - cpuA
		}
		ph, total := analysisPhase(stage, total)
		bar.SetPhase(ph)
		bar.Update(done, total, "")
	}
	var r *certify.Report
	if gridOnly {
		r, err = gridAnalysis(ctx, p, opt.Alphas, opt.Progress)
	} else {
		r, err = certify.Analyze(ctx, p, opt)
	}
	if err != nil && ctx.Err() != nil {
		return nil, interrupted(err, "bench interrupted during certify's analysis; nothing written")
	}
	if err != nil {
		return nil, err
	}
	t2 := time.Now()
	ta.phases = pt.end()
	ta.phaseCPU = pt.cpuSeconds
	ta.cpu = cpuSeconds() - cpu0
	ta.report, ta.path = r, p
	ta.setup, ta.analyze, ta.total = t1.Sub(t0).Seconds(), t2.Sub(t1).Seconds(), t2.Sub(t0).Seconds()
	ta.peakRSS = peakRSS()
	ta.load[1] = loadAverage()
	return ta, nil
}

// newFullSide collects what the full analysis found.
func newFullSide(ta *timedAnalysis) *fullSide {
	r := ta.report
	f := &fullSide{Tolerance: r.Tolerance, Verdict: r.Verdict.String(), DeltaBounds: r.DeltaBounds, DeltaContinuous: r.DeltaContinuous,
		GaussMean: r.GaussLengthMean, GaussMeanError: r.GaussLengthMeanError, GaussStacked: r.GaussLengthStacked,
		PhaseSeconds: ta.phases, PhaseCPUSeconds: ta.phaseCPU, PeakRSSReset: ta.peakReset}
	if r.GaussLengthIntervals != nil { // nil only under --loss-only, which the full analysis never sets
		f.GaussIntervals = *r.GaussLengthIntervals
	}
	if c := r.Certificate; c != nil {
		f.Leaves, f.Unsettled, f.CertificateSeconds = c.Leaves, c.UnsettledCount, c.Seconds
	}
	return f
}

// printFull prints the full analysis's findings and where its time went.
func printFull(log io.Writer, f *fullSide) {
	type ph struct {
		name string
		s    float64
	}
	var ps []ph
	for k, v := range f.PhaseSeconds {
		ps = append(ps, ph{k, v})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].s > ps[j].s })
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %.2f s", p.name, p.s))
	}
	fmt.Fprintf(log, "          phases (each up to its last progress report): %s; the certificate's own clock %.2f s\n", strings.Join(parts, ", "), f.CertificateSeconds)
	if f.PhaseCPUSeconds != nil {
		parts = parts[:0]
		for _, p := range ps {
			parts = append(parts, fmt.Sprintf("%s %.2f s", p.name, f.PhaseCPUSeconds[p.name]))
		}
		fmt.Fprintf(log, "          CPU per phase: %s\n", strings.Join(parts, ", "))
	}
	bounds := "no certificate"
	if f.DeltaBounds != nil {
		bounds = fmt.Sprintf("Δ ∈ [%.4g, %.4g], %d leaves, %d unsettled", f.DeltaBounds[0], f.DeltaBounds[1], f.Leaves, f.Unsettled)
	}
	fmt.Fprintf(log, "          verdict %s at tolerance %g (%s); Δ continuous %.4g; Gauss length mean %.8g ± %.1g, stacked %.8g rad (%d intervals)\n",
		f.Verdict, f.Tolerance, bounds, f.DeltaContinuous, f.GaussMean, f.GaussMeanError, f.GaussStacked, f.GaussIntervals)
}

// resetPeakRSS resets the process's peak resident set size (VmHWM) to the
// present one by writing 5 to /proc/self/clear_refs (Linux ≥ 4.0), and
// reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// gridAnalysis is the grid's part of certify.Analyze alone, the paper's
// method: functionspace.Path.AtGrid (At, or the carried second layer) at each of the alphas points of
// certify.Grid (loss, accuracy, turning rates) and the trapezoid Gauss
// lengths of those samples (functionspace.GaussLengthTrapezoid), the same
// calls Analyze makes, without what Analyze does after them (the interval
// proof of a witness the grid shows, the conditions). Its report holds the
// grid, losses, L′, accuracies and the two trapezoid Gauss lengths only.
// progress, if not nil, gets "loss on the grid" after every α. It returns
// ctx.Err() when cancelled.
func gridAnalysis(ctx context.Context, p *functionspace.Path, alphas int, progress func(stage string, done, total int)) (*certify.Report, error) {
	r := &certify.Report{Alphas: certify.Grid(alphas)}
	samples := make([]*functionspace.Sample, 0, alphas)
	err := p.AtGrid(ctx, r.Alphas, func(j int, s *functionspace.Sample) error {
		r.Loss = append(r.Loss, s.Loss)
		r.DLoss = append(r.DLoss, s.DLoss)
		r.Accuracy = append(r.Accuracy, s.Accuracy)
		// The trapezoid reads the turning rates only (as in Analyze).
		s.Output, s.Velocity, s.Acceleration, s.ExampleLoss, s.ExampleDLoss = nil, nil, nil, nil, nil
		samples = append(samples, s)
		if progress != nil {
			progress("loss on the grid", j+1, alphas)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid = functionspace.GaussLengthTrapezoid(samples)
	return r, nil
}
