package presentation

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// offGridRuns are a study where one non-monotone run's rise (1.6e-5 near
// α ≈ 0.013) falls between grid points: grid Δ 0, continuous Δ 1.6e-5.
func offGridRuns() []certify.StudyRun {
	return []certify.StudyRun{
		{Config: map[string]any{"lr": 0.1, "depth": 1}, Report: &certify.Report{Verdict: certify.NonMonotone, Delta: 0, DeltaContinuous: 1.6e-5,
			Witness: &certify.Witness{Alpha: 0.01, Beta: 0.016, Rise: 1.5e-5}, WeightDistanceNormalized: 0.5, GaussLengthMean: 0.3}},
		{Config: map[string]any{"lr": 0.1, "depth": 1}, Report: &certify.Report{Verdict: certify.NonMonotone, Delta: 0.02, DeltaContinuous: 0.021,
			WeightDistanceNormalized: 0.7, GaussLengthMean: 0.4}},
		{Config: map[string]any{"lr": 0.01, "depth": 1}, Report: &certify.Report{Verdict: certify.CertifiedMonotone, Delta: 0, DeltaContinuous: 0,
			WeightDistanceNormalized: 0.2, GaussLengthMean: 0.1}},
	}
}

// TestStudyDeltaOffGrid: a non-monotone run whose grid missed the rise
// shows its continuous Δ (else the certificate's lower bound, else the
// witness's rise), marked, in the table, the heatmap and the scatter; a
// run with a grid rise keeps its grid Δ.
func TestStudyDeltaOffGrid(t *testing.T) {
	runs := offGridRuns()
	for _, c := range []struct {
		r    *certify.Report
		want float64
		src  string
	}{
		{runs[0].Report, 1.6e-5, certify.DeltaFromContinuous},
		{runs[1].Report, 0.02, certify.DeltaFromGrid},
		{runs[2].Report, 0, certify.DeltaFromGrid},
		{&certify.Report{Verdict: certify.NonMonotone, DeltaContinuous: math.NaN(), DeltaBounds: &[2]float64{2e-5, 3e-5}}, 2e-5, certify.DeltaFromCertified},
		{&certify.Report{Verdict: certify.NonMonotone, DeltaContinuous: math.NaN(), Witness: &certify.Witness{Rise: 1e-6}}, 1e-6, certify.DeltaFromWitness},
	} {
		if d, src := certify.StudyDelta(c.r); d != c.want || src != c.src {
			t.Errorf("StudyDelta = %v (%s), want %v (%s)", d, src, c.want, c.src)
		}
	}
	tab, err := BuildTable(runs, TableSpec{Rows: []string{"depth"}, Cols: []string{"lr"}})
	if err != nil {
		t.Fatal(err)
	}
	// Columns sorted: lr 0.01, lr 0.1.
	c := tab.Cells[0][1]
	if want := (1.6e-5 + 0.02) / 2; math.Abs(c.MeanDelta()-want) > 1e-15 || c.OffGrid != 1 {
		t.Errorf("cell mean Δ %v (off grid %d), want %v (1)", c.MeanDelta(), c.OffGrid, want)
	}
	var md, tex bytes.Buffer
	tab.WriteMarkdown(&md)
	tab.WriteLaTeX(&tex)
	if !strings.Contains(md.String(), "0.01*") || !strings.Contains(md.String(), "grid missed the rise") {
		t.Errorf("Markdown does not mark the off-grid Δ:\n%s", md.String())
	}
	if !strings.Contains(tex.String(), "$^*$") || !strings.Contains(tex.String(), "grid missed the rise") {
		t.Errorf("LaTeX does not mark the off-grid Δ:\n%s", tex.String())
	}
	h := heatGrid(runs, "lr", "depth")
	if got := h.mean[0][1]; math.Abs(got-(1.6e-5+0.02)/2) > 1e-15 || h.offGrid[0][1] != 1 {
		t.Errorf("heatmap mean %v (off grid %d)", got, h.offGrid[0][1])
	}
	// The scatter draws the run at Δ = 1.6e-5 (not on a Δ = 0 floor) and
	// explains the ring around it in the legend.
	f := recordFigure(t, deltaScatter(runs, false, false))
	found := false
	for _, e := range f.legend {
		if strings.HasPrefix(e.text, "Δ between grid points (1 run") {
			found = true
		}
		if strings.Contains(e.text, "Δ = 0 (") && strings.Contains(e.text, "2 runs") {
			t.Errorf("the off-grid run is drawn on the Δ = 0 floor: %q", e.text)
		}
	}
	if !found {
		t.Errorf("legend %v lacks the off-grid entry", f.legend)
	}
}

// TestNiceTicks: major ticks are multiples of 1, 2 or 5 × 10^k, 3 to 8 of
// them inside the range (not 2.5, 10, 17.5).
func TestNiceTicks(t *testing.T) {
	for _, r := range [][2]float64{{0, 20}, {2.5, 17.5}, {0, 0.0034}, {-3.3, 0.1}, {0.013, 2.4}, {1, 1000}, {-1e-6, 1e-6}} {
		var majors []float64
		for _, tk := range (tidyTicks{}).Ticks(r[0], r[1]) {
			if tk.Label != "" {
				majors = append(majors, tk.Value)
				if tk.Value < r[0]-1e-12 || tk.Value > r[1]+1e-12 {
					t.Errorf("%v: tick %v outside", r, tk.Value)
				}
			}
		}
		if len(majors) < 3 || len(majors) > 8 {
			t.Errorf("%v: %d major ticks %v", r, len(majors), majors)
			continue
		}
		step := majors[1] - majors[0]
		e := math.Floor(math.Log10(step))
		m := step / math.Pow(10, e)
		if math.Abs(m-1) > 1e-9 && math.Abs(m-2) > 1e-9 && math.Abs(m-5) > 1e-9 {
			t.Errorf("%v: step %v is not 1, 2 or 5 × 10^k (%v)", r, step, majors)
		}
	}
}

// TestRunFigures: every per-run figure's title names the run and its key
// settings; a bump below 2 % of the loss range gets a zoomed inset (and a
// legend entry), a visible one none; certificate.png has a legend with the
// grid's L′ on top and a y range set by L′, not by ±10 enclosures; the
// histogram's π/2 line and its Theorem A wording follow the loss and the
// report's conditions.
func TestRunFigures(t *testing.T) {
	r := figureReport(false)
	r.Command = []string{"certify", "--run", "/runs/mlp-fashion", "--tolerance", "1e-3"}
	r.Data, r.Examples, r.Tolerance = "fashion-mnist train (first 5000 examples)", 5000, 1e-3
	// A 6.7e-4 bump on a 0–2.4 loss axis.
	r.Loss[10] += 6.7e-4 + (r.Loss[9] - r.Loss[10])
	r.Bumps = certify.Bumps(r.Alphas, r.Loss)
	if len(r.Bumps) != 1 {
		t.Fatalf("bumps %v", r.Bumps)
	}
	for name, title := range map[string]string{
		"interpolation": interpolationPlots(r)[0].Title.Text,
		"turning":       turningPlots(r)[0].Title.Text,
		"gauss_hist":    gaussHistPlot(r).Title.Text,
	} {
		if !strings.HasPrefix(title, "mlp-fashion — fashion-mnist train split, cross_entropy, 5000 examples, 50 α, tolerance 0.001\n") {
			t.Errorf("%s title %q lacks the run and its settings", name, title)
		}
	}
	if inset, _ := bumpInset(r); inset == nil {
		t.Error("a 6.7e-4 bump on a 2.4 loss range has no inset")
	}
	f := recordFigure(t, interpolationPlots(r)[0])
	if !slicesHasPrefix(f.legend, "inset: zoom on the bump") {
		t.Errorf("legend %v lacks the inset entry", f.legend)
	}
	big := figureReport(false)
	big.Loss[10] = big.Loss[9] + 0.2 // 8 % of the loss range
	big.Bumps = certify.Bumps(big.Alphas, big.Loss)
	if inset, _ := bumpInset(big); inset != nil {
		t.Error("a bump of 8 % of the loss range got an inset")
	}

	// certificate.png: every leaf unsettled with [−10, 10] enclosures,
	// L′ ∈ [−4.6, 0] on the grid.
	r.Certificate = &certify.Certificate{Verdict: certify.Inconclusive, DeltaUpper: 1, Leaves: 4, UnsettledCount: 4,
		Intervals: []certify.CertLeaf{{A: 0, B: 0.25, Inf: -10, Sup: 10}, {A: 0.25, B: 0.5, Inf: -10, Sup: 10}, {A: 0.5, B: 0.75, Inf: -10, Sup: 10}, {A: 0.75, B: 1, Inf: -10, Sup: 10}}}
	p := certificatePlot(r)
	if p.Y.Min < -8 || p.Y.Max > 3.5 || p.Y.Min > -4.6 || p.Y.Max < 0 {
		t.Errorf("certificate y range [%v, %v]: want L′ ∈ [−4.6, 0] visible, not ±10", p.Y.Min, p.Y.Max)
	}
	cf := recordFigure(t, p)
	for _, want := range []string{"L′ on the report's grid (50 α)", "enclosure of L′ on a leaf", "(enclosures clipped"} {
		if !slicesHasPrefix(cf.legend, want) {
			t.Errorf("certificate legend %v lacks %q", cf.legend, want)
		}
	}

	// Theorem A: no π/2 wording for cross-entropy; for mse, "(Theorem A)"
	// only when the report says the theorems apply.
	if tt := gaussHistPlot(r).Title.Text; strings.Contains(tt, "π/2") {
		t.Errorf("cross-entropy histogram title %q mentions π/2", tt)
	}
	r.LossKind = "mse"
	r.Conditions = certify.Conditions{Theorems: &certify.TheoremReport{Applies: false, Reason: "no"}}
	if tt := gaussHistPlot(r).Title.Text; strings.Contains(tt, "(Theorem A)") || !strings.Contains(tt, "does not apply") {
		t.Errorf("mse histogram title %q, where Theorem A does not apply", tt)
	}
	r.Conditions = certify.Conditions{Theorems: &certify.TheoremReport{Applies: true}}
	if tt := gaussHistPlot(r).Title.Text; !strings.Contains(tt, "below π/2 (Theorem A)") {
		t.Errorf("mse histogram title %q, where Theorem A applies", tt)
	}
}

func slicesHasPrefix(es []legendEntry, prefix string) bool {
	for _, e := range es {
		if strings.HasPrefix(e.text, prefix) {
			return true
		}
	}
	return false
}

// TestStudyFiguresNotComputed: a --loss-only report (Gauss length NaN, null
// in its JSON) is not plotted at Ḡ = 0; the legend says it was left out.
func TestStudyFiguresNotComputed(t *testing.T) {
	runs := offGridRuns()
	runs[2].Report.GaussLengthMean = math.NaN()
	f := recordFigure(t, deltaScatter(runs, true, false))
	if len(f.points) != 3 || !slicesHasPrefix(f.legend, "(1 run not drawn: a value not computed") { // 2 runs + the off-grid ring
		t.Errorf("%d points, legend %v; want 2 runs and a ring drawn, the left-out run named", len(f.points), f.legend)
	}
}

// TestFigurePDFsHaveNoType3Fonts: the PDFs the tool draws (per-run figures
// and study figures, --format pdf) embed no Type 3 font (pdffonts).
func TestFigurePDFsHaveNoType3Fonts(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFigureFormats(dir, figureReport(true), "pdf"); err != nil {
		t.Fatal(err)
	}
	runs := offGridRuns()
	if err := WriteStudyFigures(dir, runs, StudyFigureSpec{HeatX: "lr", HeatY: "depth", Formats: []string{"pdf"}}); err != nil {
		t.Fatal(err)
	}
	pdfs, _ := filepath.Glob(filepath.Join(dir, "*.pdf"))
	if len(pdfs) < 7 {
		t.Fatalf("%d PDFs written: %v", len(pdfs), pdfs)
	}
	for _, p := range pdfs {
		checkNoType3(t, p)
	}
}

// TestTableMixedSettings: runs analysed with different settings are not
// pooled without comment: the note names the settings and their values.
func TestTableMixedSettings(t *testing.T) {
	runs := offGridRuns()
	for i, r := range runs {
		r.Report.Examples, r.Report.Alphas = 200, certify.Grid(11)
		if i == 2 {
			r.Report.Examples, r.Report.Alphas = 600, certify.Grid(50)
		}
	}
	tab, err := BuildTable(runs, TableSpec{Cols: []string{"lr"}})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	tab.WriteMarkdown(&md)
	if !strings.Contains(md.String(), "different settings (examples 200, 600; grid α 11, 50)") {
		t.Errorf("note does not name the mixed settings:\n%s", md.String())
	}
	runs[2].Report.Examples, runs[2].Report.Alphas = 200, certify.Grid(11)
	tab, _ = BuildTable(runs, TableSpec{Cols: []string{"lr"}})
	md.Reset()
	tab.WriteMarkdown(&md)
	if strings.Contains(md.String(), "different settings") {
		t.Errorf("uniform settings called mixed:\n%s", md.String())
	}
}
