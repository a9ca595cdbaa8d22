package presentation

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/certify"
)

// TheoryRow is one row of the theory table of a study of mse runs
// (`certify theory`, THEORY.md §6, §11): the runs sharing the levels of the
// row keys, with their verdicts, Δ, and the per-example fractions proven
// decreasing on [0, 1] by Theorem B alone and by the per-example certificate
// (conditions.theorems.examples of each report), averaged over the runs.
type TheoryRow struct {
	Levels []certify.Level
	Runs   int
	// NonMonotone counts the runs whose verdict is non_monotone.
	NonMonotone int
	// MeanDelta is the mean grid Δ over the runs.
	MeanDelta float64
	// MeanGauss is the mean of the runs' gauss_length_mean (corners included).
	MeanGauss float64
	// Per-example fractions averaged over the runs; the certificate's are
	// NaN when no run of the row has them.
	GaussBelowHalfPi, TheoremB, Certificate, ExamplesNonMonotone float64
	// TheoremBMeasure and CertificateMeasure are the mean lengths of the α
	// set proven ℓ_i′ < 0 (anywhere in [0, 1]).
	TheoremBMeasure, CertificateMeasure float64
	// Contradictions is the total count over the runs (TheoremB claims the
	// certificate refutes); it must be 0.
	Contradictions int
}

// theoryOf returns conditions.theorems.examples of r (made in this process
// or read back from certificate.json), if the report has it.
func theoryOf(r *certify.Report) (*certify.ExampleTheory, bool) {
	th := r.Conditions.Theorems
	if th == nil || th.Examples == nil {
		return nil, false
	}
	return th.Examples, true
}

// TheoryTable groups runs by the levels of keys (certify.StudyRun.Value) and
// summarises each group (TheoryRow). Runs without the per-example theory in
// their report (cross_entropy runs, --loss-only, older reports) are an
// error naming the run.
func TheoryTable(runs []certify.StudyRun, keys []string) ([]TheoryRow, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("certify theory: no runs")
	}
	if err := certify.CheckKeys(runs, keys); err != nil {
		return nil, fmt.Errorf("certify theory: %w", err)
	}
	tuples, group := groupRuns(runs, keys)
	rows := make([]TheoryRow, len(tuples))
	certN := make([]int, len(tuples))
	for g, t := range tuples {
		rows[g].Levels = t
	}
	for i := range runs {
		r := &runs[i]
		ex, ok := theoryOf(r.Report)
		if !ok {
			return nil, fmt.Errorf("certify theory: %s: certificate.json has no conditions.theorems.examples (an mse run analysed with its geometry is needed)", r.Dir)
		}
		row := &rows[group[i]]
		row.Runs++
		if r.Report.Verdict == certify.NonMonotone {
			row.NonMonotone++
		}
		row.MeanDelta += r.Report.Delta
		row.MeanGauss += r.Report.GaussLengthMean
		row.TheoremB += ex.TheoremBExamplesFraction
		row.GaussBelowHalfPi += ex.GaussBelowHalfPiFraction
		row.ExamplesNonMonotone += ex.ExamplesNonMonotoneFraction
		row.TheoremBMeasure += ex.TheoremBMeasureMean
		if c := ex.CertificateExamplesFraction; c != nil {
			row.Certificate += *c
			if cm := ex.CertificateMeasureMean; cm != nil {
				row.CertificateMeasure += *cm
			}
			certN[group[i]]++
		}
		if c := ex.Contradictions; c != nil {
			row.Contradictions += *c
		}
	}
	for g := range rows {
		n := float64(rows[g].Runs)
		rows[g].MeanDelta /= n
		rows[g].MeanGauss /= n
		rows[g].TheoremB /= n
		rows[g].GaussBelowHalfPi /= n
		rows[g].ExamplesNonMonotone /= n
		rows[g].TheoremBMeasure /= n
		if certN[g] > 0 {
			rows[g].Certificate /= float64(certN[g])
			rows[g].CertificateMeasure /= float64(certN[g])
		} else {
			rows[g].Certificate, rows[g].CertificateMeasure = math.NaN(), math.NaN()
		}
	}
	return rows, nil
}

var theoryHeader = []string{"runs", "non-monotone runs", "mean Δ", "mean Gauss length (rad)",
	"examples with G < π/2", "examples rising on the grid",
	"examples proven by Theorem B", "examples proven by the certificate",
	"α proven by Theorem B (mean length)", "α proven by the certificate (mean length)", "contradictions"}

func theoryCells(r TheoryRow) []string {
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	f := func(v float64) string {
		if math.IsNaN(v) {
			return "–"
		}
		return fmt.Sprintf("%.3f", v)
	}
	return []string{fmt.Sprint(r.Runs), fmt.Sprintf("%d/%d", r.NonMonotone, r.Runs), fmt.Sprintf("%.4g", r.MeanDelta),
		fmt.Sprintf("%.2f", r.MeanGauss), pct(r.GaussBelowHalfPi), pct(r.ExamplesNonMonotone),
		pct(r.TheoremB), pct(r.Certificate), f(r.TheoremBMeasure), f(r.CertificateMeasure), fmt.Sprint(r.Contradictions)}
}

// WriteTheoryTable writes rows as "markdown" or "csv" with the key names as
// the first columns.
func WriteTheoryTable(w io.Writer, keys []string, rows []TheoryRow, format string) error {
	var b strings.Builder
	switch format {
	case "markdown":
		b.WriteString("| " + strings.Join(append(append([]string{}, keys...), theoryHeader...), " | ") + " |\n|")
		for range len(keys) + len(theoryHeader) {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for _, r := range rows {
			var lv []string
			for _, l := range r.Levels {
				lv = append(lv, certify.FormatLevel(l))
			}
			b.WriteString("| " + strings.Join(append(lv, theoryCells(r)...), " | ") + " |\n")
		}
	case "csv":
		quote := func(s string) string {
			if strings.ContainsAny(s, ",\"\n") {
				return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
			}
			return s
		}
		var hs []string
		for _, h := range append(append([]string{}, keys...), theoryHeader...) {
			hs = append(hs, quote(h))
		}
		b.WriteString(strings.Join(hs, ",") + "\n")
		for _, r := range rows {
			var cs []string
			for _, l := range r.Levels {
				cs = append(cs, quote(certify.FormatLevel(l)))
			}
			for _, c := range theoryCells(r) {
				cs = append(cs, quote(c))
			}
			b.WriteString(strings.Join(cs, ",") + "\n")
		}
	default:
		return fmt.Errorf("certify theory: unknown format %q (want markdown or csv)", format)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// TheoryCoverageFigure draws, against the bottleneck width h (certify.StudyRun.Value
// "bottleneck", log scale), every run's fraction of examples proven
// decreasing on [0, 1] by Theorem B (filled) and by the per-example
// certificate (hollow), coloured by optimizer, in format (png, svg, pdf).
func TheoryCoverageFigure(runs []certify.StudyRun, format string) ([]byte, error) {
	p := newPlot()
	p.Title.Text = "Examples proven decreasing on [0, 1]: Theorem B (filled) and the certificate (hollow)"
	p.X.Label.Text = "bottleneck width h (log scale)"
	p.Y.Label.Text = "fraction of the examples"
	p.Y.Min, p.Y.Max = -0.05, 1.05
	leg := newLegend()
	sty := newRunStyle(runs)
	var hs []float64
	var xy plotter.XYs
	var styles []draw.GlyphStyle
	for i := range runs {
		r := &runs[i]
		hv, ok := r.Value("bottleneck")
		h, isNum := hv.(float64)
		if !ok || !isNum || h <= 0 {
			return nil, fmt.Errorf("certify theory: %s: no bottleneck width in config.json's arch", r.Dir)
		}
		ex, ok := theoryOf(r.Report)
		if !ok {
			return nil, fmt.Errorf("certify theory: %s: certificate.json has no conditions.theorems.examples", r.Dir)
		}
		hs = append(hs, h)
		// Offset the two optimizers and the two kinds of proof sideways
		// so that equal values stay visible.
		off := 0.02 * float64(indexLevel(sty.optims, mustValue(r, "optim")))
		b := ex.TheoremBExamplesFraction
		gs := sty.glyph(r)
		gs.Shape = draw.CircleGlyph{}
		xy = append(xy, plotter.XY{X: math.Log10(h) + off - 0.015, Y: b})
		styles = append(styles, gs)
		if c := ex.CertificateExamplesFraction; c != nil {
			hollow := gs
			hollow.Shape = draw.RingGlyph{}
			hollow.Radius = vg.Points(3.5)
			xy = append(xy, plotter.XY{X: math.Log10(h) + off + 0.015, Y: *c})
			styles = append(styles, hollow)
		}
	}
	sort.Float64s(hs)
	var ticks []plot.Tick
	for i, h := range hs {
		if i == 0 || h != hs[i-1] {
			ticks = append(ticks, plot.Tick{Value: math.Log10(h), Label: fmt.Sprint(h)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = math.Log10(hs[0])-0.15, math.Log10(hs[len(hs)-1])+0.15
	sc := &plotter.Scatter{XYs: xy, GlyphStyleFunc: func(i int) draw.GlyphStyle { return styles[i] }}
	p.Add(sc)
	leg.Avoid(xy)
	thumb := func(c color.Color, shape draw.GlyphDrawer) plot.Thumbnailer {
		return &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: c, Radius: vg.Points(3.5), Shape: shape}}
	}
	for _, o := range sty.optims {
		r := certify.StudyRun{Config: map[string]any{"optim": o}}
		leg.Add(levelLabel("optim", o), thumb(sty.colour(&r), draw.CircleGlyph{}))
	}
	leg.Add("Theorem B alone (filled)", thumb(oiBlack, draw.CircleGlyph{}))
	leg.Add("per-example certificate (hollow)", thumb(oiBlack, draw.RingGlyph{}))
	p.Add(leg)
	return render(format, func(c draw.Canvas) { drawPanels(c, []*plot.Plot{p}) })
}

func mustValue(r *certify.StudyRun, key string) certify.Level {
	v, _ := r.Value(key)
	return v
}

func indexLevel(ls []certify.Level, v certify.Level) int {
	for i, l := range ls {
		if certify.CompareLevels(l, v) == 0 {
			return i
		}
	}
	return 0
}
