package presentation

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/atomicfile"
)

// FigureLMC is the name, without extension, of certify lmc's figure.
const FigureLMC = "lmc"

func nums(v []certify.Num) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// lmcPlots builds the loss panel (top) and the 0–1 error panel (bottom) of
// an lmc report: each curve on the grid with the chord between its ends
// dashed (the convexity gap is the height above it), and the unaligned
// curve, when the report has one, in grey.
func lmcPlots(r *certify.LMCReport) []*plot.Plot {
	top, bot := newPlot(), newPlot()
	top.Title.Text = fmt.Sprintf("%s → %s: loss barrier %s on the grid (%s, %d examples, %d α)", r.A.Path, r.B.Path, fmtNum(float64(r.BarrierLoss)), r.DataPhrase(), r.Examples, len(r.Alphas))
	if r.Aligned {
		top.Title.Text += ", B aligned"
	}
	for _, pan := range []struct {
		p      *plot.Plot
		label  string
		v      []certify.Num
		un     func(*certify.LMCMeasures) []certify.Num
		xlabel string
	}{
		{top, "loss L", r.Loss, func(m *certify.LMCMeasures) []certify.Num { return m.Loss }, ""},
		{bot, "0–1 error E", r.Error, func(m *certify.LMCMeasures) []certify.Num { return m.Error }, "α (0: A, 1: B)"},
	} {
		alphaAxis(pan.p, r.Alphas, pan.xlabel)
		pan.p.Y.Label.Text = pan.label
		leg := newLegend()
		if len(pan.v) == 0 {
			pan.p.Add(note("not computed (no class labels)"))
			continue
		}
		v := nums(pan.v)
		if r.Unaligned != nil {
			if l := series(pan.p, finiteXY(r.Unaligned.Alphas, nums(pan.un(r.Unaligned))), gridGrey, vg.Points(1.2), nil); l != nil {
				leg.Add("B as given (unaligned)", l)
			}
		}
		name := "along the line"
		if r.Aligned {
			name = "B aligned to A"
		}
		if pan.label != "loss L" {
			if b := certifiedBand(pan.p, r.AccuracyBounds, true); b != nil {
				leg.Add("certified error range", b)
			}
		}
		if l := series(pan.p, finiteXY(r.Alphas, v), oiBlue, vg.Points(1.6), nil); l != nil {
			leg.Add(name, l)
		}
		n := len(v)
		chord := plotter.XYs{{X: 0, Y: v[0]}, {X: 1, Y: v[n-1]}}
		if isFinite(v[0]) && isFinite(v[n-1]) {
			if l := series(pan.p, chord, oiVermillion, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}); l != nil {
				leg.Add("chord (1−α)·A + α·B", l)
			}
		}
		pan.p.Add(leg)
	}
	return []*plot.Plot{top, bot}
}

// certifiedBand adds to p the certified accuracy bounds (THEORY.md §10) as
// a shaded band: one rectangle [a, b] × [lo, hi] per interval, or
// [a, b] × [1 − hi, 1 − lo] for the 0–1 error when asError. It returns the
// first rectangle (for a legend entry), nil when there is none.
func certifiedBand(p *plot.Plot, a *certify.AccuracyBounds, asError bool) *plotter.Polygon {
	if a == nil {
		return nil
	}
	var first *plotter.Polygon
	for _, iv := range a.Intervals {
		lo, hi := iv[2], iv[3]
		if asError {
			lo, hi = 1-iv[3], 1-iv[2]
		}
		if hi-lo < 0.002 { // a decided interval: a thin band stays visible
			m := 0.5 * (lo + hi)
			lo, hi = m-0.001, m+0.001
		}
		poly, err := plotter.NewPolygon(plotter.XYs{{X: iv[0], Y: lo}, {X: iv[1], Y: lo}, {X: iv[1], Y: hi}, {X: iv[0], Y: hi}})
		if err != nil {
			continue
		}
		poly.Color = bandFill
		poly.LineStyle.Width = 0
		p.Add(poly)
		if first == nil {
			first = poly
		}
	}
	return first
}

// bandFill is the certified accuracy band's fill: a light bluish green.
var bandFill = color.NRGBA{R: 0, G: 158, B: 115, A: 70}

func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "not computed"
	}
	return fmt.Sprintf("%.4g", v)
}

// WriteLMCFigure draws DIR/lmc.png: loss and 0–1 error along the line from A
// to B with their chords (and the unaligned curves when B was aligned).
func WriteLMCFigure(dir string, r *certify.LMCReport) error {
	b, err := render("png", func(c draw.Canvas) { drawPanels(c, lmcPlots(r)) })
	if err != nil {
		return fmt.Errorf("%s.png: %w", FigureLMC, err)
	}
	return atomicfile.Write(filepath.Join(dir, FigureLMC+".png"), b)
}

// LMCSummaryTeXBytes returns a LaTeX table fragment (needs booktabs, as
// SummaryTeXBytes) of an lmc report's barriers: grid barriers under both
// definitions, midpoint gaps, for loss and error, and the certified bounds
// ("not computed" while null).
func LMCSummaryTeXBytes(r *certify.LMCReport) []byte {
	var b bytes.Buffer
	num := func(v certify.Num) string {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return "not computed"
		}
		return "$" + texNum(float64(v)) + "$"
	}
	fmt.Fprintf(&b, "%% certify lmc: %s\n\\begin{table}[t]\n\\centering\n", strings.ReplaceAll(r.Command, "\n", " "))
	fmt.Fprintf(&b, "\\caption{Linear mode connectivity from %s to %s (%s, %s, %d examples, %d $\\alpha$%s).}\n",
		texEscape(r.A.Checkpoint), texEscape(r.B.Checkpoint), texEscape(r.LossKind), texEscape(r.DataPhrase()), r.Examples, len(r.Alphas), map[bool]string{true: ", B aligned by weight matching", false: ""}[r.Aligned])
	b.WriteString("\\label{tab:certify-lmc}\n\\begin{tabular}{lll}\n\\toprule\n & loss & 0--1 error \\\\\n\\midrule\n")
	row := func(name string, l, e certify.Num) { fmt.Fprintf(&b, "%s & %s & %s \\\\\n", name, num(l), num(e)) }
	n := len(r.Loss)
	var eA, eB certify.Num = certify.Num(math.NaN()), certify.Num(math.NaN())
	if len(r.Error) == n && n > 0 {
		eA, eB = r.Error[0], r.Error[n-1]
	}
	row("at A ($\\alpha = 0$)", r.Loss[0], eA)
	row("at B ($\\alpha = 1$)", r.Loss[n-1], eB)
	row("barrier $\\max_\\alpha g(\\alpha)$ (grid)", r.BarrierLoss, r.BarrierError)
	row("$\\max_\\alpha L(\\alpha) - \\frac12(L_A + L_B)$ (grid)", r.BarrierLossAinsworth, r.BarrierErrorAinsworth)
	row("midpoint gap $g(\\frac12)$", r.MidpointGap, r.MidpointGapError)
	if r.Unaligned != nil {
		row("barrier before alignment (grid)", r.Unaligned.BarrierLoss, r.Unaligned.BarrierError)
	}
	bounds := func(m *certify.LMCMeasures) string {
		if m.BarrierBounds == nil {
			return "not computed"
		}
		return fmt.Sprintf("$[%s, %s]$", texNum(m.BarrierBounds[0]), texNum(m.BarrierBounds[1]))
	}
	accuracy := func(m *certify.LMCMeasures) string {
		if m.AccuracyBounds == nil || len(m.AccuracyBounds.Intervals) == 0 {
			return "not computed"
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, iv := range m.AccuracyBounds.Intervals {
			lo, hi = math.Min(lo, 1-iv[3]), math.Max(hi, 1-iv[2])
		}
		return fmt.Sprintf("$[%s, %s]$", texNum(lo), texNum(hi))
	}
	fmt.Fprintf(&b, "certified barrier $\\max_{[0,1]} g$ & %s & \\\\\n", bounds(&r.LMCMeasures))
	fmt.Fprintf(&b, "certified error range on $[0,1]$ & & %s \\\\\n", accuracy(&r.LMCMeasures))
	if eb := r.BarrierErrorBounds; eb != nil {
		fmt.Fprintf(&b, "certified error barrier $\\max_{[0,1]} g_E$ & & $[%s, %s]$ \\\\\n", texNum(eb[0]), texNum(eb[1]))
	}
	if r.Unaligned != nil {
		fmt.Fprintf(&b, "certified barrier before alignment & %s & \\\\\n", bounds(r.Unaligned))
	}
	b.WriteString("\\bottomrule\n\\end{tabular}\n\\end{table}\n")
	return b.Bytes()
}

// WriteLMCSummary writes DIR/summary.tex (LMCSummaryTeXBytes) and its
// wrapper DIR/summary-standalone.tex (SummaryStandaloneTeXBytes) atomically.
func WriteLMCSummary(dir string, r *certify.LMCReport) error {
	if err := atomicfile.Write(filepath.Join(dir, SummaryTeX), LMCSummaryTeXBytes(r)); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, SummaryStandaloneTeX), SummaryStandaloneTeXBytes())
}

// certifiedText states a line's certified barrier (and accuracy band, when
// computed) in one line of the summary.
func certifiedText(m *certify.LMCMeasures) string {
	var parts []string
	if m.BarrierBounds != nil {
		s := fmt.Sprintf("barrier ∈ [%.6g, %.6g]", m.BarrierBounds[0], m.BarrierBounds[1])
		if m.BarrierWitness != nil {
			s += fmt.Sprintf(" (witness α = %.4g)", *m.BarrierWitness)
		}
		if c := m.BarrierCertificate; c != nil && !c.Converged {
			s += " not converged"
		}
		parts = append(parts, s)
	} else {
		parts = append(parts, "barrier not computed")
	}
	if a := m.AccuracyBounds; a != nil && len(a.Intervals) > 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, iv := range a.Intervals {
			lo, hi = math.Min(lo, iv[2]), math.Max(hi, iv[3])
		}
		parts = append(parts, fmt.Sprintf("accuracy ∈ [%.2f%%, %.2f%%] on [0, 1] (%d intervals)", 100*lo, 100*hi, len(a.Intervals)))
		if eb := m.BarrierErrorBounds; eb != nil {
			parts = append(parts, fmt.Sprintf("error barrier ∈ [%.4g, %.4g]", eb[0], eb[1]))
		}
	} else {
		parts = append(parts, "accuracy not computed")
	}
	return strings.Join(parts, "; ")
}

// LMCText is the summary certify lmc prints: endpoints, data, the loss and
// error at both ends, the barriers and gaps, alignment, and where the
// report went (out; empty: not written).
func LMCText(r *certify.LMCReport, out string) string {
	var b strings.Builder
	n := len(r.Loss)
	fmt.Fprintf(&b, "lmc %s (%s) → %s (%s): %s, %s, %d examples, %d α\n", r.A.Path, r.A.State, r.B.Path, r.B.State, r.LossKind, r.DataPhrase(), r.Examples, n)
	errAt := func(i int) string {
		if len(r.Error) != n {
			return "not computed"
		}
		return fmt.Sprintf("%.2f%%", 100*float64(r.Error[i]))
	}
	ends := "L(A) → L(B)"
	if l := r.LMCLayers; l != nil {
		// Held tensors make one end a hybrid, not A or B: with --hold a the
		// line ends at A with these layers of B, with --hold b it starts at
		// B with these layers of A. (Moving every tensor makes it A or B
		// again; the label stays the hybrid's, which is then that network.)
		hybrid := "α = 1 is A with these layers of B"
		ends = "L(A) → L(hybrid)"
		if l.Hold == "b" {
			hybrid = "α = 0 is B with these layers of A"
			ends = "L(hybrid) → L(B)"
		}
		fmt.Fprintf(&b, "  %-19s%s move A → B (%d tensors), the rest held at %s: %s\n", "layers", strings.Join(l.Layers, ", "), len(l.Moved), strings.ToUpper(l.Hold), hybrid)
	}
	fmt.Fprintf(&b, "  %-19s%s → %s   error %s → %s\n", ends, fmtNum(float64(r.Loss[0])), fmtNum(float64(r.Loss[n-1])), errAt(0), errAt(n-1))
	line := func(m *certify.LMCMeasures, tag string) {
		fmt.Fprintf(&b, "  %-19sloss %s at α = %s (Ainsworth %s), error %s (Ainsworth %s)\n", "barrier"+tag,
			fmtNum(float64(m.BarrierLoss)), fmtNum(float64(m.BarrierLossAlpha)), fmtNum(float64(m.BarrierLossAinsworth)),
			fmtNum(float64(m.BarrierError)), fmtNum(float64(m.BarrierErrorAinsworth)))
		fmt.Fprintf(&b, "  %-19sloss %s, error %s\n", "midpoint gap"+tag, fmtNum(float64(m.MidpointGap)), fmtNum(float64(m.MidpointGapError)))
		fmt.Fprintf(&b, "  %-19s%s\n", "certified"+tag, certifiedText(m))
	}
	if r.Unaligned != nil {
		line(r.Unaligned, ", B")
		moved := 0 // groups whose permutation is not the identity
		for _, pi := range r.Permutations {
			for i, j := range pi {
				if i != j {
					moved++
					break
				}
			}
		}
		fmt.Fprintf(&b, "  %-19sweight matching: %d of %s permuted, %s; %s\n", "aligned", moved, plural(len(r.Permutations), "layer"), plural(r.AlignSweeps, "sweep"), r.AlignedCheckpoint)
		line(&r.LMCMeasures, ", B′")
	} else {
		line(&r.LMCMeasures, "")
	}
	for _, note := range r.Notes { // what is null and why, data, options without effect
		fmt.Fprintf(&b, "  %-19s%s\n", "note", note)
	}
	if out != "" {
		fmt.Fprintf(&b, "  %-19s%s (%.1fs)\n", "report", filepath.Join(out, "lmc.json"), r.Seconds)
	}
	return b.String()
}
