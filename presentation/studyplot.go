package presentation

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/internal/atomicfile"
)

// This file draws a study's figures across runs (Lucas et al. 2021, §5 and
// Figures 3–5): Δ (THEORY.md §5) against the normalised weight distance
// ‖θT − θ0‖/‖θ0‖ and against the mean Gauss length Ḡ (§3), the power law
// between Ḡ and the distance, and a heatmap of mean Δ over two configuration
// keys.

// Study figure names, without extension, written by WriteStudyFigures.
const (
	FigureDeltaDistance = "delta_distance"
	FigureDeltaGauss    = "delta_gauss"
	FigureGaussDistance = "gauss_distance"
	FigureDeltaHeatmap  = "delta_heatmap"
)

// StudyFigureSpec says what WriteStudyFigures draws.
type StudyFigureSpec struct {
	// PaperGauss uses gauss_length_mean_trapezoid (the paper's trapezoid
	// rule, no corners) instead of the corner-aware gauss_length_mean.
	PaperGauss bool
	// HeatX and HeatY are the configuration keys (StudyRun.Value) of the
	// heatmap's columns and rows; empty means "lr" and "depth".
	HeatX, HeatY string
	// Formats are "png", "svg" or "pdf"; none means png and pdf.
	Formats []string
	// StudyFilter's MaxTrainLoss selects the runs drawn; its Threshold is
	// not used (the figures show Δ itself).
	certify.StudyFilter
	// SkipHeatmap, when not nil, is told why the heatmap was skipped (a
	// run without the HeatX or HeatY key) and the other figures are drawn;
	// when nil, that is an error.
	SkipHeatmap func(reason string)
	// Runs names the runs drawn (e.g. the runs directory), added to every
	// figure's title as "(runs: RUNS)"; empty adds nothing.
	Runs string
}

// PowerLaw is the least-squares line log10 y = Intercept + Slope·log10 x
// through N points with coefficient of determination RSquared.
type PowerLaw struct {
	Slope, Intercept, RSquared float64
	N                          int
	// Dropped counts runs left out because x or y was not positive or
	// not computed (NaN: a --loss-only report has no Gauss length).
	Dropped int
}

// gaussOf returns the run's mean per-example Gauss length (THEORY.md §3):
// the corner-aware value, or the paper's trapezoid value.
func gaussOf(r *certify.Report, paper bool) float64 {
	if paper {
		return r.GaussLengthMeanTrapezoid
	}
	return r.GaussLengthMean
}

// FitGaussDistance fits log10 Ḡ = a + b·log10 d by ordinary least squares
// (gonum stat.LinearRegression, stat.RSquared) over the runs with positive
// normalised weight distance d and positive mean Gauss length Ḡ (the
// trapezoid value when paperGauss). It returns an error when fewer than two
// runs qualify or their distances are all equal.
func FitGaussDistance(runs []certify.StudyRun, paperGauss bool) (PowerLaw, error) {
	var x, y []float64
	var fit PowerLaw
	for _, r := range runs {
		d, g := r.Report.WeightDistanceNormalized, gaussOf(r.Report, paperGauss)
		if !(d > 0 && g > 0) || math.IsInf(d, 0) || math.IsInf(g, 0) {
			fit.Dropped++
			continue
		}
		x, y = append(x, math.Log10(d)), append(y, math.Log10(g))
	}
	fit.N = len(x)
	if len(x) < 2 {
		return fit, fmt.Errorf("Gauss length against distance: %s with positive values, need 2", plural(len(x), "run"))
	}
	if stat.Variance(x, nil) == 0 {
		return fit, errors.New("Gauss length against distance: all runs have the same distance")
	}
	fit.Intercept, fit.Slope = stat.LinearRegression(x, y, nil, false)
	fit.RSquared = stat.RSquared(x, y, nil, fit.Intercept, fit.Slope)
	return fit, nil
}

// WriteStudyFigures draws a study's figures into the existing directory dir,
// each file of FigureWidth×FigureHeight (PNG at FigureDPI) replaced
// atomically:
//
//   - delta_distance: Δ (grid, THEORY.md §5) against the normalised weight
//     distance ‖θT − θ0‖/‖θ0‖ on a log axis;
//   - delta_gauss: Δ against the mean Gauss length Ḡ (rad, §3);
//   - gauss_distance: log10 Ḡ against log10 distance with the FitGaussDistance
//     line, its slope and R² in the legend;
//   - delta_heatmap: the mean Δ over all runs sharing each pair of levels of
//     spec.HeatX (columns) and spec.HeatY (rows), with a viridis colour bar,
//     each cell annotated with its mean and number of runs.
//
// Points are coloured by optimizer (config.json "optim", Okabe–Ito colours)
// and shaped by "batchnorm" (circle false, triangle true, square unknown);
// the legend names each colour and shape by key=value ("optim=adam",
// "batchnorm=true"). Other keys (lr, seed, …) are not encoded. Δ
// is drawn on a log axis when its positive values span more than two
// decades; Δ = 0 is then drawn at the axis floor, which the legend says. It
// returns an error, before writing, for an unknown format, no runs left after
// spec's filter, or a heatmap key that no run has.
func WriteStudyFigures(dir string, runs []certify.StudyRun, spec StudyFigureSpec) error {
	formats := spec.Formats
	if len(formats) == 0 {
		formats = []string{"png", "pdf"}
	}
	for _, f := range formats {
		switch f {
		case "png", "svg", "pdf":
		default:
			return fmt.Errorf("unknown figure format %q (want png, svg or pdf)", f)
		}
	}
	if spec.HeatX == "" {
		spec.HeatX = "lr"
	}
	if spec.HeatY == "" {
		spec.HeatY = "depth"
	}
	kept, _, _ := spec.Apply(runs)
	if len(kept) == 0 {
		return errors.New("no run passes the filter")
	}
	var heat *heatmap
	if err := certify.CheckKeys(kept, []string{spec.HeatX, spec.HeatY}); err != nil && spec.SkipHeatmap == nil {
		return fmt.Errorf("heatmap: %w", err)
	} else if err != nil {
		spec.SkipHeatmap(err.Error())
	} else {
		heat = heatGrid(kept, spec.HeatX, spec.HeatY)
		heat.runs = spec.Runs
	}
	figures := []struct {
		name string
		draw func(draw.Canvas)
	}{
		{FigureDeltaDistance, func(c draw.Canvas) {
			drawPanels(c, []*plot.Plot{titled(deltaScatter(kept, false, spec.PaperGauss), spec.Runs)})
		}},
		{FigureDeltaGauss, func(c draw.Canvas) {
			drawPanels(c, []*plot.Plot{titled(deltaScatter(kept, true, spec.PaperGauss), spec.Runs)})
		}},
		{FigureGaussDistance, func(c draw.Canvas) {
			drawPanels(c, []*plot.Plot{titled(gaussDistancePlot(kept, spec.PaperGauss), spec.Runs)})
		}},
		{FigureDeltaHeatmap, func(c draw.Canvas) { drawHeatmap(c, heat) }},
	}
	for _, f := range formats {
		for _, fig := range figures {
			if fig.name == FigureDeltaHeatmap && heat == nil {
				continue
			}
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

// categoryColours are the Okabe–Ito colours given to optimizers, in order.
var categoryColours = []color.Color{oiBlue, oiOrange, oiGreen, oiVermillion, oiPurple, oiSkyBlue, oiBlack}

// runStyle gives each run a colour by optimizer and a glyph by batchnorm, and
// the legend entries that explain them.
type runStyle struct {
	optims []certify.Level
	bns    []certify.Level
}

func newRunStyle(runs []certify.StudyRun) runStyle {
	var s runStyle
	opt, _ := groupRuns(runs, []string{"optim"})
	bn, _ := groupRuns(runs, []string{"batchnorm"})
	for _, l := range opt {
		s.optims = append(s.optims, l[0])
	}
	for _, l := range bn {
		s.bns = append(s.bns, l[0])
	}
	return s
}

func (s runStyle) colour(r *certify.StudyRun) color.Color {
	v, _ := r.Value("optim")
	for i, l := range s.optims {
		if certify.CompareLevels(l, v) == 0 {
			return categoryColours[i%len(categoryColours)]
		}
	}
	return oiBlack
}

func bnGlyph(v certify.Level) draw.GlyphDrawer {
	switch v {
	case false:
		return draw.CircleGlyph{}
	case true:
		return draw.TriangleGlyph{}
	}
	return draw.SquareGlyph{}
}

func (s runStyle) glyph(r *certify.StudyRun) draw.GlyphStyle {
	v, _ := r.Value("batchnorm")
	return draw.GlyphStyle{Color: s.colour(r), Radius: vg.Points(3.5), Shape: bnGlyph(v)}
}

// addLegend adds to leg one entry per encoded value, named key=value as in
// the run directories' names: "optim=adam" with its colour, then
// "batchnorm=true" with its shape; a missing value is "n/a". A key with a
// single value among the runs (constant, or absent) distinguishes nothing
// and gets no entry. A thumbnail
// takes the other key's shape or colour when that key has a single value,
// so that it looks like the points; otherwise a circle or grey.
func (s runStyle) addLegend(leg *boxedLegend) {
	shape := draw.GlyphDrawer(draw.CircleGlyph{})
	if len(s.bns) == 1 {
		shape = bnGlyph(s.bns[0])
	}
	if len(s.optims) > 1 { // a value shared by every run distinguishes nothing: no entry
		for i, l := range s.optims {
			g := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: categoryColours[i%len(categoryColours)], Radius: vg.Points(3.5), Shape: shape}}
			leg.Add(levelLabel("optim", l), g)
		}
	}
	var col color.Color = gridGrey
	if len(s.optims) == 1 {
		col = categoryColours[0]
	}
	if len(s.bns) > 1 {
		for _, l := range s.bns {
			g := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: col, Radius: vg.Points(3.5), Shape: bnGlyph(l)}}
			leg.Add(levelLabel("batchnorm", l), g)
		}
	}
}

// levelLabel names a value of a configuration key: "key=value".
func levelLabel(key string, l certify.Level) string { return key + "=" + certify.FormatLevel(l) }

// logScale maps positive values to log10 for a log axis: values ≤ 0 go to
// the floor, a third of the smallest positive value. ok is false when no
// value is positive.
type logScale struct {
	floor   float64
	clipped int // values drawn at the floor
}

func newLogScale(vals []float64) (logScale, bool) {
	pos := math.Inf(1)
	for _, v := range vals {
		if v > 0 && !math.IsInf(v, 0) {
			pos = math.Min(pos, v)
		}
	}
	if math.IsInf(pos, 1) {
		return logScale{}, false
	}
	s := logScale{floor: pos / 3}
	for _, v := range vals {
		if !(v > 0) {
			s.clipped++
		}
	}
	return s, true
}

func (s logScale) at(v float64) float64 { return math.Log10(math.Max(v, s.floor)) }

// setLogAxis marks a with log10 ticks over [floor, max·1.6].
func (s logScale) setLogAxis(a *plot.Axis, vals []float64) {
	hi := s.floor
	for _, v := range vals {
		if isFinite(v) {
			hi = math.Max(hi, v)
		}
	}
	a.Tick.Marker = shortLog10Ticks{}
	a.Min, a.Max = math.Log10(s.floor)-0.1, math.Log10(hi)+0.2
	if a.Max-a.Min < 1 { // at least a decade, so that a labelled tick shows
		mid := (a.Min + a.Max) / 2
		a.Min, a.Max = mid-0.5, mid+0.5
	}
}

// shortLog10Ticks are log10Ticks, with the ticks at 2·10^k and 5·10^k
// labelled too when fewer than three powers of ten are in range.
type shortLog10Ticks struct{}

// Ticks implements plot.Ticker.
func (shortLog10Ticks) Ticks(lo, hi float64) []plot.Tick {
	ts := log10Ticks{}.Ticks(lo, hi)
	labelled := 0
	for _, t := range ts {
		if t.Label != "" {
			labelled++
		}
	}
	if labelled >= 3 {
		return ts
	}
	for i, t := range ts {
		k := math.Floor(t.Value + 1e-9)
		for _, j := range []float64{2, 5} {
			if math.Abs(t.Value-(k+math.Log10(j))) < 1e-9 {
				ts[i].Label = strconv.FormatFloat(j*math.Pow(10, k), 'g', 12, 64)
			}
		}
	}
	return ts
}

// plural spells "1 run", "2 runs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// deltaScatter is Δ against the normalised distance (log x) or against the
// mean Gauss length.
func deltaScatter(runs []certify.StudyRun, gauss, paper bool) *plot.Plot {
	p := newPlot()
	leg := newLegend()
	sty := newRunStyle(runs)
	xs, ds := make([]float64, len(runs)), make([]float64, len(runs))
	offGrid := make([]bool, len(runs))
	for i, r := range runs {
		var src string
		ds[i], src = certify.StudyDelta(r.Report)
		offGrid[i] = src != certify.DeltaFromGrid
		if gauss {
			xs[i] = gaussOf(r.Report, paper)
		} else {
			xs[i] = r.Report.WeightDistanceNormalized
		}
	}
	tx := func(v float64) float64 { return v }
	if gauss {
		p.Title.Text = "Non-monotonicity Δ against the turning of the output paths"
		p.X.Label.Text = "mean Gauss length Ḡ of the output paths (rad)"
		if paper {
			p.X.Label.Text = "mean Gauss length Ḡ, trapezoid rule on the grid (rad)"
		}
		p.X.Min, p.X.Max = paddedRange(xs)
		p.X.Min = math.Max(p.X.Min, 0)
	} else {
		p.Title.Text = "Non-monotonicity Δ against the distance travelled by the weights"
		p.X.Label.Text = "normalised weight distance ‖θT − θ0‖ / ‖θ0‖ (log scale)"
		if xl, ok := newLogScale(xs); ok {
			tx = xl.at
			xl.setLogAxis(&p.X, xs)
			if xl.clipped > 0 {
				leg.Add(fmt.Sprintf("(%s with distance 0 at the left edge)", plural(xl.clipped, "run")))
			}
		}
	}
	ty := func(v float64) float64 { return v }
	p.Y.Label.Text = "Δ, largest rise of the training loss along α"
	var yl logScale
	logY := false
	if s, ok := newLogScale(ds); ok {
		hi := 0.0
		for _, d := range ds {
			hi = math.Max(hi, d)
		}
		if hi/(3*s.floor) > 100 {
			logY, yl = true, s
		}
	}
	if logY {
		ty = yl.at
		yl.setLogAxis(&p.Y, ds)
		p.Y.Label.Text += " (log scale)"
	} else {
		lo, hi := paddedRange(ds, []float64{0})
		p.Y.Min, p.Y.Max = lo, hi
	}
	var xy, offXY plotter.XYs
	var styles []draw.GlyphStyle
	for i := range runs {
		if isFinite(xs[i]) && isFinite(ds[i]) {
			xy = append(xy, plotter.XY{X: tx(xs[i]), Y: ty(ds[i])})
			styles = append(styles, sty.glyph(&runs[i]))
			if offGrid[i] {
				offXY = append(offXY, xy[len(xy)-1])
			}
		}
	}
	if len(offXY) > 0 { // a ring around the runs whose grid missed the rise
		ring := &plotter.Scatter{XYs: offXY, GlyphStyle: draw.GlyphStyle{Color: oiBlack, Radius: vg.Points(6.5), Shape: draw.RingGlyph{}}}
		p.Add(ring)
		leg.Add(fmt.Sprintf("Δ between grid points (%s: continuous or certified Δ; grid Δ = 0)", plural(len(offXY), "run")), ring)
	}
	if missing := len(runs) - len(xy); missing > 0 {
		leg.Add(fmt.Sprintf("(%s not drawn: a value not computed, e.g. Ḡ under --loss-only)", plural(missing, "run")))
	}
	if logY && yl.clipped > 0 {
		floor := &hline{y: ty(0), style: draw.LineStyle{Color: gridGrey, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(3), vg.Points(3)}}}
		p.Add(floor)
		leg.Avoid(plotter.XYs{{X: p.X.Min, Y: ty(0)}, {X: p.X.Max, Y: ty(0)}})
		leg.Add(fmt.Sprintf("Δ = 0 (%s, drawn on the dashed floor)", plural(yl.clipped, "run")), &vline{style: floor.style})
	}
	sc := &plotter.Scatter{XYs: xy, GlyphStyleFunc: func(i int) draw.GlyphStyle { return styles[i] }}
	p.Add(sc)
	leg.Avoid(xy)
	sty.addLegend(leg)
	p.Add(leg)
	return p
}

// gaussDistancePlot is log10 Ḡ against log10 distance with the fitted line.
func gaussDistancePlot(runs []certify.StudyRun, paper bool) *plot.Plot {
	p := newPlot()
	leg := newLegend()
	sty := newRunStyle(runs)
	p.Title.Text = "Turning of the output paths against the distance travelled by the weights"
	p.X.Label.Text = "normalised weight distance ‖θT − θ0‖ / ‖θ0‖ (log scale)"
	p.Y.Label.Text = "mean Gauss length Ḡ (rad, log scale)"
	if paper {
		p.Y.Label.Text = "mean Gauss length Ḡ, trapezoid rule (rad, log scale)"
	}
	var xy plotter.XYs
	var styles []draw.GlyphStyle
	var xs, ys []float64
	for i, r := range runs {
		d, g := r.Report.WeightDistanceNormalized, gaussOf(r.Report, paper)
		if d > 0 && g > 0 && isFinite(d) && isFinite(g) {
			xy = append(xy, plotter.XY{X: math.Log10(d), Y: math.Log10(g)})
			xs, ys = append(xs, d), append(ys, g)
			styles = append(styles, sty.glyph(&runs[i]))
		}
	}
	if xl, ok := newLogScale(xs); ok {
		xl.setLogAxis(&p.X, xs)
		yl, _ := newLogScale(ys)
		yl.setLogAxis(&p.Y, ys)
		// Points need no floor here: only positive values are drawn.
		p.X.Min, p.Y.Min = p.X.Min+math.Log10(3), p.Y.Min+math.Log10(3)
		if p.X.Max-p.X.Min < 1 {
			p.X.Min = p.X.Max - 1
		}
		if p.Y.Max-p.Y.Min < 1 {
			p.Y.Min = p.Y.Max - 1
		}
	} else {
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -1, 1, -1, 1
	}
	fit, err := FitGaussDistance(runs, paper)
	if err == nil {
		line := &plotter.Line{XYs: plotter.XYs{
			{X: p.X.Min, Y: fit.Intercept + fit.Slope*p.X.Min},
			{X: p.X.Max, Y: fit.Intercept + fit.Slope*p.X.Max},
		}}
		line.LineStyle = draw.LineStyle{Color: oiBlack, Width: vg.Points(1.2), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
		p.Add(line)
		leg.Avoid(line.XYs)
		leg.Add(fmt.Sprintf("least squares: slope %.3g, R² = %.3g (N = %d)", fit.Slope, fit.RSquared, fit.N), line)
	} else {
		leg.Add("no fit: " + strings.TrimPrefix(err.Error(), "Gauss length against distance: ")) // in the legend, which avoids the points
	}
	if fit.Dropped > 0 {
		leg.Add(fmt.Sprintf("(%s with Ḡ or distance 0 or not computed: not drawn)", plural(fit.Dropped, "run")))
	}
	p.Add(&plotter.Scatter{XYs: xy, GlyphStyleFunc: func(i int) draw.GlyphStyle { return styles[i] }})
	leg.Avoid(xy)
	sty.addLegend(leg)
	p.Add(leg)
	return p
}

// titled adds "(runs: RUNS)" to p's title when runs is not empty, and
// returns p.
func titled(p *plot.Plot, runs string) *plot.Plot {
	if runs != "" {
		p.Title.Text += " (runs: " + runs + ")"
	}
	return p
}

// heatmap is the mean Δ over the runs of each (x, y) pair of levels.
type heatmap struct {
	xKey, yKey string
	xs, ys     []certify.Level
	mean       [][]float64 // [len(ys)][len(xs)], NaN where no run
	count      [][]int
	offGrid    [][]int // runs whose Δ is not the grid's (certify.StudyDelta)
	runs       string  // StudyFigureSpec.Runs, for the title
}

// heatGrid averages Δ (StudyDelta) over the runs sharing each pair of levels.
func heatGrid(runs []certify.StudyRun, xKey, yKey string) *heatmap {
	xl, xi := groupRuns(runs, []string{xKey})
	yl, yi := groupRuns(runs, []string{yKey})
	h := &heatmap{xKey: xKey, yKey: yKey}
	for _, l := range xl {
		h.xs = append(h.xs, l[0])
	}
	for _, l := range yl {
		h.ys = append(h.ys, l[0])
	}
	sum := make([][]float64, len(h.ys))
	h.mean = make([][]float64, len(h.ys))
	h.count = make([][]int, len(h.ys))
	h.offGrid = make([][]int, len(h.ys))
	for j := range h.ys {
		h.offGrid[j] = make([]int, len(h.xs))
		sum[j] = make([]float64, len(h.xs))
		h.mean[j] = make([]float64, len(h.xs))
		h.count[j] = make([]int, len(h.xs))
	}
	for k, r := range runs {
		d, src := certify.StudyDelta(r.Report)
		sum[yi[k]][xi[k]] += d
		h.count[yi[k]][xi[k]]++
		if src != certify.DeltaFromGrid {
			h.offGrid[yi[k]][xi[k]]++
		}
	}
	for j := range h.ys {
		for i := range h.xs {
			h.mean[j][i] = math.NaN()
			if h.count[j][i] > 0 {
				h.mean[j][i] = sum[j][i] / float64(h.count[j][i])
			}
		}
	}
	return h
}

// keyLabel names a configuration key on an axis.
func keyLabel(key string) string {
	switch key {
	case "lr":
		return "learning rate (lr)"
	case "depth":
		return "depth (hidden layers)"
	case "width":
		return "width (units of the widest hidden layer)"
	case "optim":
		return "optimizer"
	case "init_scale", "init-scale":
		return "initialisation scale"
	}
	return key
}

// categoryTicks labels the integer positions 0…n−1 with the levels.
type categoryTicks []certify.Level

// Ticks implements plot.Ticker.
func (c categoryTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := make([]plot.Tick, len(c))
	for i, l := range c {
		ts[i] = plot.Tick{Value: float64(i), Label: certify.FormatLevel(l)}
	}
	return ts
}

// heatCells draws the heatmap's cells with their annotations.
type heatCells struct {
	h      *heatmap
	colour func(v float64) color.Color // nil for a cell without runs
	label  draw.TextStyle
}

// Plot implements plot.Plotter.
func (hc *heatCells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for j := range hc.h.ys {
		for i := range hc.h.xs {
			x0, x1 := trX(float64(i)-0.5), trX(float64(i)+0.5)
			y0, y1 := trY(float64(j)-0.5), trY(float64(j)+0.5)
			n := hc.h.count[j][i]
			var fill color.Color = color.Gray{0xf2}
			if n > 0 {
				fill = hc.colour(hc.h.mean[j][i])
			}
			c.SetColor(fill)
			c.Fill(rect(x0, y0, x1, y1))
			c.SetLineStyle(draw.LineStyle{Color: color.White, Width: vg.Points(1.5)})
			c.Stroke(rect(x0, y0, x1, y1))
			text := "no runs"
			if n > 0 {
				text = fmt.Sprintf("mean Δ = %.3g\n%s", hc.h.mean[j][i], plural(n, "run"))
				if o := hc.h.offGrid[j][i]; o > 0 {
					text += fmt.Sprintf("\n* %d: Δ between grid points", o)
				}
			}
			sty := hc.label
			sty.Color = oiBlack
			if r, g, b, _ := fill.RGBA(); 0.2126*float64(r)+0.7152*float64(g)+0.0722*float64(b) < 0.45*0xffff {
				sty.Color = color.White
			}
			c.FillText(sty, vg.Point{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}, text)
		}
	}
}

// drawHeatmap draws the heatmap on the left and its colour bar on the right.
func drawHeatmap(c draw.Canvas, h *heatmap) {
	p := newPlot()
	p.Title.Text = "Mean non-monotonicity Δ over all runs of each cell"
	titled(p, h.runs)
	p.X.Label.Text = keyLabel(h.xKey)
	p.Y.Label.Text = keyLabel(h.yKey)
	p.X.Tick.Marker = categoryTicks(h.xs)
	p.Y.Tick.Marker = categoryTicks(h.ys)
	p.X.Min, p.X.Max = -0.5, float64(len(h.xs))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(h.ys))-0.5
	p.X.Padding, p.Y.Padding = 0, 0

	var vals []float64
	for _, row := range h.mean {
		for _, v := range row {
			if isFinite(v) {
				vals = append(vals, v)
			}
		}
	}
	cm := &viridis{alpha: 1}
	var toScale func(float64) float64
	lo, hi := 0.0, 0.0
	for _, v := range vals {
		hi = math.Max(hi, v)
	}
	ls, ok := newLogScale(vals)
	logC := ok && hi/(3*ls.floor) > 100
	if logC {
		toScale = ls.at
		lo, hi = ls.at(0), math.Log10(hi)
	} else {
		toScale = func(v float64) float64 { return v }
		if hi == 0 {
			hi = 1
		}
	}
	cm.SetMin(lo)
	cm.SetMax(hi)
	label := p.X.Tick.Label
	label.XAlign, label.YAlign = draw.XCenter, draw.YCenter
	p.Add(&heatCells{h: h, label: label, colour: func(v float64) color.Color {
		col, err := cm.At(math.Max(lo, math.Min(hi, toScale(v))))
		if err != nil {
			return gridGrey
		}
		return col
	}})

	bar := newPlot()
	bar.HideX()
	bar.Y.Label.Text = "mean Δ (loss units)"
	if logC {
		bar.Y.Label.Text = "mean Δ (log scale; floor = 0)"
		bar.Y.Tick.Marker = log10Ticks{}
	}
	bar.Add(&plotter.ColorBar{ColorMap: cm, Vertical: true, Colors: 128})
	bar.Y.Min, bar.Y.Max = lo, hi
	bar.Title.Text = " "

	w := c.Max.X - c.Min.X
	left := draw.Crop(c, vg.Points(2), -0.2*w, vg.Points(2), -vg.Points(4))
	right := draw.Crop(c, 0.83*w, -vg.Points(8), vg.Points(2)+1.25*p.X.Label.TextStyle.Font.Size*3, -vg.Points(4))
	fitTitle(p, left.Max.X-left.Min.X)
	p.Draw(left)
	bar.Draw(right)
}

// viridisStops are matplotlib's viridis at 0, 1/8, …, 1 (sRGB), a
// perceptually uniform sequential map readable under colour-vision
// deficiencies and in grey scale.
var viridisStops = [9][3]float64{
	{68, 1, 84}, {71, 44, 122}, {59, 81, 139}, {44, 113, 142}, {33, 145, 140},
	{40, 174, 128}, {94, 201, 98}, {173, 220, 48}, {253, 231, 37},
}

// viridis is a palette.ColorMap interpolating viridisStops linearly.
type viridis struct{ min, max, alpha float64 }

// At implements palette.ColorMap.
func (v *viridis) At(x float64) (color.Color, error) {
	if !(x >= v.min && x <= v.max) {
		return nil, fmt.Errorf("viridis: %v outside [%v, %v]", x, v.min, v.max)
	}
	t := 0.0
	if v.max > v.min {
		t = (x - v.min) / (v.max - v.min)
	}
	f := t * 8
	i := min(7, int(f))
	u := f - float64(i)
	var c [3]uint8
	for k := range c {
		c[k] = uint8(math.Round((1-u)*viridisStops[i][k] + u*viridisStops[i+1][k]))
	}
	a := uint8(math.Round(255 * v.alpha))
	return color.NRGBA{c[0], c[1], c[2], a}, nil
}

func (v *viridis) Max() float64       { return v.max }
func (v *viridis) SetMax(x float64)   { v.max = x }
func (v *viridis) Min() float64       { return v.min }
func (v *viridis) SetMin(x float64)   { v.min = x }
func (v *viridis) Alpha() float64     { return v.alpha }
func (v *viridis) SetAlpha(a float64) { v.alpha = a }

// Palette implements palette.ColorMap: n colours evenly spaced on the map.
func (v *viridis) Palette(n int) palette.Palette {
	cs := make([]color.Color, n)
	for i := range cs {
		x := v.min
		if n > 1 {
			x += float64(i) / float64(n-1) * (v.max - v.min)
		}
		cs[i], _ = v.At(x)
	}
	return plainPalette(cs)
}

type plainPalette []color.Color

func (p plainPalette) Colors() []color.Color { return p }
