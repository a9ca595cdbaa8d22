package certify

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/internal/atomicfile"
)

// Per-run summary files written by WriteSummary and WriteCertificateFigure.
const (
	SummaryTeX        = "summary.tex"
	FigureCertificate = "certificate"
)

// texEscape escapes LaTeX's special characters in running text.
func texEscape(s string) string {
	r := strings.NewReplacer(`\`, `\textbackslash{}`, `&`, `\&`, `%`, `\%`, `$`, `\$`, `#`, `\#`,
		`_`, `\_`, `{`, `\{`, `}`, `\}`, `~`, `\textasciitilde{}`, `^`, `\textasciicircum{}`)
	return r.Replace(s)
}

// texNum formats a number for a table cell in math mode (scientific as a·10^b).
func texNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return `\text{NaN}`
	case math.IsInf(v, 1):
		return `\infty`
	case math.IsInf(v, -1):
		return `-\infty`
	}
	s := fmt.Sprintf("%.4g", v)
	if m, e, ok := strings.Cut(s, "e"); ok {
		e = strings.TrimPrefix(e, "+")
		e = strings.TrimLeft(e, "0")
		if strings.HasPrefix(e, "-") {
			e = "-" + strings.TrimLeft(e[1:], "0")
		}
		return m + `\times 10^{` + e + `}`
	}
	return s
}

// SummaryTeXBytes returns the report as a standalone LaTeX document
// (\documentclass{article} with booktabs): one table of the run's
// measurements and verdict — verdict, tolerance, Δ on the grid, continuous
// Δ, delta_bounds, L(0), L(1), Gauss lengths, weight distances, examples,
// and the certificate's leaves and time. It compiles with pdflatex; text is
// escaped with texEscape.
func SummaryTeXBytes(r *Report) []byte {
	var b bytes.Buffer
	row := func(name, val string) { fmt.Fprintf(&b, "%s & %s \\\\\n", name, val) }
	num := func(v float64) string { return "$" + texNum(v) + "$" }
	b.WriteString("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[T1]{fontenc}\n\\begin{document}\n")
	b.WriteString("\\begin{table}[h]\n\\centering\n")
	fmt.Fprintf(&b, "\\caption{Monotonic linear interpolation: %s}\n", texEscape(r.Data))
	b.WriteString("\\begin{tabular}{ll}\n\\toprule\nQuantity & Value \\\\\n\\midrule\n")
	row("Verdict", "\\texttt{"+texEscape(r.Verdict)+"}")
	row("Loss", "\\texttt{"+texEscape(r.LossKind)+"}")
	row("Tolerance", num(r.Tolerance))
	row(fmt.Sprintf("$\\Delta$ on the grid (%d $\\alpha$)", len(r.Alphas)), num(r.Delta))
	row("$\\Delta$ continuous", num(r.DeltaContinuous))
	if r.DeltaBounds != nil {
		row("$\\Delta$ bounds (rigorous)", fmt.Sprintf("$[%s, %s]$", texNum(r.DeltaBounds[0]), texNum(r.DeltaBounds[1])))
	} else {
		row("$\\Delta$ bounds (rigorous)", "not attempted")
	}
	if len(r.Loss) > 0 {
		row("$L(0)$", num(r.Loss[0]))
		row("$L(1)$", num(r.Loss[len(r.Loss)-1]))
	}
	row("Gauss length, mean per example (rad)", num(r.GaussLengthMean))
	row("Gauss length, stacked (rad)", num(r.GaussLengthStacked))
	row("Gauss length, mean, trapezoid (rad)", num(r.GaussLengthMeanTrapezoid))
	row("Weight distance $\\|\\theta_T - \\theta_0\\|_2$", num(r.WeightDistance))
	row("Normalised weight distance", num(r.WeightDistanceNormalized))
	row("Examples", fmt.Sprintf("%d", r.Examples))
	if c := r.Certificate; c != nil {
		row("Certificate leaves", fmt.Sprintf("%d (%d unsettled)", c.Leaves, c.UnsettledCount))
		row("Certificate time (s)", num(c.Seconds))
		if w := c.Witness; w != nil && c.Verdict == NonMonotone {
			row("Witness $L(\\beta) - L(\\alpha)$", fmt.Sprintf("$\\geq %s$ at $\\alpha = %s$, $\\beta = %s$", texNum(w.Rise), texNum(w.Alpha), texNum(w.Beta)))
		}
	}
	row("Analysis time (s)", num(r.Seconds))
	b.WriteString("\\bottomrule\n\\end{tabular}\n\\end{table}\n\\end{document}\n")
	return b.Bytes()
}

// WriteSummary writes DIR/summary.tex (SummaryTeXBytes) atomically.
func WriteSummary(dir string, r *Report) error {
	return atomicfile.Write(filepath.Join(dir, SummaryTeX), SummaryTeXBytes(r))
}

// WriteCertificateFigure draws DIR/certificate.png: for every leaf of the
// certificate its enclosure [inf, sup] of L′ as a box over [a, b], boxes
// with sup ≤ 0 (settled) in blue and the others in vermillion, the settled
// leaves shaded, a zero line, and the witness α, β as dashed vertical lines.
// It does nothing when the report has no certificate.
func WriteCertificateFigure(dir string, r *Report) error {
	c := r.Certificate
	if c == nil {
		// No certificate this time: a figure left by an earlier analysis
		// would contradict the new report.
		if err := os.Remove(filepath.Join(dir, FigureCertificate+".png")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	p := newPlot()
	p.Title.Text = fmt.Sprintf("L′ enclosure: %s, Δ in [%.3g, %.3g]", verdictText(c.Verdict), c.DeltaLower, c.DeltaUpper)
	alphaAxis(p, nil, "α")
	p.Y.Label.Text = "L′(α)"
	var los, his []float64
	for _, l := range c.Intervals {
		if l.Sup <= 0 {
			p.Add(&band{lo: l.A, hi: l.B, fill: color.RGBA{0xdd, 0xee, 0xf7, 0xff}})
		}
		if isFinite(l.Inf) && isFinite(l.Sup) {
			los, his = append(los, l.Inf), append(his, l.Sup)
		}
	}
	p.Add(&leafBoxes{leaves: c.Intervals})
	p.Y.Min, p.Y.Max = paddedRange(los, his, []float64{0})
	p.Add(&hline{y: 0, style: draw.LineStyle{Color: gridGrey, Width: vg.Points(0.8)}})
	if w := c.Witness; w != nil && c.Verdict == NonMonotone {
		for _, a := range []float64{w.Alpha, w.Beta} {
			p.Add(&vline{x: a, style: draw.LineStyle{Color: oiBlack, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}})
		}
	}
	b, err := render("png", func(cv draw.Canvas) { drawPanels(cv, []*plot.Plot{p}) })
	if err != nil {
		return fmt.Errorf("certify: %s.png: %w", FigureCertificate, err)
	}
	return atomicfile.Write(filepath.Join(dir, FigureCertificate+".png"), b)
}

// leafBoxes draws each leaf's [A, B] × [Inf, Sup] as an outlined box.
type leafBoxes struct{ leaves []CertLeaf }

// Plot implements plot.Plotter.
func (lb *leafBoxes) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, l := range lb.leaves {
		if !isFinite(l.Inf) || !isFinite(l.Sup) {
			continue
		}
		col := color.Color(oiBlue)
		if l.Sup > 0 {
			col = oiVermillion
		}
		x0, x1 := trX(l.A), trX(l.B)
		y0, y1 := max(c.Min.Y, trY(l.Inf)), min(c.Max.Y, trY(l.Sup))
		if y1-y0 < vg.Points(0.6) {
			y1 = y0 + vg.Points(0.6)
		}
		c.SetColor(col)
		c.Fill(rect(x0, y0, x1, y1))
	}
}
