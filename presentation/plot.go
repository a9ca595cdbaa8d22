package presentation

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/certify-mli/certify/internal/atomicfile"
)

// This file draws a report's figures: the loss and accuracy along the line
// θα = θ0 + α(θT − θ0) with its bumps (THEORY.md §4–§5), the turning rate of
// the output path beside L′ (§3–§4), and the distribution of per-example Gauss
// lengths against Theorem A's threshold π/2 (§6).

// Figure names, without extension, written by WriteFigureFormats.
const (
	FigureInterpolation = "interpolation"
	FigureTurning       = "turning"
	FigureGaussHist     = "gauss_hist"
)

// Figure size and resolution: 7×5 inches, 150 dots per inch for PNG
// (1050×750 pixels).
const (
	FigureWidth  = 7 * vg.Inch
	FigureHeight = 5 * vg.Inch
	FigureDPI    = 150
)

// The Okabe–Ito palette, distinguishable under the common colour-vision
// deficiencies (Okabe & Ito 2008, "Color Universal Design").
var (
	oiBlack      = color.RGBA{0x00, 0x00, 0x00, 0xff}
	oiOrange     = color.RGBA{0xe6, 0x9f, 0x00, 0xff}
	oiSkyBlue    = color.RGBA{0x56, 0xb4, 0xe9, 0xff}
	oiGreen      = color.RGBA{0x00, 0x9e, 0x73, 0xff}
	oiBlue       = color.RGBA{0x00, 0x72, 0xb2, 0xff}
	oiVermillion = color.RGBA{0xd5, 0x5e, 0x00, 0xff}
	oiPurple     = color.RGBA{0xcc, 0x79, 0xa7, 0xff}

	// bumpShade is Okabe–Ito orange at 25 % over white, opaque so that the
	// band looks the same in every format.
	bumpShade = color.RGBA{0xf9, 0xe7, 0xbf, 0xff}
	gridGrey  = color.RGBA{0x80, 0x80, 0x80, 0xff}
)

// WriteFigures draws the report's figures into the existing directory dir
// as PNG files of FigureWidth×FigureHeight at FigureDPI, and writes nothing
// else:
//
//   - interpolation.png: the loss L(α) (top panel) and the accuracy (bottom
//     panel) against α (THEORY.md §4), each bump of r.Bumps shaded between
//     its Start and End in both panels (§5), the witness pair marked when
//     r.Witness is set, and the verdict and Δ in the title;
//   - turning.png: the turning rate ‖T′(α)‖ of the output path (mean over
//     examples, and of the stacked path Γ; §3) on a log axis when its
//     positive values span more than two decades, and L′(α) with a zero line
//     in a second panel;
//   - gauss_hist.png: a histogram of r.GaussLengthPerExample with vertical
//     lines at π/2 (Theorem A's threshold, §6) and at the mean.
//
// Each file is replaced atomically. It is WriteFigureFormats(dir, r, "png").
func WriteFigures(dir string, r *certify.Report) error {
	return WriteFigureFormats(dir, r, "png")
}

// WriteFigureFormats is WriteFigures in each of the given formats, "png",
// "svg" or "pdf" (the file extension); with no format it writes PNG. It
// returns an error, before writing anything, for an unknown format, a nil
// report, or a series of r (Loss, DLoss, Accuracy, TurningRateMean,
// TurningRateStacked) that is neither empty nor as long as r.Alphas; an empty
// series is drawn as a panel saying it was not recorded. Non-finite values
// are left out of the figures.
func WriteFigureFormats(dir string, r *certify.Report, formats ...string) error {
	if r == nil {
		return errors.New("figures: nil report")
	}
	if len(formats) == 0 {
		formats = []string{"png"}
	}
	for _, f := range formats {
		switch f {
		case "png", "svg", "pdf":
		default:
			return fmt.Errorf("unknown figure format %q (want png, svg or pdf)", f)
		}
	}
	m := len(r.Alphas)
	for _, s := range []struct {
		name string
		v    []float64
	}{
		{"loss", r.Loss}, {"dloss", r.DLoss}, {"accuracy", r.Accuracy},
		{"turning_rate_mean", r.TurningRateMean}, {"turning_rate_stacked", r.TurningRateStacked},
	} {
		if len(s.v) != 0 && len(s.v) != m {
			return fmt.Errorf("figures: %s has %d values but alphas has %d", s.name, len(s.v), m)
		}
	}
	figures := []struct {
		name string
		draw func(draw.Canvas)
	}{
		{FigureInterpolation, func(c draw.Canvas) { drawInterpolation(c, r) }},
		{FigureTurning, func(c draw.Canvas) { drawPanels(c, turningPlots(r)) }},
		{FigureGaussHist, func(c draw.Canvas) { drawPanels(c, []*plot.Plot{gaussHistPlot(r)}) }},
	}
	for _, f := range formats {
		for _, fig := range figures {
			b, err := render(f, fig.draw)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", fig.name, f, err)
			}
			if err := atomicfile.Write(filepath.Join(dir, fig.name+"."+f), b); err != nil {
				return err
			}
		}
	}
	return nil
}

// render draws a figure on a new canvas of the format and returns the
// encoded bytes. A panic of the plotting library becomes an error: a figure
// must not bring down the analysis that produced the report.
func render(format string, paint func(draw.Canvas)) (b []byte, err error) {
	defer func() {
		if e := recover(); e != nil {
			b, err = nil, fmt.Errorf("drawing failed: %v", e)
		}
	}()
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(FigureWidth, FigureHeight), vgimg.UseDPI(FigureDPI))}
	case "svg":
		c = vgsvg.New(FigureWidth, FigureHeight)
	case "pdf":
		c = vgpdf.New(FigureWidth, FigureHeight)
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	paint(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// drawPanels draws plots stacked vertically with aligned data areas and a
// small margin around the figure; titles too wide for it are wrapped
// (fitTitle).
func drawPanels(c draw.Canvas, plots []*plot.Plot) {
	for _, p := range plots {
		fitTitle(p, c.Max.X-c.Min.X-vg.Points(10))
	}
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(8)}
	cs := plot.Align(rows, tiles, c)
	for i, p := range plots {
		p.Draw(cs[i][0])
	}
}

// newPlot returns a plot with the figures' font sizes and a light grid.
func newPlot() *plot.Plot {
	p := plot.New()
	p.Title.TextStyle.Font.Variant = "Sans"
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Variant = "Sans"
		a.Label.TextStyle.Font.Size = vg.Points(11)
		a.Tick.Label.Font.Variant = "Sans"
		a.Tick.Label.Font.Size = vg.Points(10)
		a.Tick.Marker = tidyTicks{}
	}
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{0xe4}
	g.Horizontal.Color = color.Gray{0xe4}
	p.Add(g)
	return p
}

// alphaAxis sets p's x axis to the α range, at least [0, 1].
func alphaAxis(p *plot.Plot, alphas []float64, label string) {
	p.X.Min, p.X.Max = 0, 1
	for _, a := range alphas {
		if !math.IsInf(a, 0) && !math.IsNaN(a) {
			p.X.Min, p.X.Max = math.Min(p.X.Min, a), math.Max(p.X.Max, a)
		}
	}
	p.X.Label.Text = label
	if label == "" {
		p.X.Tick.Marker = unlabelledTicks{}
	}
}

// finiteXY returns the points (x[i], y[i]) with both coordinates finite.
func finiteXY(x, y []float64) plotter.XYs {
	var xy plotter.XYs
	for i := range min(len(x), len(y)) {
		if isFinite(x[i]) && isFinite(y[i]) {
			xy = append(xy, plotter.XY{X: x[i], Y: y[i]})
		}
	}
	return xy
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// series adds a line through xy (with point glyphs on short grids) and
// returns it for the legend, or nil when xy is empty.
func series(p *plot.Plot, xy plotter.XYs, c color.Color, width vg.Length, dashes []vg.Length) *plotter.Line {
	if len(xy) == 0 {
		return nil
	}
	l := &plotter.Line{XYs: xy}
	l.LineStyle = draw.LineStyle{Color: c, Width: width, Dashes: dashes}
	p.Add(l)
	if len(xy) <= 64 {
		s := &plotter.Scatter{XYs: xy, GlyphStyleFunc: func(int) draw.GlyphStyle {
			return draw.GlyphStyle{Color: c, Radius: vg.Points(1.6), Shape: draw.CircleGlyph{}}
		}}
		p.Add(s)
	}
	return l
}

// paddedRange returns [lo, hi] widened by 6 % of its span, or around a
// constant value by 5 % of its magnitude (±1 around 0). It returns (0, 1) for
// an empty series.
func paddedRange(vs ...[]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		for _, x := range v {
			if isFinite(x) {
				lo, hi = math.Min(lo, x), math.Max(hi, x)
			}
		}
	}
	switch {
	case lo > hi:
		return 0, 1
	case lo == hi:
		d := 0.05 * math.Abs(lo)
		if d == 0 {
			d = 1
		}
		return lo - d, hi + d
	}
	d := 0.06 * (hi - lo)
	return lo - d, hi + d
}

// addBands shades every bump of bs between its Start and End over the full
// height of p's data area, beneath the series added later.
func addBands(p *plot.Plot, bs []certify.Bump) *band {
	var first *band
	for _, b := range bs {
		bd := &band{lo: b.Start, hi: b.End, fill: bumpShade}
		p.Add(bd)
		if first == nil {
			first = bd
		}
	}
	return first
}

// interpolationPlots builds the loss (top) and accuracy (bottom) panels.
func interpolationPlots(r *certify.Report) []*plot.Plot {
	top, bot := newPlot(), newPlot()
	leg := newLegend()

	cont := fmt.Sprintf("%.4g continuous", r.DeltaContinuous)
	if math.IsNaN(r.DeltaContinuous) {
		cont = "continuous not computed"
	}
	title := fmt.Sprintf("%s:  Δ = %.4g on the grid, %s", verdictText(r.Verdict), r.Delta, cont)
	if r.Tolerance > 0 {
		title += fmt.Sprintf(" (tolerance %.3g)", r.Tolerance)
	}
	top.Title.Text = figureHeading(r) + title

	if b := addBands(top, r.Bumps); b != nil {
		leg.Add(fmt.Sprintf("bump (%d): L rises", len(r.Bumps)), b)
	}
	addBands(bot, r.Bumps)

	alphaAxis(top, r.Alphas, "")
	alphaAxis(bot, r.Alphas, "α")
	top.Y.Label.Text = "training loss (mean)"
	lossName := "L(α)"
	switch r.LossKind {
	case "mse":
		lossName += ", mean squared error"
	case "cross_entropy":
		lossName += ", cross-entropy"
	}
	lossXY := finiteXY(r.Alphas, r.Loss)
	if l := series(top, lossXY, oiBlue, vg.Points(1.6), nil); l != nil {
		leg.Add(lossName, l)
		leg.Avoid(lossXY)
	} else {
		top.Add(note("loss not recorded"))
	}
	lo, hi := paddedRange(xyValues(lossXY, false))
	if w := r.Witness; w != nil && len(lossXY) > 0 && isFinite(w.Alpha) && isFinite(w.Beta) && isFinite(w.Rise) {
		// The witness is drawn from L(α) on the grid's interpolant up by
		// its rise, so that the mark shows the rise even between grid points.
		la := interpolate(lossXY, w.Alpha)
		lb := la + w.Rise
		lo, hi = math.Min(lo, math.Min(la, lb)), math.Max(hi, math.Max(la, lb))
		path := &plotter.Line{XYs: plotter.XYs{{X: w.Alpha, Y: la}, {X: w.Beta, Y: la}, {X: w.Beta, Y: lb}}}
		path.LineStyle = draw.LineStyle{Color: oiVermillion, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(4), vg.Points(2)}}
		marks := &plotter.Scatter{XYs: plotter.XYs{{X: w.Alpha, Y: la}, {X: w.Beta, Y: lb}}}
		marks.GlyphStyle = draw.GlyphStyle{Color: oiVermillion, Radius: vg.Points(4), Shape: draw.RingGlyph{}}
		top.Add(path, marks)
		leg.Avoid(path.XYs)
		b, a := AlphaPair(w.Beta, w.Alpha)
		leg.Add(fmt.Sprintf("witness: L(%s) − L(%s) = %.3g", b, a, w.Rise), path, marks)
	}
	top.Y.Min, top.Y.Max = lo, hi
	if inset, corner := bumpInset(r); inset != nil {
		// drawInterpolation puts a zoomed inset there: the legend avoids it.
		x0, x1, y0, y1 := insetBox(top, corner)
		for i := 0; i <= 12; i++ { // the inset's whole area, densely
			y := y0 + float64(i)/12*(y1-y0)
			leg.Avoid(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
		}
		leg.Add("inset: zoom on the bump")
	}
	top.Add(leg)

	bot.Y.Label.Text = "accuracy"
	if r.LossKind == "mse" {
		bot.Y.Label.Text = "accuracy (arg-max)"
	}
	accXY := finiteXY(r.Alphas, r.Accuracy)
	certifiedBand(bot, r.AccuracyBounds, false) // the certified accuracy, when the certificate ran
	if series(bot, accXY, oiGreen, vg.Points(1.6), nil) == nil {
		bot.Add(note("accuracy not recorded"))
	}
	// Accuracy is a fraction: the padding stays near [0, 1].
	lo, hi = paddedRange(xyValues(accXY, false))
	bot.Y.Min, bot.Y.Max = math.Max(lo, -0.02), math.Min(hi, 1.02)
	if !(bot.Y.Max > bot.Y.Min) {
		bot.Y.Min, bot.Y.Max = paddedRange(xyValues(accXY, false))
	}
	return []*plot.Plot{top, bot}
}

// turningPlots builds the turning-rate (top) and L′ (bottom) panels.
func turningPlots(r *certify.Report) []*plot.Plot {
	top, bot := newPlot(), newPlot()
	leg := newLegend()
	if math.IsNaN(r.GaussLengthMean) {
		top.Title.Text = figureHeading(r) + fmt.Sprintf("Turning of the output path:  Gauss length not computed (trapezoid on the grid: %.4g mean, %.4g stacked)",
			r.GaussLengthMeanTrapezoid, r.GaussLengthStackedTrapezoid)
	} else {
		stacked := fmt.Sprintf("%.4g (stacked Γ)", r.GaussLengthStacked)
		if c := r.GaussLengthStackedConverged; c != nil && !*c {
			stacked = fmt.Sprintf("%.4g (stacked Γ, not converged)", r.GaussLengthStacked)
		}
		top.Title.Text = figureHeading(r) + fmt.Sprintf("Turning of the output path:  Gauss length %.4g (mean over examples), %s",
			r.GaussLengthMean, stacked)
	}
	top.Title.TextStyle.Font.Size = vg.Points(11)
	addBands(top, r.Bumps)
	addBands(bot, r.Bumps)
	alphaAxis(top, r.Alphas, "")
	alphaAxis(bot, r.Alphas, "α")
	top.Y.Label.Text = "‖T′(α)‖ (rad per unit α)"

	mean := finiteXY(r.Alphas, r.TurningRateMean)
	stacked := finiteXY(r.Alphas, r.TurningRateStacked)
	ys := append(xyValues(mean, false), xyValues(stacked, false)...)
	posMin, maxV := math.Inf(1), 0.0
	clipped := false
	for _, y := range ys {
		if y > 0 {
			posMin = math.Min(posMin, y)
		} else {
			clipped = true
		}
		maxV = math.Max(maxV, y)
	}
	if maxV > 0 && maxV/posMin > 100 {
		// A log axis, drawn as log10 of the values on a linear axis with
		// ticks labelled 10^k (gonum's LogScale misplaces a long axis label
		// and cannot show zeros). Zeros (a straight stretch, or a linear
		// model) are drawn at the axis floor and the legend says so.
		floor := posMin / 2
		for _, xy := range []plotter.XYs{mean, stacked} {
			for i := range xy {
				xy[i].Y = math.Log10(math.Max(xy[i].Y, floor))
			}
		}
		top.Y.Tick.Marker = log10Ticks{}
		top.Y.Min, top.Y.Max = math.Log10(floor), math.Log10(maxV*1.5)
	} else {
		clipped = false
		top.Y.Min, top.Y.Max = 0, 1.06*maxV
		if maxV == 0 {
			top.Y.Max = 1
			if len(ys) > 0 {
				top.Add(note("‖T′‖ = 0: the output paths are straight (G = 0)"))
			}
		}
	}
	if l := series(top, mean, oiBlue, vg.Points(1.6), nil); l != nil {
		leg.Add("mean over examples", l)
		leg.Avoid(mean)
	}
	if l := series(top, stacked, oiVermillion, vg.Points(1.4), []vg.Length{vg.Points(5), vg.Points(3)}); l != nil {
		leg.Add("stacked path Γ", l)
		leg.Avoid(stacked)
	}
	if len(mean)+len(stacked) == 0 {
		top.Add(note("turning rate not recorded"))
	}
	if clipped {
		leg.Add("(zeros drawn at the axis floor)")
	}
	top.Add(leg)

	bot.Y.Label.Text = "L′(α)"
	dl := finiteXY(r.Alphas, r.DLoss)
	zero := &hline{y: 0, style: draw.LineStyle{Color: gridGrey, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(3), vg.Points(3)}}}
	bot.Add(zero)
	if series(bot, dl, oiBlack, vg.Points(1.4), nil) == nil {
		bot.Add(note("L′ not recorded"))
	}
	bot.Y.Min, bot.Y.Max = paddedRange(xyValues(dl, false), []float64{0})
	return []*plot.Plot{top, bot}
}

// gaussHistPlot builds the histogram of per-example Gauss lengths.
func gaussHistPlot(r *certify.Report) *plot.Plot {
	p := newPlot()
	leg := newLegend()
	var g []float64
	for _, v := range r.GaussLengthPerExample {
		if isFinite(v) {
			g = append(g, v)
		}
	}
	p.X.Label.Text = "Gauss length G(γᵢ) of an example's output path (rad)"
	p.Y.Label.Text = "examples"
	// Theorem A (THEORY.md §6) is stated for mean-squared error: its π/2
	// line is drawn for mse runs only, and named the theorem's threshold
	// only where the summary says the theorem applies.
	mse := r.LossKind == "mse"
	applies := theoremsApply(r)
	p.X.Min, p.X.Max = 0, 1
	if mse {
		p.X.Max = math.Pi / 2 * 1.25
	}
	p.Y.Min, p.Y.Max = 0, 1
	if len(g) == 0 {
		why, detail := "none recorded", "no per-example Gauss lengths in this report"
		switch {
		case r.Options.LossOnly:
			why, detail = "not computed (--loss-only)", "the analysis skipped the geometry (--loss-only)"
		case r.Options.NoGeometry:
			why, detail = "not computed (--no-geometry)", "the analysis skipped the geometry (--no-geometry)"
		}
		p.Title.Text = figureHeading(r) + "Gauss length per example: " + why
		p.Add(note(detail))
	} else {
		below := 0
		sum := 0.0
		for _, v := range g {
			sum += v
			if v < math.Pi/2 {
				below++
			}
		}
		mean := sum / float64(len(g))
		switch {
		case mse && applies:
			p.Title.Text = fmt.Sprintf("Gauss length per example: N = %d, %.1f %% below π/2 (Theorem A)", len(g), 100*float64(below)/float64(len(g)))
		case mse:
			p.Title.Text = fmt.Sprintf("Gauss length per example: N = %d, %.1f %% below π/2 (Theorem A does not apply: see the report)", len(g), 100*float64(below)/float64(len(g)))
		default:
			p.Title.Text = fmt.Sprintf("Gauss length per example: N = %d, mean %.4g rad", len(g), mean)
		}
		p.Title.Text = figureHeading(r) + p.Title.Text
		h := histogram(g)
		p.Add(h)
		peak := 0.0
		for _, b := range h.Bins {
			peak = math.Max(peak, b.Weight)
		}
		p.Y.Max = 1.12 * peak
		p.X.Min = math.Min(p.X.Min, h.Bins[0].Min)
		p.X.Max = math.Max(p.X.Max, h.Bins[len(h.Bins)-1].Max*1.02)
		bins := "bins"
		if len(h.Bins) == 1 {
			bins = "bin"
		}
		leg.Add(fmt.Sprintf("examples (%d %s)", len(h.Bins), bins), h)
		for _, b := range h.Bins {
			if b.Weight > 0 {
				mid := (b.Min + b.Max) / 2
				leg.Avoid(plotter.XYs{{X: b.Min, Y: b.Weight}, {X: b.Max, Y: b.Weight}})
				leg.Avoid(plotter.XYs{{X: mid, Y: 0}, {X: mid, Y: b.Weight}})
			}
		}
		m := &vline{x: mean, style: draw.LineStyle{Color: oiBlack, Width: vg.Points(1.6)}}
		p.Add(m)
		leg.Add(fmt.Sprintf("mean = %.4g", mean), m)
		leg.Avoid(plotter.XYs{{X: mean, Y: p.Y.Min}, {X: mean, Y: p.Y.Max}})
	}
	if mse {
		th := &vline{x: math.Pi / 2, style: draw.LineStyle{Color: oiVermillion, Width: vg.Points(1.6), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}}
		p.Add(th)
		if applies {
			leg.Add("π/2 (Theorem A threshold)", th)
		} else {
			leg.Add("π/2 (Theorem A's threshold; the theorem does not apply)", th)
		}
		leg.Avoid(plotter.XYs{{X: th.x, Y: p.Y.Min}, {X: th.x, Y: p.Y.Max}})
	}
	p.Add(leg)
	return p
}

// theoremsApply reports whether conditions.theorems says Theorems A and B
// apply to the run.
func theoremsApply(r *certify.Report) bool {
	t := r.Conditions.Theorems
	return t != nil && t.Applies
}

// figureHeading is the first line of every per-run figure's title: the
// run's name and its key settings (runName, runSettings).
func figureHeading(r *certify.Report) string {
	return runName(r) + " — " + runSettings(r) + "\n"
}

// insetThreshold is the bump height, as a fraction of the loss range on
// the grid, below which interpolation.png adds a zoomed inset.
const insetThreshold = 0.02

// drawInterpolation draws interpolation.png: the loss and accuracy panels
// (interpolationPlots) and, when the largest bump is below insetThreshold
// of the loss range (invisible at the panel's scale), a zoomed inset on it
// in the empty corner of the loss panel.
func drawInterpolation(c draw.Canvas, r *certify.Report) {
	plots := interpolationPlots(r)
	for _, p := range plots {
		fitTitle(p, c.Max.X-c.Min.X-vg.Points(10))
	}
	rows := [][]*plot.Plot{{plots[0]}, {plots[1]}}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Points(6), PadTop: vg.Points(4), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(8)}
	inset, corner := bumpInset(r) // interpolationPlots' legend avoids its corner
	cs := plot.Align(rows, tiles, c)
	for i, p := range plots {
		p.Draw(cs[i][0])
	}
	if inset != nil {
		da := plots[0].DataCanvas(cs[0][0])
		w, h := da.Max.X-da.Min.X, da.Max.Y-da.Min.Y
		var sub draw.Canvas
		if corner == "upper right" {
			sub = draw.Crop(da, 0.56*w, 0, 0.5*h, 0)
		} else {
			sub = draw.Crop(da, 0.07*w, -0.44*w, 0.05*h, -0.5*h)
		}
		sub.SetColor(color.White)
		sub.Fill(rect(sub.Min.X, sub.Min.Y, sub.Max.X, sub.Max.Y))
		sub.SetLineStyle(draw.LineStyle{Color: gridGrey, Width: vg.Points(0.8)})
		sub.Stroke(rect(sub.Min.X, sub.Min.Y, sub.Max.X, sub.Max.Y))
		inset.Draw(draw.Crop(sub, vg.Points(2), -vg.Points(4), vg.Points(2), -vg.Points(2)))
	}
}

// insetBox is the inset's rectangle in p's data coordinates for corner
// ("upper right" or "lower left"), as drawInterpolation places it.
func insetBox(p *plot.Plot, corner string) (x0, x1, y0, y1 float64) {
	fx := func(f float64) float64 { return p.X.Min + f*(p.X.Max-p.X.Min) }
	fy := func(f float64) float64 { return p.Y.Min + f*(p.Y.Max-p.Y.Min) }
	if corner == "upper right" {
		return fx(0.56), fx(1), fy(0.5), fy(1)
	}
	return fx(0.07), fx(0.56), fy(0.05), fy(0.5)
}

// bumpInset returns the zoomed inset on the largest bump when its height
// is below insetThreshold of the loss range on the grid (nil otherwise),
// and the corner of the loss panel it goes in: the one of "upper right"
// and "lower left" holding fewer loss points.
func bumpInset(r *certify.Report) (*plot.Plot, string) {
	xy := finiteXY(r.Alphas, r.Loss)
	if len(r.Bumps) == 0 || len(xy) < 2 {
		return nil, ""
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, q := range xy {
		lo, hi = math.Min(lo, q.Y), math.Max(hi, q.Y)
	}
	b := r.Bumps[0]
	for _, c := range r.Bumps[1:] {
		if c.Height > b.Height {
			b = c
		}
	}
	if !(hi > lo) || !(b.Height < insetThreshold*(hi-lo)) {
		return nil, ""
	}
	w := math.Max(b.End-b.Start, 1e-6)
	a0, a1 := math.Max(b.Start-w, r.Alphas[0]), math.Min(b.End+w, r.Alphas[len(r.Alphas)-1])
	var win plotter.XYs
	for _, q := range xy {
		if q.X >= a0-1e-12 && q.X <= a1+1e-12 {
			win = append(win, q)
		}
	}
	p := newPlot()
	p.Title.Text = fmt.Sprintf("zoom on the bump: height %.3g", b.Height)
	p.Title.TextStyle.Font.Size = vg.Points(9)
	p.Title.Padding = vg.Points(2)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font.Size = vg.Points(8)
		a.Tick.Marker = sparseTicks{}
	}
	p.Add(&band{lo: b.Start, hi: b.End, fill: bumpShade})
	series(p, win, oiBlue, vg.Points(1.4), nil)
	p.Add(&plotter.Scatter{XYs: win, GlyphStyle: draw.GlyphStyle{Color: oiBlue, Radius: vg.Points(1.8), Shape: draw.CircleGlyph{}}})
	p.X.Min, p.X.Max = a0, a1
	p.Y.Min, p.Y.Max = paddedRange(xyValues(win, false))
	// The corner with fewer loss points of the full panel.
	ur, ll := 0, 0
	mid := (r.Alphas[0] + r.Alphas[len(r.Alphas)-1]) / 2
	for _, q := range xy {
		high := q.Y > (lo+hi)/2
		switch {
		case q.X > mid && high:
			ur++
		case q.X < mid && !high:
			ll++
		}
	}
	corner := "upper right"
	if ll < ur {
		corner = "lower left"
	}
	return p, corner
}

// histogram bins g (non-empty, finite) into ⌈√N⌉ equal bins, at most 60,
// over [min, max]; a constant sample gets one bin of width 0.1 rad about it.
func histogram(g []float64) *plotter.Histogram {
	lo, hi := g[0], g[0]
	for _, v := range g {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	n := int(math.Ceil(math.Sqrt(float64(len(g)))))
	n = max(1, min(n, 60))
	if !(hi > lo) {
		n, lo, hi = 1, lo-0.05, hi+0.05
		if lo < 0 && hi-0.05 >= 0 { // Gauss lengths are ≥ 0: keep the bin there
			lo, hi = 0, 0.1
		}
	}
	w := (hi - lo) / float64(n)
	bins := make([]plotter.HistogramBin, n)
	for i := range bins {
		bins[i].Min, bins[i].Max = lo+float64(i)*w, lo+float64(i+1)*w
	}
	bins[n-1].Max = hi // exactly, whatever the rounding of lo + n·w
	for _, v := range g {
		i := min(n-1, max(0, int((v-lo)/w)))
		bins[i].Weight++
	}
	return &plotter.Histogram{
		Bins:      bins,
		Width:     w,
		FillColor: oiSkyBlue,
		LineStyle: draw.LineStyle{Color: oiBlue, Width: vg.Points(0.6)},
	}
}

// log10Ticks marks an axis whose values are log10 of the data: a labelled
// tick at every integer k (the value 10^k) and unlabelled ones at
// log10(j·10^k), j = 2…9.
type log10Ticks struct{}

// Ticks implements plot.Ticker.
func (log10Ticks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for k := math.Floor(lo); k <= math.Ceil(hi); k++ {
		for j := 1; j <= 9; j++ {
			v := k + math.Log10(float64(j))
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if j == 1 {
				t.Label = strconv.FormatFloat(math.Pow(10, k), 'g', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// tidyTicks are plot.DefaultTicks labelled with the fewest digits that
// still tell the ticks apart and round to within 0.1 % of their spacing
// (DefaultTicks labels 0.95, 1, 1.05 as 0.95, 1, 1.1).
type tidyTicks struct{}

// Ticks implements plot.Ticker.
func (tidyTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := niceTicks(lo, hi)
	var major []int
	for i, t := range ts {
		if t.Label != "" {
			major = append(major, i)
		}
	}
	if len(major) < 2 {
		return ts
	}
	step := math.Abs(ts[major[1]].Value - ts[major[0]].Value)
	big := 0.0
	for _, i := range major {
		if math.Abs(ts[i].Value) < 1e-9*step {
			ts[i].Value = 0 // not 1e-17 or −0
		}
		big = math.Max(big, math.Abs(ts[i].Value))
	}
	format := byte('f') // plain decimals for moderate magnitudes
	if big >= 1e6 || big < 1e-4 {
		format = 'g'
	}
	for prec := range 18 {
		if format == 'g' && prec == 0 {
			continue
		}
		ok := true
		labels := make([]string, len(major))
		for k, i := range major {
			labels[k] = strconv.FormatFloat(ts[i].Value, format, prec, 64)
			v, _ := strconv.ParseFloat(labels[k], 64)
			if math.Abs(v-ts[i].Value) > 1e-3*step || (k > 0 && labels[k] == labels[k-1]) {
				ok = false
				break
			}
		}
		if ok {
			for k, i := range major {
				ts[i].Label = labels[k]
			}
			break
		}
	}
	return ts
}

// sparseTicks is tidyTicks with at most three labelled ticks and no minor
// ones, for a small inset.
type sparseTicks struct{}

// Ticks implements plot.Ticker.
func (sparseTicks) Ticks(lo, hi float64) []plot.Tick {
	var majors []plot.Tick
	for _, t := range (tidyTicks{}).Ticks(lo, hi) {
		if t.Label != "" {
			majors = append(majors, t)
		}
	}
	k := (len(majors) + 2) / 3
	var out []plot.Tick
	for i := 0; i < len(majors); i += max(k, 1) {
		out = append(out, majors[i])
	}
	return out
}

// niceTicks places major ticks at multiples of a step 1, 2 or 5 × 10^k
// (3 to 7 of them on [lo, hi]; plot.DefaultTicks may choose steps such as
// 7.5, giving 2.5, 10, 17.5) labelled "x" (tidyTicks formats them), and
// unlabelled minor ticks between them. It falls back to plot.DefaultTicks
// for an empty or non-finite range.
func niceTicks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	mag := math.Pow(10, math.Floor(math.Log10(span/5)))
	step, minors := 0.0, 0
	for _, m := range []struct {
		f float64
		n int
	}{{1, 5}, {2, 4}, {5, 5}, {10, 5}, {20, 4}} {
		step, minors = m.f*mag, m.n
		if span/step <= 7 {
			break
		}
	}
	var ts []plot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for k := -1; ; k++ {
		major := first + float64(k)*step
		if major > hi+1e-9*step {
			break
		}
		if major >= lo-1e-9*step {
			ts = append(ts, plot.Tick{Value: major, Label: "x"})
		}
		for j := 1; j < minors; j++ {
			v := major + float64(j)*step/float64(minors)
			if v >= lo && v <= hi {
				ts = append(ts, plot.Tick{Value: v})
			}
		}
	}
	return ts
}

// unlabelledTicks is plot.DefaultTicks without labels, for an upper panel
// whose α axis repeats the one below.
type unlabelledTicks struct{}

// Ticks implements plot.Ticker.
func (unlabelledTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		ts[i].Label = ""
	}
	return ts
}

// verdictText spells a verdict for a title.
func verdictText(v certify.Verdict) string {
	switch v {
	case certify.CertifiedMonotone:
		return "certified monotone"
	case certify.MonotoneOnGrid:
		return "monotone on the grid"
	case certify.NonMonotone:
		return "non-monotone"
	case certify.Inconclusive:
		return "inconclusive"
	case "":
		return "no verdict"
	}
	return v.String()
}

// xyValues returns the x (or y) coordinates of xy.
func xyValues(xy plotter.XYs, x bool) []float64 {
	v := make([]float64, len(xy))
	for i, p := range xy {
		if x {
			v[i] = p.X
		} else {
			v[i] = p.Y
		}
	}
	return v
}

// interpolate returns the piecewise-linear interpolant of xy (sorted by X)
// at x, constant beyond the ends.
func interpolate(xy plotter.XYs, x float64) float64 {
	j := sort.Search(len(xy), func(i int) bool { return xy[i].X >= x })
	switch {
	case j == 0:
		return xy[0].Y
	case j == len(xy):
		return xy[len(xy)-1].Y
	}
	a, b := xy[j-1], xy[j]
	if !(b.X > a.X) {
		return b.Y
	}
	return a.Y + (x-a.X)/(b.X-a.X)*(b.Y-a.Y)
}

// band fills the α interval [lo, hi] over the full height of the data area.
type band struct {
	lo, hi float64
	fill   color.Color
}

// Plot implements plot.Plotter.
func (b *band) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x0 := max(c.Min.X, min(c.Max.X, trX(b.lo)))
	x1 := max(c.Min.X, min(c.Max.X, trX(b.hi)))
	if !(x1 > x0) { // also a NaN end
		return
	}
	c.SetColor(b.fill)
	c.Fill(rect(x0, c.Min.Y, x1, c.Max.Y))
}

// Thumbnail implements plot.Thumbnailer.
func (b *band) Thumbnail(c *draw.Canvas) {
	c.SetColor(b.fill)
	c.Fill(c.Rectangle.Path())
}

// vline is a vertical line at x over the full height of the data area.
type vline struct {
	x     float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (l *vline) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x := trX(l.x)
	c.StrokeLine2(l.style, x, c.Min.Y, x, c.Max.Y)
}

// DataRange implements plot.DataRanger: the line widens only the x range.
func (l *vline) DataRange() (xmin, xmax, ymin, ymax float64) {
	return l.x, l.x, math.Inf(1), math.Inf(-1)
}

// Thumbnail implements plot.Thumbnailer.
func (l *vline) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(l.style, c.Min.X, y, c.Max.X, y)
}

// hline is a horizontal line at y across the data area.
type hline struct {
	y     float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (l *hline) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(l.y)
	c.StrokeLine2(l.style, c.Min.X, y, c.Max.X, y)
}

// note writes a message centred across the data area, 70 % of the way up
// (clear of a zero line in the middle).
type note string

// Plot implements plot.Plotter.
func (n note) Plot(c draw.Canvas, p *plot.Plot) {
	sty := p.X.Label.TextStyle
	sty.Color = gridGrey
	sty.XAlign, sty.YAlign = draw.XCenter, draw.YCenter
	at := vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: c.Min.Y + 0.7*(c.Max.Y-c.Min.Y)}
	c.FillText(sty, at, string(n))
}

// boxedLegend is a legend drawn as the last plotter, on a translucent white
// box, at the place of the data area that covers the fewest of the points to
// avoid (among equals a corner, then the middle of an edge, the centre, and
// any other place, top right first).
type boxedLegend struct {
	plot.Legend
	names []string    // the entries' texts (plot.Legend keeps its own private)
	avoid plotter.XYs // data coordinates the legend should not hide
}

// legendGlyphReach is how far a point's glyph reaches from its centre in
// the figures (rings and squares of radius ≤ 3 pt, their line included),
// which a legend box keeps clear of (boxedLegend.Plot).
const legendGlyphReach = vg.Length(4) // points

func newLegend() *boxedLegend {
	l := &boxedLegend{Legend: plot.NewLegend()}
	l.Top, l.Left = true, true
	l.TextStyle.Font.Variant = "Sans"
	l.TextStyle.Font.Size = vg.Points(10)
	l.ThumbnailWidth = vg.Points(18)
	l.Padding = vg.Points(2)
	return l
}

// Avoid adds the points of a polyline, and 8 points on each of its segments,
// to the points the legend should not hide.
func (l *boxedLegend) Avoid(xy plotter.XYs) {
	for i, p := range xy {
		if i > 0 {
			q := xy[i-1]
			for k := 1; k < 8; k++ {
				f := float64(k) / 8
				l.avoid = append(l.avoid, plotter.XY{X: q.X + f*(p.X-q.X), Y: q.Y + f*(p.Y-q.Y)})
			}
		}
		l.avoid = append(l.avoid, p)
	}
}

// Plot implements plot.Plotter.
func (l *boxedLegend) Plot(c draw.Canvas, p *plot.Plot) {
	if len(l.names) == 0 {
		return
	}
	trX, trY := p.Transforms(&c)
	inset, pad := vg.Points(6), vg.Points(4)
	sty := l.TextStyle
	var w, eh vg.Length
	for _, t := range l.names {
		w = max(w, l.ThumbnailWidth+sty.Rectangle(" "+t).Max.X)
		eh = max(eh, sty.Rectangle(t).Max.Y)
	}
	n := vg.Length(len(l.names))
	h := n*eh + (n-1)*l.Padding + sty.FontExtents().Descent
	// Places as fractions (fx, fy) of the free room: 1 is right or top.
	// The corners, the middles of the edges and the centre first, then a
	// 13×13 grid of places for when all of those hide data.
	places := [][2]vg.Length{{1, 1}, {0, 1}, {1, 0}, {0, 0}, {0.5, 1}, {1, 0.5}, {0, 0.5}, {0.5, 0}, {0.5, 0.5}}
	for i := 12; i >= 0; i-- {
		for j := 12; j >= 0; j-- {
			places = append(places, [2]vg.Length{vg.Length(j) / 12, vg.Length(i) / 12})
		}
	}
	roomX := c.Max.X - c.Min.X - 2*inset - w
	roomY := c.Max.Y - c.Min.Y - 2*inset - h
	boxAt := func(f [2]vg.Length) vg.Rectangle {
		mn := vg.Point{X: c.Min.X + inset + f[0]*max(0, roomX), Y: c.Min.Y + inset + f[1]*max(0, roomY)}
		return vg.Rectangle{Min: mn, Max: mn.Add(vg.Point{X: w, Y: h})}
	}
	// A point is hidden when its glyph (up to legendGlyphReach from its
	// centre) meets the box, not only when its centre is in it: a ring at
	// the data area's edge was half covered by a box in that corner.
	reach := pad + legendGlyphReach
	best, bestHits := 0, -1
	for i, f := range places {
		r := boxAt(f)
		hits := 0
		for _, q := range l.avoid {
			x, y := trX(q.X), trY(q.Y)
			if x >= r.Min.X-reach && x <= r.Max.X+reach && y >= r.Min.Y-reach && y <= r.Max.Y+reach {
				hits++
			}
		}
		if bestHits < 0 || hits < bestHits {
			best, bestHits = i, hits
		}
	}
	inner := boxAt(places[best])
	box := vg.Rectangle{Min: inner.Min.Sub(vg.Point{X: pad, Y: pad}), Max: inner.Max.Add(vg.Point{X: pad, Y: pad})}
	c.SetColor(color.NRGBA{0xff, 0xff, 0xff, 0xe0})
	c.Fill(box.Path())
	c.SetLineStyle(draw.LineStyle{Color: color.Gray{0xb0}, Width: vg.Points(0.5)})
	c.Stroke(box.Path())
	c.Rectangle = inner
	l.Legend.Draw(c)
}

// Add records an entry (see plot.Legend.Add).
func (l *boxedLegend) Add(name string, thumbs ...plot.Thumbnailer) {
	l.names = append(l.names, name)
	l.Legend.Add(name, thumbs...)
}

// rect returns the closed path of the rectangle with corners (x0, y0) and
// (x1, y1).
func rect(x0, y0, x1, y1 vg.Length) vg.Path {
	var p vg.Path
	p.Move(vg.Point{X: x0, Y: y0})
	p.Line(vg.Point{X: x1, Y: y0})
	p.Line(vg.Point{X: x1, Y: y1})
	p.Line(vg.Point{X: x0, Y: y1})
	p.Close()
	return p
}

var (
	_ plot.Plotter     = (*band)(nil)
	_ plot.Thumbnailer = (*band)(nil)
	_ plot.Plotter     = (*vline)(nil)
	_ plot.DataRanger  = (*vline)(nil)
	_ plot.Plotter     = (*hline)(nil)
	_ plot.Plotter     = note("")
	_ plot.Plotter     = (*boxedLegend)(nil)
)

// AlphaPair formats two different α with as few decimals as tell them apart
// (at least 4, at most 17 significant digits), so that a witness pair a few
// ulps wide (a softplus jump, issue 18) does not print as L(0.375) − L(0.375).
func AlphaPair(a, b float64) (string, string) {
	for d := 4; d < 17; d++ {
		sa, sb := strconv.FormatFloat(a, 'f', d, 64), strconv.FormatFloat(b, 'f', d, 64)
		if sa != sb || a == b {
			return sa, sb
		}
	}
	return strconv.FormatFloat(a, 'g', 17, 64), strconv.FormatFloat(b, 'g', 17, 64)
}

// fitTitle wraps each line of p's title that is wider than width (in the
// title's font) after its ", " and " — " separators, and where one part is
// still too wide, between its words, so that the figure's heading (run,
// data, loss, examples, α, tolerance, BatchNorm policy: figureHeading) is
// not clipped at the figure's edges. Lines that fit, and a single word
// wider than width, are left as they are.
func fitTitle(p *plot.Plot, width vg.Length) {
	if p.Title.Text == "" || width <= 0 {
		return
	}
	sty := p.Title.TextStyle
	fits := func(s string) bool { return sty.Width(s) <= width }
	var out []string
	for _, line := range strings.Split(p.Title.Text, "\n") {
		if fits(line) {
			out = append(out, line)
			continue
		}
		out = append(out, packWords(breakAfter(line, ", ", " — ", " ("), fits)...)
	}
	p.Title.Text = strings.Join(out, "\n")
}

// breakAfter splits s after every occurrence of the separators, keeping
// them at the ends of the parts (concatenated, the parts are s); a
// separator " (" splits before its parenthesis, which opens the next part
// (a parenthesised clause such as "(runs: DIR)" is kept whole when it fits).
func breakAfter(s string, seps ...string) []string {
	var parts []string
	for len(s) > 0 {
		cut, n := -1, 0
		for _, x := range seps {
			if i := strings.Index(s, x); i >= 0 && (cut < 0 || i < cut) {
				cut, n = i, len(x)
				if x == " (" {
					n = 1
				}
			}
		}
		if cut < 0 {
			parts = append(parts, s)
			break
		}
		parts = append(parts, s[:cut+n])
		s = s[cut+n:]
	}
	return parts
}

// packWords packs parts greedily into lines that fit (a part that does not
// fit on a line of its own is broken between its words first); the lines'
// trailing spaces are dropped.
func packWords(parts []string, fits func(string) bool) []string {
	var lines []string
	cur := ""
	flush := func() {
		if t := strings.TrimRight(cur, " "); t != "" {
			lines = append(lines, t)
		}
		cur = ""
	}
	for _, part := range parts {
		words := []string{part}
		if !fits(strings.TrimRight(part, " ")) {
			words = breakAfter(part, " ")
		}
		for _, w := range words {
			if cur != "" && !fits(strings.TrimRight(cur+w, " ")) {
				flush()
			}
			cur += w
		}
	}
	flush()
	return lines
}
