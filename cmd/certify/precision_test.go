package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/nn"
)

// TestAnalyzePrecisionFlag: --precision float32 reaches the report and the
// summary, its losses agree with float64's to 1e-5 relative, and any other
// value is refused before any work (exit 2).
func TestAnalyzePrecisionFlag(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	reports := map[string]*certify.Report{}
	for _, prec := range []string{"float64", "float32"} {
		out := filepath.Join(t.TempDir(), prec)
		code, sum, errs := runCLI(t, "--run", dir, "--alphas", "5", "--no-figures", "--loss-only", "--precision", prec, "--out", out)
		if code != 0 {
			t.Fatalf("--precision %s: exit %d: %s", prec, code, errs)
		}
		if got := strings.Contains(sum, "precision          float32"); got != (prec == "float32") {
			t.Errorf("--precision %s: summary states float32: %v\n%s", prec, got, sum)
		}
		r, err := certify.ReadReport(filepath.Join(out, "certificate.json"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Precision != prec {
			t.Errorf("--precision %s: report precision %q", prec, r.Precision)
		}
		reports[prec] = r
	}
	for j, l := range reports["float64"].Loss {
		if e := math.Abs(reports["float32"].Loss[j]-l) / l; e > 1e-5 {
			t.Errorf("α=%v: loss %v (float32), %v: relative %.2g", reports["float64"].Alphas[j], reports["float32"].Loss[j], l, e)
		}
	}
	for _, bad := range []string{"float16", "double", ""} {
		if code, _, errs := runCLI(t, "--run", dir, "--precision", bad); code != 2 || !strings.Contains(errs, "--precision") {
			t.Errorf("--precision %q: exit %d (%s), want 2 naming the flag", bad, code, errs)
		}
	}
	if code, _, errs := runCLI(t, "bench", "--run", dir, "--precision", "half"); code != 2 || !strings.Contains(errs, "--precision") {
		t.Errorf("bench --precision half: exit %d (%s), want 2", code, errs)
	}
}

// TestBenchFloat32AgreesWithTorch runs the benchmark in float32 on a small run
// against PyTorch in float32 (torchref.py --dtype float32): the check must
// pass with the float32 tolerances (benchTolerances) and the JSON says
// float32; the loss must also differ from the float64 PyTorch value by more
// than float64 rounding (both sides really ran in float32).
func TestBenchFloat32AgreesWithTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PyTorch (slow to import)")
	}
	needTorch(t)
	dir := makeRun(t, "cross_entropy")
	res := map[string]benchResult{}
	for _, prec := range []string{"float32", "float64"} {
		out := filepath.Join(t.TempDir(), "res.json")
		code, _, errs := runCLI(t, "bench", "--run", dir, "--examples", "6", "--alphas", "7", "--backend", "go",
			"--gemm=false", "--torch", "--precision", prec, "--out", out)
		if code != 0 {
			t.Fatalf("--precision %s: exit %d: %s", prec, code, errs)
		}
		var r benchResult
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Torch == nil || !r.Torch.Agree || r.Precision != prec {
			t.Fatalf("--precision %s: result %s", prec, b)
		}
		t.Logf("%s: loss max rel %.2g, Gauss mean rel %.2g, stacked rel %.2g, accuracy max diff %g",
			prec, r.Torch.LossMaxRel, r.Torch.GaussMeanRel, r.Torch.GaussStackRel, r.Torch.AccuracyMaxDiff)
		res[prec] = r
	}
	if d := relDiff(res["float32"].LossFirst, res["float64"].LossFirst); d == 0 || d > 1e-5 {
		t.Errorf("L(0): float32 %v, float64 %v: relative %.2g, want in (0, 1e-5]", res["float32"].LossFirst, res["float64"].LossFirst, d)
	}
}

// TestSummaryNotes: the stacked Gauss length's note blames kinks only for
// a network that has them, and the float32 close-call line counts pairs in
// the singular and the plural.
func TestSummaryNotes(t *testing.T) {
	relu := t.TempDir()
	if err := nn.MLPSpec([]int{4, 5, 3}, "relu", "mse").Write(filepath.Join(relu, "model.json")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, note string
		pairs     int
		count     string
	}{
		{makeRun(t, "mse"), "stacked 0.0000 rad (not converged on the finest grid)", 1, "1 grid pair within"}, // tanh
		{relu, "(not converged on the finest grid: more kinks than grid intervals)", 3, "3 grid pairs within"},
	} {
		notConverged := false
		r := &certify.Report{Loss: []float64{1, 0.5}, Accuracy: []float64{0, 1}, Alphas: []float64{0, 1}, GaussLengthStackedConverged: &notConverged,
			Precision: "float32", Float32CloseCalls: &certify.CloseCalls{Pairs: c.pairs, Settled: c.pairs, Alphas: 2}}
		var b strings.Builder
		printSummary(&b, c.dir, r)
		if !strings.Contains(b.String(), c.note) || !strings.Contains(b.String(), c.count) {
			t.Errorf("%s: summary\n%s\nwant %q and %q", c.dir, b.String(), c.note, c.count)
		}
	}
}
