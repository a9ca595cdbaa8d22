package presentation

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/certify"
	"github.com/certify-mli/certify/internal/atomicfile"
)

// The table across pairs of certify lmc results (certify lmc-table) and
// the instability plot (certify figures on lmc results): Frankle et al.
// (2020)'s barrier against the spawn step k.

// FigureInstability is the name, without extension, of the instability
// plot.
const FigureInstability = "lmc-instability"

func numText(v certify.Num) string {
	if f := float64(v); isFinite(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return ""
}

func stepText(p certify.LMCPair) string {
	if p.SpawnStep == nil {
		return ""
	}
	return strconv.Itoa(*p.SpawnStep)
}

func endsOf(r *certify.LMCReport) (certify.Num, certify.Num, certify.Num, certify.Num) {
	n := len(r.Loss)
	nan := certify.Num(math.NaN())
	eA, eB := nan, nan
	if len(r.Error) == n {
		eA, eB = r.Error[0], r.Error[n-1]
	}
	return r.Loss[0], r.Loss[n-1], eA, eB
}

// WriteLMCTableCSV writes one line per pair with a header: dir, a, b,
// spawn_from, spawn_step, split, examples, alphas, aligned, layers (the
// moved layers joined by ';', empty when all move), hold (lmc.json's hold
// of a layer-wise pair, "a" or "b", where the other tensors stay; empty
// when all move: the Markdown and LaTeX tables say it in the pair's name,
// "rest at a", and the ends cell), loss_a, loss_b,
// error_a, error_b (at α = 0 and α = 1; for a layer-wise pair, layers not
// empty, one end is a hybrid: α = 1 is A with the moved layers of B under
// hold a, α = 0 is B with the moved layers of A under hold b), barrier_loss, barrier_loss_alpha,
// barrier_loss_ainsworth, midpoint_gap, barrier_error,
// barrier_error_ainsworth, barrier_bounds_lo, barrier_bounds_hi,
// unaligned_barrier_loss; numbers in full precision, empty when null (not
// computed).
func WriteLMCTableCSV(w io.Writer, pairs []certify.LMCPair) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"dir", "a", "b", "spawn_from", "spawn_step", "split", "examples", "alphas", "aligned", "layers", "hold",
		"loss_a", "loss_b", "error_a", "error_b", "barrier_loss", "barrier_loss_alpha", "barrier_loss_ainsworth", "midpoint_gap",
		"barrier_error", "barrier_error_ainsworth", "barrier_bounds_lo", "barrier_bounds_hi", "unaligned_barrier_loss"}); err != nil {
		return err
	}
	for _, p := range pairs {
		r := &p.Report
		la, lb, ea, eb := endsOf(r)
		lo, hi, un := certify.Num(math.NaN()), certify.Num(math.NaN()), certify.Num(math.NaN())
		if r.BarrierBounds != nil {
			lo, hi = certify.Num(r.BarrierBounds[0]), certify.Num(r.BarrierBounds[1])
		}
		if r.Unaligned != nil {
			un = r.Unaligned.BarrierLoss
		}
		var layers, hold string
		if r.LMCLayers != nil {
			layers, hold = strings.Join(r.Layers, ";"), r.Hold
		}
		if err := cw.Write([]string{p.Dir, r.A.Path, r.B.Path, p.SpawnFrom, stepText(p), r.Split, strconv.Itoa(r.Examples),
			strconv.Itoa(len(r.Alphas)), strconv.FormatBool(r.Aligned), layers, hold,
			numText(la), numText(lb), numText(ea), numText(eb), numText(r.BarrierLoss), numText(r.BarrierLossAlpha),
			numText(r.BarrierLossAinsworth), numText(r.MidpointGap), numText(r.BarrierError), numText(r.BarrierErrorAinsworth),
			numText(lo), numText(hi), numText(un)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// short writes v with 4 significant digits, "—" when null.
func short(v certify.Num) string {
	if f := float64(v); isFinite(f) {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	return "—"
}

// Heads of the column of the losses at the line's two ends: lmcEndsHead
// when every pair's line runs from A to B, lmcEndsHeadLayers when some
// pair is layer-wise (certify.LMCLayers), whose line runs from A to a
// hybrid (hold a: A with the moved layers of B) or from a hybrid to B
// (hold b): its cell then names the hybrid end (lmcEnds).
const (
	lmcEndsHead       = "L(A) → L(B)"
	lmcEndsHeadLayers = "L(α = 0) → L(α = 1)"
)

// layerWise reports whether some pair is a layer-wise line.
func layerWise(pairs []certify.LMCPair) bool {
	for _, p := range pairs {
		if p.Report.LMCLayers != nil {
			return true
		}
	}
	return false
}

// lmcEnds is the ends cell of r: L(0) → L(1), followed for a layer-wise
// line by which end is the hybrid, "(A → hybrid)" or "(hybrid → B)", as
// certify lmc's summary labels them.
func lmcEnds(r *certify.LMCReport) string {
	la, lb, _, _ := endsOf(r)
	c := short(la) + " → " + short(lb)
	if l := r.LMCLayers; l != nil {
		if l.Hold == "b" {
			return c + " (hybrid → B)"
		}
		return c + " (A → hybrid)"
	}
	return c
}

// lmcHeadsFor returns lmcHeads with the ends column's head for pairs.
func lmcHeadsFor(pairs []certify.LMCPair) []string {
	h := slices.Clone(lmcHeads)
	if layerWise(pairs) {
		h[3] = lmcEndsHeadLayers
	}
	return h
}

// lmcRows returns the cells of the Markdown and LaTeX tables: pair, k,
// data, the losses at the two ends (lmcEnds), barrier, Ainsworth's barrier, midpoint gap, error
// barrier and Ainsworth's, certified bounds, barrier before alignment.
func lmcRows(pairs []certify.LMCPair) [][]string {
	var rows [][]string
	for _, p := range pairs {
		r := &p.Report
		k := stepText(p)
		if k == "" {
			k = "—"
		}
		bounds := "not computed"
		if r.BarrierBounds != nil {
			bounds = fmt.Sprintf("[%s, %s]", short(certify.Num(r.BarrierBounds[0])), short(certify.Num(r.BarrierBounds[1])))
		}
		un := "—"
		if r.Unaligned != nil {
			un = short(r.Unaligned.BarrierLoss)
		}
		name := filepath.Base(p.Dir)
		if r.LMCLayers != nil {
			name += " (layers " + strings.Join(r.Layers, ",") + ", rest at " + r.Hold + ")"
		}
		rows = append(rows, []string{name, k, fmt.Sprintf("%s (%d)", r.SplitLabel(), r.Examples), lmcEnds(r),
			short(r.BarrierLoss), short(r.BarrierLossAinsworth), short(r.MidpointGap), short(r.BarrierError), short(r.BarrierErrorAinsworth), bounds, un})
	}
	return rows
}

var lmcHeads = []string{"pair", "k", "data", lmcEndsHead, "barrier", "barrier (Ainsworth)", "midpoint gap", "error barrier", "error barrier (Ainsworth)", "certified barrier", "barrier before alignment"}

// WriteLMCTableMarkdown writes the pairs as a GitHub-flavoured Markdown
// table: one row per pair (its directory's name), the spawn step k, the
// data (split and examples), the losses at A and B, the grid barrier of
// the loss (Frankle et al. 2020 / Entezari et al. 2022) and Ainsworth et
// al.'s, the midpoint gap, the two grid barriers of the 0–1 error, the certified
// barrier bounds ("not computed" while null) and the barrier before
// alignment ("—" without --align).
func WriteLMCTableMarkdown(w io.Writer, pairs []certify.LMCPair) error {
	var b strings.Builder
	heads := lmcHeadsFor(pairs)
	b.WriteString("| " + strings.Join(heads, " | ") + " |\n|")
	for range heads {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range lmcRows(pairs) {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteLMCTableLaTeX writes the Markdown table's rows as a booktabs table
// environment (needs \usepackage{booktabs,graphicx}), label
// tab:certify-lmc-pairs.
func WriteLMCTableLaTeX(w io.Writer, pairs []certify.LMCPair) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%% certify lmc-table: %d pairs; needs \\usepackage{booktabs,graphicx}\n", len(pairs))
	b.WriteString("\\begin{table}[tbp]\n\\centering\n")
	fmt.Fprintf(&b, "\\caption{Linear mode connectivity of %d pairs: loss barriers on the grid (max of the convexity gap $g$; Ainsworth et al.: $\\max L - \\frac12(L_A + L_B)$), midpoint gap $g(\\frac12)$, 0--1 error barrier, certified barrier bounds; $k$ is the spawn step.}\n", len(pairs))
	b.WriteString("\\label{tab:certify-lmc-pairs}\n\\small\n\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n")
	b.WriteString("\\begin{tabular}{l" + strings.Repeat("r", len(lmcHeads)-1) + "}\n\\toprule\n")
	heads := lmcHeadsFor(pairs)
	for i, h := range heads {
		heads[i] = latexEscape(h)
	}
	heads[1] = "$k$"
	heads[3] = "$L_A \\to L_B$"
	if layerWise(pairs) {
		heads[3] = "$L(0) \\to L(1)$"
	}
	b.WriteString(strings.Join(heads, " & ") + " \\\\\n\\midrule\n")
	for _, row := range lmcRows(pairs) {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = strings.ReplaceAll(latexEscape(c), "→", "$\\to$")
		}
		b.WriteString(strings.Join(cells, " & ") + " \\\\\n")
	}
	b.WriteString("\\bottomrule\n\\end{tabular}}\n\\end{table}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteLMCTable writes the table across pairs in format FormatLaTeX,
// FormatMarkdown or FormatCSV.
func WriteLMCTable(w io.Writer, pairs []certify.LMCPair, format string) error {
	switch format {
	case FormatLaTeX:
		return WriteLMCTableLaTeX(w, pairs)
	case FormatMarkdown:
		return WriteLMCTableMarkdown(w, pairs)
	case FormatCSV:
		return WriteLMCTableCSV(w, pairs)
	}
	return fmt.Errorf("unknown table format %q (want latex, markdown or csv)", format)
}

// stepX places spawn step k on the instability plot's x axis: log10(1 + k),
// so that k = 0 and the early steps Frankle et al. look at are apart.
func stepX(k int) float64 { return math.Log10(1 + float64(k)) }

// instabilityPlots builds the loss-barrier panel (top) and the 0–1 error
// barrier panel (bottom) against the spawn step k: one point per pair, the
// mean over the pairs at each k joined by a line, and the certified barrier
// bounds as error bars on the loss panel when a pair has them.
func instabilityPlots(pairs []certify.LMCPair, source string) []*plot.Plot {
	top, bot := newPlot(), newPlot()
	top.Title.Text = "instability: two spawns' barrier against the spawn step k"
	if source != "" && source != "." {
		top.Title.Text += " (" + source + ")"
	}
	var ticks []plot.Tick
	seen := map[int]bool{}
	for _, p := range pairs {
		if k := *p.SpawnStep; !seen[k] {
			seen[k] = true
			ticks = append(ticks, plot.Tick{Value: stepX(k), Label: strconv.Itoa(k)})
		}
	}
	var lows, highs plotter.XYs // the certified barrier bounds of the pairs that have them
	for _, pan := range []struct {
		p     *plot.Plot
		label string
		get   func(*certify.LMCReport) certify.Num
		x     string
	}{
		{top, "loss: barrier max g (grid)", func(r *certify.LMCReport) certify.Num { return r.BarrierLoss }, ""},
		{bot, "0–1 error barrier (grid)", func(r *certify.LMCReport) certify.Num { return r.BarrierError }, "spawn step k (log scale of 1 + k)"},
	} {
		pan.p.Y.Label.Text = pan.label
		pan.p.X.Label.Text = pan.x
		pan.p.X.Tick.Marker = plot.ConstantTicks(ticks)
		var pts plotter.XYs
		sum, cnt := map[int]float64{}, map[int]int{}
		var ks []int
		for _, p := range pairs {
			v := float64(pan.get(&p.Report))
			if !isFinite(v) {
				continue
			}
			k := *p.SpawnStep
			pts = append(pts, plotter.XY{X: stepX(k), Y: v})
			if cnt[k] == 0 {
				ks = append(ks, k)
			}
			sum[k] += v
			cnt[k]++
		}
		leg := newLegend()
		if len(pts) == 0 {
			pan.p.Add(note("not computed"))
			continue
		}
		var mean plotter.XYs
		for _, k := range ks {
			mean = append(mean, plotter.XY{X: stepX(k), Y: sum[k] / float64(cnt[k])})
		}
		if l := series(pan.p, mean, oiBlue, vg.Points(1.4), nil); l != nil {
			leg.Add("mean over pairs", l)
		}
		ring := draw.GlyphStyle{Color: oiVermillion, Radius: vg.Points(3), Shape: draw.RingGlyph{}}
		sc := &plotter.Scatter{XYs: pts, GlyphStyle: ring, GlyphStyleFunc: func(int) draw.GlyphStyle { return ring }}
		pan.p.Add(sc)
		leg.Add("one pair of spawns", sc)
		if pan.p == top {
			// The midpoint gap g(½) shows how far below its chord the
			// loss stays when the barrier is 0.
			var mid plotter.XYs
			msum, mcnt := map[int]float64{}, map[int]int{}
			for _, p := range pairs {
				if v := float64(p.Report.MidpointGap); isFinite(v) {
					msum[*p.SpawnStep] += v
					mcnt[*p.SpawnStep]++
				}
			}
			for _, k := range ks {
				if mcnt[k] > 0 {
					mid = append(mid, plotter.XY{X: stepX(k), Y: msum[k] / float64(mcnt[k])})
				}
			}
			if l := series(pan.p, mid, oiGreen, vg.Points(1.2), []vg.Length{vg.Points(4), vg.Points(3)}); l != nil {
				leg.Add("midpoint gap g(½), mean", l)
				mean = append(mean, mid...)
			}
			for _, p := range pairs {
				if b := p.Report.BarrierBounds; b != nil {
					lows = append(lows, plotter.XY{X: stepX(*p.SpawnStep), Y: b[0]})
					highs = append(highs, plotter.XY{X: stepX(*p.SpawnStep), Y: b[1]})
				}
			}
			if len(lows) == 0 {
				pan.p.Add(note("certified barrier bounds: not computed"))
			}
		}
		leg.avoid = append(append(plotter.XYs(nil), pts...), mean...)
		lo, hi := paddedRange(pointsY(pts), pointsY(mean))
		if pan.p == top && len(lows) > 0 {
			lo, hi = paddedRange(pointsY(pts), pointsY(mean), pointsY(lows))
			var off []bool
			hi, off = boundsAxis(math.Min(lo, 0), hi, pointsY(highs))
			// Each bar spans [lower, upper]; one whose upper bound is off
			// the axis ends at its top, with the bound printed beside it,
			// half-way up the axis. The bars are drawn beside their k
			// (certBars), not under the pair's ring and the mean line,
			// and one narrower than a few points gets a square mark.
			bars := &certBars{style: draw.LineStyle{Color: oiBlack, Width: vg.Points(1.2)}, dx: certBarDodge, capW: vg.Points(6), minSpan: certBarMinFrac * (hi - math.Min(lo, 0))}
			var offXY plotter.XYs
			var offText []string
			for i := range lows {
				u := highs[i].Y
				if off[i] { // the value beside the bar, half-way up (the legend takes a top corner)
					offXY = append(offXY, plotter.XY{X: highs[i].X, Y: 0.5 * (math.Min(lo, 0) + hi)})
					offText = append(offText, fmt.Sprintf(" ↑ upper %.4g", u))
					u = hi
				}
				bars.lows = append(bars.lows, lows[i])
				bars.highs = append(bars.highs, plotter.XY{X: lows[i].X, Y: u})
				leg.Avoid(plotter.XYs{lows[i], {X: lows[i].X, Y: u}}) // the whole bar, not only its foot
			}
			pan.p.Add(bars)
			leg.Add("certified barrier bounds", bars)
			if bars.anyNarrow() {
				leg.Add("certified bounds narrower than the square", certSquare{})
			}
			if len(offXY) > 0 {
				if lb, err := plotter.NewLabels(plotter.XYLabels{XYs: offXY, Labels: offText}); err == nil {
					pan.p.Add(lb)
				}
			}
			leg.avoid = append(append(leg.avoid, lows...), offXY...)
		}
		pan.p.Y.Min, pan.p.Y.Max = math.Min(lo, 0), hi
		pan.p.Add(leg)
	}
	return []*plot.Plot{top, bot}
}

// The certified bars of the instability plot: drawn certBarDodge to the
// right of their k, so that the pair's ring and the mean line at the same
// k do not hide them, and a bar spanning less than certBarMinFrac of the
// axis (bounds of a barrier certified 0 to rounding are a few 1e-9 wide:
// less than a pixel) is marked with a filled square at its middle.
const (
	certBarDodge   = vg.Length(7) // points
	certBarMinFrac = 0.02
)

// certBars draws certified bounds [lows[i].Y, highs[i].Y] at lows[i].X as
// vertical bars with caps, dodged dx to the right (in points; to the left
// where that would leave the data area), with a
// filled square on every bar shorter than minSpan (data units).
type certBars struct {
	lows, highs plotter.XYs
	style       draw.LineStyle
	dx, capW    vg.Length
	minSpan     float64
}

// anyNarrow reports whether some bar gets the square.
func (b *certBars) anyNarrow() bool {
	for i := range b.lows {
		if b.highs[i].Y-b.lows[i].Y < b.minSpan {
			return true
		}
	}
	return false
}

// Plot implements plot.Plotter.
func (b *certBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i := range b.lows {
		x := trX(b.lows[i].X) + b.dx
		if x+b.capW/2 > c.Max.X { // the last k sits at the data area's right edge: dodge left
			x = trX(b.lows[i].X) - b.dx
		}
		y0, y1 := trY(b.lows[i].Y), trY(b.highs[i].Y)
		c.StrokeLine2(b.style, x, y0, x, y1)
		c.StrokeLine2(b.style, x-b.capW/2, y0, x+b.capW/2, y0)
		c.StrokeLine2(b.style, x-b.capW/2, y1, x+b.capW/2, y1)
		if b.highs[i].Y-b.lows[i].Y < b.minSpan {
			c.DrawGlyph(certSquareStyle, vg.Point{X: x, Y: (y0 + y1) / 2})
		}
	}
}

// Thumbnail implements plot.Thumbnailer: a capped vertical bar.
func (b *certBars) Thumbnail(c *draw.Canvas) {
	x := (c.Min.X + c.Max.X) / 2
	c.StrokeLine2(b.style, x, c.Min.Y, x, c.Max.Y)
	c.StrokeLine2(b.style, x-b.capW/2, c.Min.Y, x+b.capW/2, c.Min.Y)
	c.StrokeLine2(b.style, x-b.capW/2, c.Max.Y, x+b.capW/2, c.Max.Y)
}

// certSquareStyle is the mark of a certified bar too short to see.
var certSquareStyle = draw.GlyphStyle{Color: oiBlack, Radius: vg.Points(2.5), Shape: draw.BoxGlyph{}}

// certSquare is the legend thumbnail of certSquareStyle.
type certSquare struct{}

// Thumbnail implements plot.Thumbnailer.
func (certSquare) Thumbnail(c *draw.Canvas) {
	c.DrawGlyph(certSquareStyle, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: (c.Min.Y + c.Max.Y) / 2})
}

// boundsAxis returns the top of the loss axis that spans [lo, hi] (the
// grid values and certified lower bounds, padded) and the certified upper
// bounds uppers, and which uppers lie off it. An upper bound up to 1.5
// spans of [lo, hi] above hi widens the axis to hold it (padded by 6 % of
// the new span); a larger one, which would squash every grid value into a
// sliver, is off the axis: its bar ends at the top, with its value printed.
func boundsAxis(lo, hi float64, uppers []float64) (top float64, off []bool) {
	limit := hi + 1.5*(hi-lo)
	top = hi
	for _, u := range uppers {
		if u <= limit && u > top {
			top = u
		}
	}
	if top > hi {
		top += 0.06 * (top - lo)
	}
	off = make([]bool, len(uppers))
	for i, u := range uppers {
		off[i] = u > top
	}
	return top, off
}

func pointsY(xy plotter.XYs) []float64 {
	out := make([]float64, len(xy))
	for i, p := range xy {
		out[i] = p.Y
	}
	return out
}

// WriteInstabilityFigure draws the instability plot (FigureInstability:
// barrier against spawn step k, Frankle et al. 2020) of the pairs that have
// a spawn step into dir, in each format ("png", "svg", "pdf"; none: png and
// pdf); source names the data in the title. It returns the number of
// pairs drawn, and an error before writing anything when no pair has a
// spawn step or a format is unknown.
func WriteInstabilityFigure(dir string, pairs []certify.LMCPair, source string, formats []string) (int, error) {
	var kept []certify.LMCPair
	for _, p := range pairs {
		if p.SpawnStep != nil {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		return 0, fmt.Errorf("no lmc.json joins two spawns of one parent at one step (config.json spawn_from and spawn_step of both ends)")
	}
	if len(formats) == 0 {
		formats = []string{"png", "pdf"}
	}
	for _, f := range formats {
		if f != "png" && f != "svg" && f != "pdf" {
			return 0, fmt.Errorf("unknown figure format %q (want png, svg or pdf)", f)
		}
	}
	for _, f := range formats {
		b, err := render(f, func(c draw.Canvas) { drawPanels(c, instabilityPlots(kept, source)) })
		if err != nil {
			return 0, fmt.Errorf("%s.%s: %w", FigureInstability, f, err)
		}
		if err := atomicfile.Write(filepath.Join(dir, FigureInstability+"."+f), b); err != nil {
			return 0, err
		}
	}
	return len(kept), nil
}
