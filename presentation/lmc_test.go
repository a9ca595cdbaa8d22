package presentation

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// lmcReport is an aligned lmc report with float targets (no 0–1 error) and
// paths that need escaping in LaTeX.
func lmcReport(t *testing.T) *certify.LMCReport {
	t.Helper()
	c := certify.LineCurve{Alphas: []float64{0, 0.25, 0.5, 0.75, 1}, Loss: []float64{1, 1.5, 1.25, 1.1, 0.5}}
	m, err := certify.Measures(c, 1.25, math.NaN())
	if err != nil {
		t.Fatal(err)
	}
	un := m
	un.BarrierLoss = 3.5
	w := 0.25
	m.BarrierBounds, m.BarrierWitness = &[2]float64{0.625, 0.75}, &w
	return &certify.LMCReport{Command: "certify lmc run_a run_b --align weights", A: certify.LMCEndpoint{Path: "run_a", Checkpoint: "run_a/final.safetensors", State: "final"},
		B: certify.LMCEndpoint{Path: "run_b", Checkpoint: "run_b/final.safetensors", State: "final"}, LossKind: "mse", Split: "train",
		LMCMeasures: m, Aligned: true, Unaligned: &un, Permutations: map[string][]int{"0": {1, 0}}, AlignSweeps: 2, Examples: 7}
}

// The summary table says the barrier (g(0.25) = 1.5 − 0.875 = 0.625), the
// unaligned barrier, the aligned line's certified bounds, "not computed"
// for the missing error and the unaligned certified bounds, and compiles with pdflatex; the figure is drawn; the printed
// summary says the error is not computed.
func TestLMCSummaryAndFigure(t *testing.T) {
	r := lmcReport(t)
	dir := t.TempDir()
	if err := WriteLMCSummary(dir, r); err != nil {
		t.Fatal(err)
	}
	tex, _ := os.ReadFile(filepath.Join(dir, SummaryTeX))
	for _, want := range []string{"$0.625$ & not computed", "before alignment (grid) & $3.5$", "certified barrier $\\max_{[0,1]} g$ & $[0.625, 0.75]$", "certified barrier before alignment & not computed", `run\_a/final.safetensors`} {
		if !strings.Contains(string(tex), want) {
			t.Errorf("summary.tex lacks %q:\n%s", want, tex)
		}
	}
	compileTeX(t, dir, strings.TrimSuffix(SummaryStandaloneTeX, ".tex"))
	if err := WriteLMCFigure(dir, r); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, FigureLMC+".png")); err != nil || st.Size() < 1000 {
		t.Errorf("lmc.png: %v", err)
	}
	txt := LMCText(r, dir)
	for _, want := range []string{"barrier, B         loss 3.5", "barrier, B′        loss 0.625 at α = 0.25", "error not computed", "certified, B′      barrier ∈ [0.625, 0.75] (witness α = 0.25)", "certified, B       barrier not computed"} {
		if !strings.Contains(txt, want) {
			t.Errorf("summary lacks %q:\n%s", want, txt)
		}
	}
}

// TestLMCTextCountsMovedGroups: the summary counts the groups weight
// matching actually permuted, not the groups it visited: an identity
// permutation moves nothing.
func TestLMCTextCountsMovedGroups(t *testing.T) {
	r := lmcReport(t)
	for _, tc := range []struct {
		perms map[string][]int
		want  string
	}{
		{map[string][]int{"0": {1, 0}}, "weight matching: 1 of 1 layer permuted"},
		{map[string][]int{"0": {0, 1, 2}, "2": {0, 1}}, "weight matching: 0 of 2 layers permuted"},
		{map[string][]int{"0": {0, 2, 1}, "2": {0, 1}}, "weight matching: 1 of 2 layers permuted"},
	} {
		r.Permutations = tc.perms
		if txt := LMCText(r, "out"); !strings.Contains(txt, tc.want) {
			t.Errorf("%v: summary lacks %q:\n%s", tc.perms, tc.want, txt)
		}
	}
}
