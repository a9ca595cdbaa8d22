package presentation

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

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
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
		`_`, `\_`, `{`, `\{`, `}`, `\}`, `~`, `\textasciitilde{}`, `^`, `\textasciicircum{}`,
		`α`, `$\alpha$`, `Δ`, `$\Delta$`, `θ`, `$\theta$`, `≤`, `$\le$`, `≥`, `$\ge$`, `→`, `$\to$`, `±`, `$\pm$`, `–`, `--`, `—`, `---`, `′`, `$'$`)
	return r.Replace(s)
}

// texNum formats a number for a table cell in math mode (scientific as
// a·10^b), to 4 significant digits.
func texNum(v float64) string { return texNumDigits(v, 4) }

// texNumDigits is texNum to d significant digits.
func texNumDigits(v float64, d int) string {
	switch {
	case math.IsNaN(v):
		return `\text{NaN}`
	case math.IsInf(v, 1):
		return `\infty`
	case math.IsInf(v, -1):
		return `-\infty`
	}
	return texNumString(fmt.Sprintf("%.*g", d, v))
}

// texNumString is texNum of a number already formatted by %g (or
// FormatDeltaBound): scientific notation as a·10^b.
func texNumString(s string) string {
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

// SummaryTeXPreamble is what a document needs to \input summary.tex:
// booktabs for the rules and lmodern with T1 encoding (scalable Type 1
// fonts: without lmodern, T1 text is set in Type 3 bitmap fonts, which some
// venues reject).
const SummaryTeXPreamble = "\\usepackage[T1]{fontenc}\n\\usepackage{lmodern}\n\\usepackage{booktabs}\n"

// SummaryTeXBytes returns the report as a LaTeX fragment to \input into a
// document whose preamble has SummaryTeXPreamble: one table environment
// (caption naming the run and its settings, label tab:certify-RUN) of the
// run's measurements and verdict — verdict, tolerance, Δ on the grid,
// continuous Δ, delta_bounds (to DeltaBoundsDigits) and their relative
// width reached and asked, L(0), L(1), Gauss lengths (the stacked one
// marked when it has not converged), weight distances, examples, and the
// certificate's leaves and time. A value that was not computed (NaN) reads
// "not computed". Text is escaped with texEscape.
func SummaryTeXBytes(r *certify.Report) []byte {
	var b bytes.Buffer
	row := func(name, val string) { fmt.Fprintf(&b, "%s & %s \\\\\n", name, val) }
	num := func(v float64) string {
		if math.IsNaN(v) {
			return "not computed"
		}
		return "$" + texNum(v) + "$"
	}
	fmt.Fprintf(&b, "%% certify summary of %s; \\input it after\n%% %s", runName(r), strings.ReplaceAll(SummaryTeXPreamble, "\n", "\n% "))
	b.WriteString("\n\\begin{table}[htbp]\n\\centering\n")
	fmt.Fprintf(&b, "\\caption{Monotonic linear interpolation of %s: %s}\n", texEscape(runName(r)), texEscape(runSettings(r)))
	fmt.Fprintf(&b, "\\label{tab:certify-%s}\n", labelName(runName(r)))
	// Paragraph columns: long values (a witness, a caveat) wrap inside
	// \linewidth instead of running into the margin.
	b.WriteString("\\begin{tabular}{@{}p{0.44\\linewidth}p{0.52\\linewidth}@{}}\n\\toprule\nQuantity & Value \\\\\n\\midrule\n")
	row("Verdict", "\\texttt{"+texEscape(r.Verdict.String())+"}")
	row("Loss", "\\texttt{"+texEscape(r.LossKind)+"}")
	row("Tolerance", num(r.Tolerance))
	row(fmt.Sprintf("$\\Delta$ on the grid (%d $\\alpha$)", len(r.Alphas)), num(r.Delta))
	row("$\\Delta$ continuous", num(r.DeltaContinuous))
	// as many digits as the relative width --delta-tol asked shows
	// (FormatDeltaBound: rounded outward when it is not the default)
	if r.DeltaBounds != nil {
		row("$\\Delta$ bounds (rigorous)", fmt.Sprintf("$[%s, %s]$", texNumString(FormatDeltaBound(r.DeltaBounds[0], r.Certificate, false)), texNumString(FormatDeltaBound(r.DeltaBounds[1], r.Certificate, true))))
	} else if r.Certificate != nil { // attempted, an enclosure overflowed
		row("$\\Delta$ bounds (rigorous)", fmt.Sprintf("$[%s, %s]$ (an enclosure overflowed)", texNum(r.Certificate.DeltaLower), texNum(r.Certificate.DeltaUpper)))
	} else {
		row("$\\Delta$ bounds (rigorous)", "not attempted")
	}
	if w := texDeltaWidth(r.Certificate); w != "" {
		row("$\\Delta$ bounds, relative width", w)
	}
	if len(r.Loss) > 0 {
		row("$L(0)$", num(r.Loss[0]))
		row("$L(1)$", num(r.Loss[len(r.Loss)-1]))
	}
	row("Gauss length, mean per example (rad)", num(r.GaussLengthMean))
	stacked := num(r.GaussLengthStacked)
	if c := r.GaussLengthStackedConverged; c != nil && !*c && !math.IsNaN(r.GaussLengthStacked) {
		stacked += " (not converged on the finest grid)"
	}
	row("Gauss length, stacked (rad)", stacked)
	row("Gauss length, mean, trapezoid (rad)", num(r.GaussLengthMeanTrapezoid))
	row("Weight distance $\\|\\theta_T - \\theta_0\\|_2$", num(r.WeightDistance))
	row("Normalised weight distance", num(r.WeightDistanceNormalized))
	row("Examples", fmt.Sprintf("%d", r.Examples))
	if c := r.Certificate; c != nil {
		row("Certificate leaves", fmt.Sprintf("%d (%d unsettled)", c.Leaves, c.UnsettledCount))
		row("Certificate time (s)", num(c.Seconds))
		if w := c.Witness; w != nil && c.Verdict == certify.NonMonotone {
			row("Witness $L(\\beta) - L(\\alpha)$", fmt.Sprintf("$\\geq %s$ at $\\alpha = %s$, $\\beta = %s$", texNum(w.Rise), texNum(w.Alpha), texNum(w.Beta)))
		}
	}
	row("Analysis time (s)", num(r.Seconds))
	b.WriteString("\\bottomrule\n\\end{tabular}\n\\end{table}\n")
	return b.Bytes()
}

// texDeltaWidth is DeltaBoundsWidth for summary.tex: the relative width
// of delta_bounds reached and the one asked (certificate.delta_rel_width,
// delta_tol), "" when the report records no delta_tol.
func texDeltaWidth(c *certify.Certificate) string {
	switch {
	case c == nil || !(c.DeltaTol > 0):
		return ""
	case math.IsNaN(c.RelWidth) || math.IsInf(c.RelWidth, 0):
		return fmt.Sprintf("null (the upper bound is not finite; $%s$ asked)", texNum(c.DeltaTol))
	case c.RelWidth <= c.DeltaTol:
		return fmt.Sprintf("$%s$ ($\\le %s$ asked)", texNumDigits(c.RelWidth, 2), texNum(c.DeltaTol))
	default:
		return fmt.Sprintf("$%s$ ($%s$ asked: not reached within the budget)", texNumDigits(c.RelWidth, 2), texNum(c.DeltaTol))
	}
}

// SummaryStandaloneTeXBytes wraps SummaryTeXBytes in a minimal article
// that \input-s summary.tex: compile it with pdflatex beside summary.tex.
func SummaryStandaloneTeXBytes() []byte {
	return []byte("\\documentclass{article}\n" + SummaryTeXPreamble + "\\begin{document}\n\\input{" + SummaryTeX + "}\n\\end{document}\n")
}

// SummaryStandaloneTeX is the standalone wrapper of summary.tex.
const SummaryStandaloneTeX = "summary-standalone.tex"

// labelName keeps the letters, digits and - of s for a \label.
func labelName(s string) string {
	return strings.Map(func(c rune) rune {
		if c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return c
		}
		return '-'
	}, s)
}

// runName is the run's name for titles and captions: the last element of
// the run directory in the report's command (--run DIR), else of its data
// source, else "run".
func runName(r *certify.Report) string {
	for i, a := range r.Command {
		if (a == "--run" || a == "-run") && i+1 < len(r.Command) {
			return filepath.Base(filepath.Clean(r.Command[i+1]))
		}
		if v, ok := strings.CutPrefix(a, "--run="); ok {
			return filepath.Base(filepath.Clean(v))
		}
	}
	if r.Data != "" {
		// a data file names its directory, the run; a dataset names itself
		if path, _ := splitData(r.Data); isDataFile(path) {
			return filepath.Base(filepath.Dir(path))
		}
		return filepath.Base(strings.Fields(r.Data)[0])
	}
	return "run"
}

// splitData splits a report's data (rundir.Run.DataSource, with any " — "
// note of certify's) into its head — a data file's path or "NAME SPLIT"
// of a dataset — and the notes in its parentheses.
func splitData(d string) (head, notes string) {
	if i := strings.Index(d, " — "); i >= 0 {
		d = d[:i]
	}
	if i := strings.Index(d, " ("); i >= 0 {
		return d[:i], strings.TrimSuffix(d[i+2:], ")")
	}
	return d, ""
}

// isDataFile reports whether a report's data head is a file (the run's
// data.safetensors or data.npz) rather than a dataset.
func isDataFile(head string) bool {
	switch strings.ToLower(filepath.Ext(head)) {
	case ".safetensors", ".npz":
		return true
	}
	return false
}

// dataLabel names the examples a figure shows for a researcher: the data
// set and split ("mnist train split") — of a dataset, or recorded in a
// data file by certify export (rundir.DataSourceKey) — or the file the
// examples came from ("data file heldout.npz", recorded by certify
// import), and only without either the file itself ("data file
// data.safetensors"). The number of examples is runSettings' own part.
func dataLabel(r *certify.Report) string {
	head, notes := splitData(r.Data)
	if !isDataFile(head) {
		return head + " split"
	}
	if src, _, _ := strings.Cut(notes, "; "); src != "" && !strings.HasPrefix(src, "first ") {
		src, _, _ = strings.Cut(src, ", first ")
		return src
	}
	return "data file " + filepath.Base(head)
}

// runSettings is a short line of the report's key settings for titles and
// captions: data, loss, examples, grid, tolerance, BatchNorm policy,
// precision, and what was skipped.
func runSettings(r *certify.Report) string {
	parts := []string{}
	if r.Data != "" {
		parts = append(parts, dataLabel(r))
	}
	if r.LossKind != "" {
		parts = append(parts, r.LossKind)
	}
	parts = append(parts, fmt.Sprintf("%d examples", r.Examples), fmt.Sprintf("%d α", len(r.Alphas)))
	if r.Tolerance != 0 {
		parts = append(parts, fmt.Sprintf("tolerance %g", r.Tolerance))
	}
	if r.BNPolicy != "" && r.BNPolicy != "none" {
		parts = append(parts, "BatchNorm "+r.BNPolicy)
	}
	if r.Precision == "float32" {
		parts = append(parts, "float32")
	}
	if v := r.Options.Variant; v != nil {
		parts = append(parts, v.String())
	}
	if r.Options.LossOnly {
		parts = append(parts, "loss only")
	}
	return strings.Join(parts, ", ")
}

// WriteSummary writes DIR/summary.tex (SummaryTeXBytes, a fragment to
// \input) and DIR/summary-standalone.tex (its wrapper), atomically.
func WriteSummary(dir string, r *certify.Report) error {
	if err := atomicfile.Write(filepath.Join(dir, SummaryTeX), SummaryTeXBytes(r)); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, SummaryStandaloneTeX), SummaryStandaloneTeXBytes())
}

// WriteCertificateFigure draws DIR/certificate.png: for every leaf of the
// certificate its enclosure [inf, sup] of L′ as a box over [a, b], boxes
// with sup ≤ 0 (settled) in blue and the others in vermillion, the settled
// leaves shaded, a zero line, the grid's L′ drawn on top, the witness α, β
// as dashed vertical lines, and a legend; the y range follows the grid's L′
// (enclosures far wider are clipped, and the legend says so). The title
// names the run and its settings.
// It does nothing when the report has no certificate.
func WriteCertificateFigure(dir string, r *certify.Report) error {
	c := r.Certificate
	if c == nil {
		// No certificate this time: a figure left by an earlier analysis
		// would contradict the new report.
		if err := os.Remove(filepath.Join(dir, FigureCertificate+".png")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	p := certificatePlot(r)
	b, err := render("png", func(cv draw.Canvas) { drawPanels(cv, []*plot.Plot{p}) })
	if err != nil {
		return fmt.Errorf("%s.png: %w", FigureCertificate, err)
	}
	return atomicfile.Write(filepath.Join(dir, FigureCertificate+".png"), b)
}

// certificatePlot draws certificate.png's plot (WriteCertificateFigure);
// r.Certificate is not nil.
func certificatePlot(r *certify.Report) *plot.Plot {
	c := r.Certificate
	p := newPlot()
	leg := newLegend()
	p.Title.Text = figureHeading(r) + fmt.Sprintf("L′ enclosure: %s, Δ in [%s, %s]", verdictText(c.Verdict), FormatDeltaBound(c.DeltaLower, c, false), FormatDeltaBound(c.DeltaUpper, c, true))
	alphaAxis(p, nil, "α")
	p.Y.Label.Text = "L′(α)"
	var los, his []float64
	var settled *band
	for _, l := range c.Intervals {
		if l.Sup <= 0 {
			b := &band{lo: l.A, hi: l.B, fill: color.RGBA{0xdd, 0xee, 0xf7, 0xff}}
			p.Add(b)
			if settled == nil {
				settled = b
			}
		}
		if isFinite(l.Inf) && isFinite(l.Sup) {
			los, his = append(los, l.Inf), append(his, l.Sup)
		}
	}
	// Leaves not settled, however narrow, are marked over the settled band
	// (a rising leaf of width 1e-6 next to the witness is otherwise lost
	// inside the band "L′ ≤ 0 proved").
	marks := &unsettledStrips{leaves: c.Intervals}
	p.Add(marks)
	boxes := &leafBoxes{leaves: c.Intervals}
	p.Add(boxes)
	// The y range: the grid's L′ and 0, with room for the enclosures up to
	// half that span again on each side. Wider enclosures (unsettled leaves
	// can be ±10 where L′ ∈ [−3.3, 0.1]) are clipped at the edges rather
	// than flattening L′ into a line.
	dl := finiteXY(r.Alphas, r.DLoss)
	boxLo, boxHi := paddedRange(los, his, []float64{0})
	if len(dl) > 0 {
		lo, hi := paddedRange(xyValues(dl, false), []float64{0})
		span := hi - lo
		p.Y.Min, p.Y.Max = math.Max(boxLo, lo-0.5*span), math.Min(boxHi, hi+0.5*span)
	} else {
		p.Y.Min, p.Y.Max = boxLo, boxHi
	}
	p.Add(&hline{y: 0, style: draw.LineStyle{Color: gridGrey, Width: vg.Points(0.8)}})
	if settled != nil {
		leg.Add("settled: L′ ≤ 0 proved on the leaf", settled)
	}
	if c.UnsettledCount > 0 || marks.any() {
		leg.Add(fmt.Sprintf("not settled: L′ > 0 possible (at least %.1f pt wide)", float64(minLeafWidth)), &band{fill: unsettledFill})
	}
	leg.Add(fmt.Sprintf("enclosure of L′ on a leaf (%d leaves; vermillion: %d unsettled)", c.Leaves, c.UnsettledCount),
		&plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: oiBlue, Radius: vg.Points(3.5), Shape: draw.BoxGlyph{}}},
		&plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: oiVermillion, Radius: vg.Points(2), Shape: draw.BoxGlyph{}}})
	if len(dl) > 0 { // drawn last: on top of the boxes
		if l := series(p, dl, oiBlack, vg.Points(1.4), nil); l != nil {
			p.Add(&plotter.Scatter{XYs: dl, GlyphStyle: draw.GlyphStyle{Color: oiBlack, Radius: vg.Points(1.8), Shape: draw.CircleGlyph{}}})
			leg.Add(fmt.Sprintf("L′ on the report's grid (%d α)", len(dl)), l)
			leg.Avoid(dl)
		}
	}
	if clipped := boxLo < p.Y.Min || boxHi > p.Y.Max; clipped {
		leg.Add(fmt.Sprintf("(enclosures clipped: they span [%.3g, %.3g])", boxLo, boxHi))
	}
	if w := c.Witness; w != nil && c.Verdict == certify.NonMonotone {
		var wl *vline
		for _, a := range []float64{w.Alpha, w.Beta} {
			wl = &vline{x: a, style: draw.LineStyle{Color: oiBlack, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}}
			p.Add(wl)
			leg.Avoid(plotter.XYs{{X: a, Y: p.Y.Min}, {X: a, Y: p.Y.Max}})
		}
		leg.Add(fmt.Sprintf("witness α = %.3g, β = %.3g", w.Alpha, w.Beta), wl)
	}
	p.Add(leg)
	return p
}

// minLeafWidth is the least width certificate.png draws a leaf that is not
// settled with, so that one narrower than a pixel stays visible.
const minLeafWidth = vg.Length(1.5)

// unsettledFill shades the leaves that are not settled (light vermillion).
var unsettledFill = color.RGBA{0xf6, 0xcf, 0xb8, 0xff}

// unsettledStrips shades, over the full height, every leaf whose enclosure
// of L′ is not ≤ 0 (sup > 0 or not finite), at least minLeafWidth wide.
type unsettledStrips struct{ leaves []certify.CertLeaf }

func (u *unsettledStrips) any() bool {
	for _, l := range u.leaves {
		if !(l.Sup <= 0) {
			return true
		}
	}
	return false
}

// Plot implements plot.Plotter.
func (u *unsettledStrips) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	c.SetColor(unsettledFill)
	for _, l := range u.leaves {
		if l.Sup <= 0 {
			continue
		}
		x0, x1 := trX(l.A), trX(l.B)
		if x1-x0 < minLeafWidth {
			m := (x0 + x1) / 2
			x0, x1 = m-minLeafWidth/2, m+minLeafWidth/2
		}
		c.Fill(rect(max(c.Min.X, x0), c.Min.Y, min(c.Max.X, x1), c.Max.Y))
	}
}

// leafBoxes draws each leaf's [A, B] × [Inf, Sup] as an outlined box.
type leafBoxes struct{ leaves []certify.CertLeaf }

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
		if l.Sup > 0 && x1-x0 < minLeafWidth { // visible however narrow
			m := (x0 + x1) / 2
			x0, x1 = m-minLeafWidth/2, m+minLeafWidth/2
		}
		y0, y1 := max(c.Min.Y, trY(l.Inf)), min(c.Max.Y, trY(l.Sup))
		if y1-y0 < vg.Points(0.6) {
			y1 = y0 + vg.Points(0.6)
		}
		c.SetColor(col)
		c.Fill(rect(x0, y0, x1, y1))
	}
}
