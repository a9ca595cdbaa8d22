package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/nn"
)

// TestAnalysisFlops checks the operation count against the closed form of
// THEORY.md §2 for the benchmark's 784-1024-1024-10 MLP on 5000 examples and
// 50 α: the first layer's W x and ΔW x once (cached), then per α and per
// later dense layer 2·3n·in·out + 2·2n·in·out = 10·n·in·out.
func TestAnalysisFlops(t *testing.T) {
	m, err := nn.Build(nn.MLPSpec([]int{784, 1024, 1024, 10}, "relu", "cross_entropy"))
	if err != nil {
		t.Fatal(err)
	}
	want := 4.0*5000*784*1024 + 50*10*5000*(1024*1024+1024*10)
	if got := analysisFlops(m, 5000, 50, true); got != want {
		t.Errorf("5000 examples: %g flops, want %g", got, want)
	}
	// Without the first-layer cache (functionspace.Path.FirstLayerCached
	// false): W x and ΔW x are redone at every α.
	want = 50*4.0*5000*784*1024 + 50*10*5000*(1024*1024+1024*10)
	if got := analysisFlops(m, 5000, 50, false); got != want {
		t.Errorf("5000 examples, first layer not cached: %g flops, want %g", got, want)
	}
}

func TestRelDiff(t *testing.T) {
	for _, c := range []struct{ a, b, want float64 }{{1, 1, 0}, {0, 0, 0}, {2, 1, 0.5}, {-1, 1, 2}, {0, 3, 1}} {
		if got := relDiff(c.a, c.b); got != c.want {
			t.Errorf("relDiff(%g, %g) = %g, want %g", c.a, c.b, got, c.want)
		}
	}
}

// TestBenchAgreesWithTorch runs the benchmark on a small run with the real
// PyTorch oracle: the check must pass (loss to 1e-9, trapezoid Gauss lengths
// to 1e-6, same accuracy and grid). PyTorch's side is torchref's --one-pass
// (loss and accuracy from the nested jvp's own forward values), once with
// all 6 examples in one jvp and once in chunks of 4 and 2, whose losses,
// accuracies and Gauss lengths are combined across the chunks.
func TestBenchAgreesWithTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PyTorch (slow to import)")
	}
	needTorch(t)
	dir := makeRun(t, "cross_entropy")
	for _, chunk := range []int{0, 4} {
		out := filepath.Join(t.TempDir(), "res.json")
		code, _, errs := runCLI(t, "bench", "--run", dir, "--examples", "6", "--alphas", "7", "--backend", "go",
			"--gemm=false", "--torch", "--torch-chunk", strconv.Itoa(chunk), "--out", out)
		if code != 0 {
			t.Fatalf("chunk %d: exit %d: %s", chunk, code, errs)
		}
		var r benchResult
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if r.Torch == nil || !r.Torch.Agree || r.Examples != 6 || r.Alphas != 7 || r.Backend != "go" || r.Precision != "float64" {
			t.Fatalf("chunk %d: result %s", chunk, b)
		}
		wantChunk := chunk
		if chunk == 0 {
			wantChunk = 6
		}
		if !r.Torch.OnePass || r.Torch.Chunk != wantChunk || r.Torch.LossSeconds != 0 {
			t.Errorf("chunk %d: PyTorch side one_pass %v, chunk %d (want %d), loss pass %g s (want none)",
				chunk, r.Torch.OnePass, r.Torch.Chunk, wantChunk, r.Torch.LossSeconds)
		}
		if r.Torch.LossMaxRel > 1e-12 || r.Torch.Seconds <= 0 || r.Seconds <= 0 {
			t.Errorf("chunk %d: loss rel diff %g, torch %g s, certify %g s", chunk, r.Torch.LossMaxRel, r.Torch.Seconds, r.Seconds)
		}
		if c := r.Torch.ComputeCPUSeconds; c == nil || *c <= 0 || *c > r.Torch.ProcessCPUSeconds || r.Torch.ComputeCPURatio == nil {
			t.Errorf("chunk %d: PyTorch passes' CPU %v s of the process's %g s, ratio %v", chunk, c, r.Torch.ProcessCPUSeconds, r.Torch.ComputeCPURatio)
		}
		if !strings.Contains(errs, "ratio") || !strings.Contains(errs, "agree") {
			t.Errorf("chunk %d: output lacks the ratio or the check:\n%s", chunk, errs)
		}
		// the accuracy part of the check line says agreement as such (a
		// first user read "accuracy differs at 0 α (max 0 ≤ 0)" as a failure)
		if (r.Torch.AccuracyDiffer == 0) != strings.Contains(errs, "accuracy agrees at every α") || strings.Contains(errs, "differs at 0 α") {
			t.Errorf("chunk %d: accuracy differs at %d α, but the check line says:\n%s", chunk, r.Torch.AccuracyDiffer, errs)
		}
	}
}

// TestBenchDetectsDisagreement gives the benchmark a fake "PyTorch" whose
// losses are 1e-8 relative off certify's on the same α: it must fail.
func TestBenchDetectsDisagreement(t *testing.T) {
	dir := makeRun(t, "cross_entropy")
	fake := filepath.Join(t.TempDir(), "fake.sh")
	// Seven α, j/6; losses from a first honest run are not needed: any value
	// 1e-8 relative off the true L(α) fails, and so does any value far off.
	script := `#!/bin/sh
echo '{"torch":"fake","alphas":[0,0.16666666666666666,0.3333333333333333,0.5,0.6666666666666666,0.8333333333333334,1],` +
		`"loss":[1,1,1,1,1,1,1],"accuracy":[0,0,0,0,0,0,0],"gauss_length_mean_trapezoid":1,` +
		`"gauss_length_stacked_trapezoid":1,"loss_seconds":1,"gauss_seconds":1,"threads":2}'
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, full := range []string{"--full=false", "--full"} {
		code, _, errs := runCLI(t, "bench", "--run", dir, "--examples", "6", "--alphas", "7", "--backend", "go",
			"--gemm=false", full, "--torch", "--python", "/bin/sh", "--torchref", fake)
		if code == 0 || !strings.Contains(errs, "disagree") || !strings.Contains(errs, "DISAGREE") {
			t.Fatalf("%s: exit %d, a wrong oracle was not reported:\n%s", full, code, errs)
		}
	}
}

// TestAccuracyCheckWording: bench's check line says "accuracy agrees at
// every α" when no grid α differs, and otherwise how many differ and by
// how much against the tolerance.
func TestAccuracyCheckWording(t *testing.T) {
	for _, c := range []struct {
		differ   int
		max, tol float64
		want     string
	}{
		{0, 0, 0, "accuracy agrees at every α"},
		{0, 0, 0.002, "accuracy agrees at every α"},
		{2, 0.0004, 0.002, "accuracy differs at 2 α by at most 0.0004 (≤ 0.002)"},
		{1, 0.5, 0, "accuracy differs at 1 α by at most 0.5 (≤ 0)"},
	} {
		if got := accuracyCheck(c.differ, c.max, c.tol); got != c.want {
			t.Errorf("accuracyCheck(%d, %g, %g) = %q, want %q", c.differ, c.max, c.tol, got, c.want)
		}
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},                                // neither --run nor --build
		{"bench", "--run", "x", "--build"},       // both
		{"bench", "--run", "x", "--alphas", "1"}, // too few α
		{"bench", "--run", "x", "--backend", "mkl"},
		{"bench", "--run", "x", "--torch-chunk", "-1"},
		{"bench", "--run", "x", "--grid-only", "--full"},
	} {
		if code, _, errs := runCLI(t, args...); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, errs)
		}
	}
}

// needTorch skips the test without Debian's python3-torch (with functorch)
// at /usr/bin/python3, the PyTorch oracle of tools/torchref.
func needTorch(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "/usr/lib/python3/dist-packages/torch", "/usr/lib/python3/dist-packages/functorch"} {
		if _, err := os.Stat(p); err != nil {
			t.Skip("no Debian python3-torch with functorch: ", err)
		}
	}
}
