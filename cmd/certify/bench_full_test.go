package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
	"github.com/certify-mli/certify/rundir"
	"gonum.org/v1/gonum/mat"
)

// TestPhaseTimes: with reports at known times, each phase gets the time
// since the previous report, and the time after the last one is "rest".
func TestPhaseTimes(t *testing.T) {
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	cpu := 7.0 // CPU seconds before the analysis: not counted
	p := newPhaseTimes(func() time.Time { return now }).withCPU(func() float64 { return cpu })
	for _, r := range []struct {
		after time.Duration
		cpu   float64
		stage string
	}{
		{2 * time.Second, 4, "loss on the grid"}, {1 * time.Second, 2, "loss on the grid"},
		{5 * time.Second, 1, "Gauss length"}, {5 * time.Second, 1, "Gauss length"},
		{30 * time.Second, 60, "certificate"}, // its first leaves, before its first report
		{4 * time.Second, 8, "certificate"},
	} {
		now = now.Add(r.after)
		cpu += r.cpu
		p.report(r.stage)
	}
	now = now.Add(500 * time.Millisecond)
	cpu += 0.25
	got := p.end()
	wantCPU := map[string]float64{"loss on the grid": 6, "Gauss length": 2, "certificate": 68, "rest": 0.25}
	for k, v := range wantCPU {
		if p.cpuSeconds[k] != v || len(p.cpuSeconds) != len(wantCPU) {
			t.Errorf("CPU per phase %v, want %v", p.cpuSeconds, wantCPU)
			break
		}
	}
	want := map[string]float64{"loss on the grid": 3, "Gauss length": 10, "certificate": 34, "rest": 0.5}
	if len(got) != len(want) {
		t.Fatalf("phases %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %g s, want %g", k, got[k], v)
		}
	}
}

// makeReLURun writes a small ReLU run (4-6-3, mse, 8 examples) whose paths
// have kinks, for the full analysis.
func makeReLURun(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	spec := nn.MLPSpec([]int{4, 6, 3}, "relu", "cross_entropy")
	m, err := nn.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	s0, _ := nn.Init(m, "pytorch", 1, 3)
	sT, _ := nn.Init(m, "pytorch", 1, 4)
	x := mat.NewDense(8, 4, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = math.Cos(1.3 * float64(i))
	}
	writeRunDir(t, dir, spec, s0, sT, "F64", x, nn.Targets{Labels: []int{0, 1, 2, 0, 1, 2, 0, 1}})
	return dir
}

// TestBenchFullAgreesWithTorch: `bench --full --torch` on a small ReLU run
// times the same analysis `certify --run` does by default (same verdict,
// Δ bounds, corner-aware Gauss length and continuous Δ as the command's
// report), agrees with PyTorch on the loss and the trapezoid Gauss lengths,
// and reports the ratio, the phases and the peak memory.
func TestBenchFullAgreesWithTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PyTorch (slow to import)")
	}
	needTorch(t)
	dir := makeReLURun(t)
	out := filepath.Join(t.TempDir(), "res.json")
	code, _, errs := runCLI(t, "bench", "--run", dir, "--examples", "8", "--alphas", "9", "--backend", "go",
		"--gemm=false", "--full", "--torch", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r benchResult
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Full == nil || r.Torch == nil || !r.Torch.Agree || r.Examples != 8 || r.Alphas != 9 {
		t.Fatalf("result %s", b)
	}
	if r.Torch.Ratio != r.Seconds/r.Torch.Seconds || r.PeakRSSBytes <= 0 || r.AnalysisGFLOP != 0 {
		t.Errorf("ratio %g (certify %g s, torch %g s), peak %d bytes, GFLOP %g (the loss-only count must not be given for --full)",
			r.Torch.Ratio, r.Seconds, r.Torch.Seconds, r.PeakRSSBytes, r.AnalysisGFLOP)
	}
	for _, ph := range []string{"loss on the grid", "Gauss length", "certificate", "rest"} {
		if _, ok := r.Full.PhaseSeconds[ph]; !ok {
			t.Errorf("no time for phase %q: %v", ph, r.Full.PhaseSeconds)
		}
	}
	var sum float64
	for _, s := range r.Full.PhaseSeconds {
		sum += s
	}
	if math.Abs(sum-r.AnalyzeSeconds) > 0.05*r.AnalyzeSeconds+0.01 {
		t.Errorf("phases add up to %g s, the analysis took %g s", sum, r.AnalyzeSeconds)
	}
	for _, s := range []string{"the full default analysis", "phases", "verdict", "ratio", "agree"} {
		if !strings.Contains(errs, s) {
			t.Errorf("output lacks %q:\n%s", s, errs)
		}
	}

	// The same run through the command's default analysis.
	code, so, errs := runCLI(t, "--run", dir, "--alphas", "9", "--json", "--no-figures")
	if code != 0 {
		t.Fatalf("certify --run: exit %d: %s", code, errs)
	}
	var rep struct {
		Verdict         string      `json:"verdict"`
		DeltaBounds     *[2]float64 `json:"delta_bounds"`
		DeltaContinuous float64     `json:"delta_continuous"`
		GaussMean       float64     `json:"gauss_length_mean"`
		GaussStacked    float64     `json:"gauss_length_stacked"`
		Certificate     struct {
			Leaves int `json:"leaves"`
		} `json:"certificate"`
	}
	if err := json.Unmarshal([]byte(so), &rep); err != nil {
		t.Fatal(err)
	}
	f := r.Full
	if rep.Verdict != f.Verdict || rep.DeltaBounds == nil || f.DeltaBounds == nil || *rep.DeltaBounds != *f.DeltaBounds ||
		rep.DeltaContinuous != f.DeltaContinuous || rep.GaussMean != f.GaussMean || rep.GaussStacked != f.GaussStacked ||
		rep.Certificate.Leaves != f.Leaves {
		t.Errorf("bench --full found %+v; certify --run %+v", *f, rep)
	}
	if f.GaussMean <= 0 {
		t.Errorf("corner-aware Gauss length %g", f.GaussMean)
	}
}

// TestGridAnalysisIsAnalyzeGrid checks bench's --grid-only timing
// (gridAnalysis) against certify.Analyze with LossOnly on the same path:
// the grid, L, L′, accuracy at every α and both trapezoid Gauss lengths
// must be bit for bit the loss-only report's, for a cross-entropy and an
// mse run (Analyze keeps more of the samples for mse).
func TestGridAnalysisIsAnalyzeGrid(t *testing.T) {
	for _, loss := range []string{"cross_entropy", "mse"} {
		run, err := rundir.Read(makeRun(t, loss), 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := certify.Analyze(context.Background(), p, certify.Options{Alphas: 9, LossOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var reports int
		got, err := gridAnalysis(context.Background(), p, 9, func(stage string, done, total int) {
			if stage != "loss on the grid" || done != reports+1 || total != 9 {
				t.Errorf("%s: progress %q %d/%d after %d reports", loss, stage, done, total, reports)
			}
			reports++
		})
		if err != nil {
			t.Fatal(err)
		}
		if reports != 9 {
			t.Errorf("%s: %d progress reports, want 9", loss, reports)
		}
		if !reflect.DeepEqual(got.Alphas, want.Alphas) || !reflect.DeepEqual(got.Loss, want.Loss) ||
			!reflect.DeepEqual(got.DLoss, want.DLoss) || !reflect.DeepEqual(got.Accuracy, want.Accuracy) {
			t.Errorf("%s: grid-only α %v L %v L′ %v accuracy %v; Analyze α %v L %v L′ %v accuracy %v", loss,
				got.Alphas, got.Loss, got.DLoss, got.Accuracy, want.Alphas, want.Loss, want.DLoss, want.Accuracy)
		}
		if got.GaussLengthMeanTrapezoid != want.GaussLengthMeanTrapezoid || got.GaussLengthStackedTrapezoid != want.GaussLengthStackedTrapezoid ||
			!(want.GaussLengthMeanTrapezoid > 0) {
			t.Errorf("%s: trapezoid Gauss lengths %v, %v; Analyze %v, %v", loss, got.GaussLengthMeanTrapezoid,
				got.GaussLengthStackedTrapezoid, want.GaussLengthMeanTrapezoid, want.GaussLengthStackedTrapezoid)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	run, err := rundir.Read(makeRun(t, "mse"), 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := functionspace.New(run.Model, run.Theta0, run.ThetaT, run.X, run.Targets, functionspace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gridAnalysis(ctx, p, 9, nil); err != context.Canceled {
		t.Errorf("cancelled: err %v, want context.Canceled", err)
	}
}

// TestBenchFullLogsProgress: `certify bench --full` with its log going to a
// file (SLURM, nohup) writes periodic progress lines naming the analysis's
// phases, as `certify --run` does; it wrote nothing until the end, so a
// full analysis at 5000 examples was silent for many minutes.
func TestBenchFullLogsProgress(t *testing.T) {
	saved := benchLogInterval
	benchLogInterval = time.Millisecond // a line per millisecond of work
	defer func() { benchLogInterval = saved }()
	dir := makeReLURun(t)
	code, _, errs := runCLI(t, "bench", "--run", dir, "--examples", "8", "--alphas", "9", "--backend", "go",
		"--gemm=false", "--full", "--cache", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	line := regexp.MustCompile(`^\[[0-9.hms]+\] bench: (.*)$`)
	phases := map[string]bool{}
	for _, l := range strings.Split(errs, "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		for _, ph := range []string{"Gauss length", "certificate"} {
			if strings.Contains(m[1], ph) {
				phases[ph] = true
			}
		}
	}
	for _, ph := range []string{"Gauss length", "certificate"} { // the longest phases: each spans many intervals
		if !phases[ph] {
			t.Errorf("no progress line of the phase %q in bench's log:\n%s", ph, errs)
		}
	}
}

// TestBenchFullTolerance: `bench --full --tolerance T` decides the verdict
// at T as `certify --run --tolerance T` does, and records T in its JSON
// result and its log. The run's Δ lies between 0 and 1e-3 (checked below
// from certify --run's own verdicts), so a bench that ignored the flag would
// report the tolerance-0 verdict. Without --full, or with a tolerance that is
// negative or not finite, the flag is refused naming it.
func TestBenchFullTolerance(t *testing.T) {
	dir := makeReLURun(t)
	verdictAt := func(tol string) string {
		code, so, errs := runCLI(t, "--run", dir, "--alphas", "9", "--json", "--no-figures", "--tolerance", tol)
		if code != 0 {
			t.Fatalf("certify --run --tolerance %s: exit %d: %s", tol, code, errs)
		}
		var rep struct {
			Verdict string `json:"verdict"`
		}
		if err := json.Unmarshal([]byte(so), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Verdict
	}
	at0, at3 := verdictAt("0"), verdictAt("1e-3")
	if at0 == at3 {
		t.Fatalf("the run's verdict is %s at tolerance 0 and 1e-3: the test cannot tell whether bench passes the tolerance on", at0)
	}
	for _, c := range []struct {
		args    []string
		tol     float64
		verdict string
	}{{nil, 0, at0}, {[]string{"--tolerance", "1e-3"}, 1e-3, at3}, {[]string{"--tolerance=0"}, 0, at0}} {
		out := filepath.Join(t.TempDir(), "res.json")
		args := append([]string{"bench", "--run", dir, "--examples", "8", "--alphas", "9", "--backend", "go",
			"--gemm=false", "--full", "--cache", t.TempDir(), "--out", out}, c.args...)
		code, _, errs := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errs)
		}
		var r benchResult
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Full == nil || r.Full.Tolerance != c.tol || r.Full.Verdict != c.verdict {
			t.Errorf("%v: result %s; want tolerance %g and verdict %s", c.args, b, c.tol, c.verdict)
		}
		if want := fmt.Sprintf("verdict %s at tolerance %g", c.verdict, c.tol); !strings.Contains(errs, want) {
			t.Errorf("%v: log lacks %q:\n%s", c.args, want, errs)
		}
	}
	for _, args := range [][]string{
		{"--tolerance", "1e-3"},                // the loss-only analysis has no certificate to decide
		{"--grid-only", "--tolerance", "1e-3"}, // nor has the grid alone
		{"--full", "--tolerance", "-1e-3"},     // a negative tolerance
		{"--full", "--tolerance", "NaN"},       // not a number
		{"--full", "--tolerance", "+Inf"},      // not finite
	} {
		code, _, errs := runCLI(t, append([]string{"bench", "--run", dir, "--gemm=false", "--backend", "go"}, args...)...)
		if code != 2 || !strings.Contains(errs, "bench: --tolerance") {
			t.Errorf("%v: exit %d, want 2 with an error naming bench's --tolerance:\n%s", args, code, errs)
		}
	}
}
