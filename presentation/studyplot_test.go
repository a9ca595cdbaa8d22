package presentation

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
	"pgregory.net/rapid"
)

// powerRuns makes runs with normalised distances d and Gauss lengths g (the
// trapezoid value twice the corner-aware one).
func powerRuns(d, g []float64) []certify.StudyRun {
	runs := make([]certify.StudyRun, len(d))
	for i := range d {
		runs[i] = certify.StudyRun{Report: &certify.Report{WeightDistanceNormalized: d[i], GaussLengthMean: g[i], GaussLengthMeanTrapezoid: 2 * g[i]}}
	}
	return runs
}

// olsOracle is the closed-form least-squares line and R² of y on x.
func olsOracle(x, y []float64) (a, b, r2 float64) {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i] / n
		my += y[i] / n
	}
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	b = sxy / sxx
	a = my - b*mx
	var res float64
	for i := range x {
		e := y[i] - a - b*x[i]
		res += e * e
	}
	return a, b, 1 - res/syy
}

func TestFitGaussDistanceKnownLine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		slope := rapid.Float64Range(-2, 2).Draw(t, "slope")
		c := rapid.Float64Range(0.01, 10).Draw(t, "c")
		n := rapid.IntRange(2, 30).Draw(t, "n")
		d := make([]float64, n)
		g := make([]float64, n)
		for i := range d {
			d[i] = math.Pow(10, -2+3*float64(i)/float64(n-1)) // distinct distances
			g[i] = c * math.Pow(d[i], slope)
		}
		fit, err := FitGaussDistance(powerRuns(d, g), false)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(fit.Slope-slope) > 1e-9 || math.Abs(fit.Intercept-math.Log10(c)) > 1e-9 || fit.N != n {
			t.Fatalf("fit %+v, want slope %v intercept %v N %d", fit, slope, math.Log10(c), n)
		}
		if n > 2 && math.Abs(slope) > 0.01 && math.Abs(fit.RSquared-1) > 1e-9 {
			t.Fatalf("R² = %v on an exact line", fit.RSquared)
		}
	})
}

func TestFitGaussDistanceNoisy(t *testing.T) {
	d := []float64{0.05, 0.1, 0.2, 0, 0.3, 0.8, 1.5, 2.5, 0.4}
	g := []float64{0.04, 0.09, 0.1, 0.5, 0.2, 0.25, 0.7, 0.6, 0}
	var x, y []float64
	for i := range d {
		if d[i] > 0 && g[i] > 0 {
			x, y = append(x, math.Log10(d[i])), append(y, math.Log10(g[i]))
		}
	}
	a, b, r2 := olsOracle(x, y)
	for _, paper := range []bool{false, true} {
		fit, err := FitGaussDistance(powerRuns(d, g), paper)
		if err != nil {
			t.Fatal(err)
		}
		wantA := a
		if paper {
			wantA += math.Log10(2) // the trapezoid values are 2·G
		}
		if math.Abs(fit.Slope-b) > 1e-12 || math.Abs(fit.Intercept-wantA) > 1e-12 || math.Abs(fit.RSquared-r2) > 1e-12 ||
			fit.N != len(x) || fit.Dropped != 2 {
			t.Errorf("paper=%v: fit %+v, want slope %v intercept %v R² %v N %d dropped 2", paper, fit, b, wantA, r2, len(x))
		}
	}
	if _, err := FitGaussDistance(powerRuns([]float64{1, 1}, []float64{1, 2}), false); err == nil {
		t.Error("equal distances accepted")
	}
	if _, err := FitGaussDistance(powerRuns([]float64{1}, []float64{1}), false); err == nil {
		t.Error("one point accepted")
	}
}

// TestHeatGrid recomputes the heatmap's means over lr × depth from the
// files of testdata/study.
func TestHeatGrid(t *testing.T) {
	runs, _, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	h := heatGrid(runs, "lr", "depth")
	sum, count := map[string]float64{}, map[string]int{}
	for _, r := range readOracleRuns(t, studyDir) {
		w, _ := archWidthsOracle(r.cfg["arch"].(string))
		key := fmt.Sprintf("%v,%d", r.cfg["lr"], w-2)
		sum[key] += r.rep["delta"].(float64)
		count[key]++
	}
	cells := 0
	for j, y := range h.ys {
		for i, x := range h.xs {
			key := fmt.Sprintf("%v,%v", x, y)
			if h.count[j][i] != count[key] {
				t.Errorf("cell %s: %d runs, want %d", key, h.count[j][i], count[key])
			}
			if count[key] > 0 {
				cells++
				if want := sum[key] / float64(count[key]); math.Abs(h.mean[j][i]-want) > 1e-15 {
					t.Errorf("cell %s: mean Δ %v, want %v", key, h.mean[j][i], want)
				}
			} else if !math.IsNaN(h.mean[j][i]) {
				t.Errorf("empty cell %s has mean %v", key, h.mean[j][i])
			}
		}
	}
	if cells != len(count) {
		t.Errorf("%d cells, want %d", cells, len(count))
	}
}

// archWidthsOracle counts the widths of "784-64-10".
func archWidthsOracle(s string) (int, error) {
	n := 1
	for _, c := range s {
		if c == '-' {
			n++
		}
	}
	return n, nil
}

func hasPixel(img image.Image, want color.Color) bool {
	wr, wg, wb, _ := want.RGBA()
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if r>>8 == wr>>8 && g>>8 == wg>>8 && bb>>8 == wb>>8 {
				return true
			}
		}
	}
	return false
}

func TestWriteStudyFigures(t *testing.T) {
	runs, _, err := certify.LoadStudy(studyDir, false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteStudyFigures(dir, runs, StudyFigureSpec{}); err != nil {
		t.Fatal(err)
	}
	wantW, wantH := int(float64(FigureWidth)/72*FigureDPI), int(float64(FigureHeight)/72*FigureDPI)
	for _, name := range []string{FigureDeltaDistance, FigureDeltaGauss, FigureGaussDistance, FigureDeltaHeatmap} {
		b, err := os.ReadFile(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s.png: %v", name, err)
		}
		if s := img.Bounds().Size(); s.X != wantW || s.Y != wantH {
			t.Errorf("%s.png is %v, want %dx%d", name, s, wantW, wantH)
		}
		if name == FigureDeltaHeatmap {
			// The largest mean Δ gets viridis's last colour.
			if !hasPixel(img, color.RGBA{253, 231, 37, 255}) {
				t.Errorf("%s.png: no cell in viridis yellow", name)
			}
		} else if !hasPixel(img, oiBlue) || !hasPixel(img, oiOrange) {
			// Points coloured by optimizer: adam (first) blue, sgd orange.
			t.Errorf("%s.png: lacks the optimizers' Okabe–Ito colours", name)
		}
		p, err := os.ReadFile(filepath.Join(dir, name+".pdf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("%PDF-")) || !bytes.Contains(p[max(0, len(p)-32):], []byte("%%EOF")) {
			t.Errorf("%s.pdf is not a complete PDF", name)
		}
	}
}

func TestWriteStudyFiguresEdgeCases(t *testing.T) {
	one := []certify.StudyRun{{Config: map[string]any{"lr": 0.1, "arch": "4-3"}, Report: &certify.Report{Verdict: certify.MonotoneOnGrid}}}
	var many []certify.StudyRun
	for i := range 5 {
		many = append(many, certify.StudyRun{
			Config: map[string]any{"lr": 0.1 * float64(i+1), "arch": "4-" + strconv.Itoa(i+1) + "-3", "optim": "sgd"},
			Report: &certify.Report{Verdict: certify.NonMonotone, Delta: math.Pow(10, -float64(i)), WeightDistanceNormalized: float64(i), GaussLengthMean: 0.1},
		})
	}
	for name, runs := range map[string][]certify.StudyRun{"one run, all zero": one, "zeros and decades": many} {
		dir := t.TempDir()
		if err := WriteStudyFigures(dir, runs, StudyFigureSpec{Formats: []string{"png"}}); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, f := range []string{FigureDeltaDistance, FigureDeltaGauss, FigureGaussDistance, FigureDeltaHeatmap} {
			if _, err := os.Stat(filepath.Join(dir, f+".png")); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	dir := t.TempDir()
	if err := WriteStudyFigures(dir, many, StudyFigureSpec{Formats: []string{"gif"}}); err == nil {
		t.Error("unknown format accepted")
	}
	if err := WriteStudyFigures(dir, many, StudyFigureSpec{HeatX: "colour"}); err == nil {
		t.Error("unknown heatmap key accepted")
	}
	if err := WriteStudyFigures(dir, one, StudyFigureSpec{HeatY: "width"}); err == nil {
		t.Error("width of a model without hidden layers accepted")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files written before an error: %v", ents)
	}
}

func TestViridis(t *testing.T) {
	v := &viridis{alpha: 1}
	v.SetMin(-1)
	v.SetMax(3)
	for _, c := range []struct {
		x    float64
		want color.NRGBA
	}{{-1, color.NRGBA{68, 1, 84, 255}}, {1, color.NRGBA{33, 145, 140, 255}}, {3, color.NRGBA{253, 231, 37, 255}},
		{1.25, color.NRGBA{37, 160, 134, 255}}} { // halfway between stops 4 and 5
		got, err := v.At(c.x)
		if err != nil || got != c.want {
			t.Errorf("At(%v) = %v, %v; want %v", c.x, got, err, c.want)
		}
	}
	if _, err := v.At(3.1); err == nil {
		t.Error("out of range accepted")
	}
	// Lightness rises along the map (sequential): luminance of the palette.
	cs := v.Palette(32).Colors()
	prev := -1.0
	for _, c := range cs {
		r, g, b, _ := c.RGBA()
		l := 0.2126*float64(r) + 0.7152*float64(g) + 0.0722*float64(b)
		if l <= prev {
			t.Fatalf("luminance not increasing: %v", cs)
		}
		prev = l
	}
}

// drawnGlyph is a point glyph read back from a recorded drawing: its shape
// ("circle", "triangle" or "square"), colour and centre.
type drawnGlyph struct {
	shape  string
	colour color.Color
	at     vg.Point
}

// glyphOf recognises the paths of draw.CircleGlyph (an arc), TriangleGlyph
// and SquareGlyph (closed polygons of 3 and 4 vertices); ok is false for
// other paths (axes, ticks, grid lines, boxes).
func glyphOf(p vg.Path) (shape string, at vg.Point, ok bool) {
	var pts []vg.Point
	for _, c := range p {
		switch c.Type {
		case vg.ArcComp:
			if len(p) == 3 {
				return "circle", c.Pos, true
			}
			return "", vg.Point{}, false
		case vg.MoveComp, vg.LineComp:
			pts = append(pts, c.Pos)
		}
	}
	if p[len(p)-1].Type != vg.CloseComp || len(pts) < 3 || len(pts) > 4 {
		return "", vg.Point{}, false
	}
	var sum vg.Point
	for _, q := range pts {
		sum = sum.Add(q)
	}
	at = vg.Point{X: sum.X / vg.Length(len(pts)), Y: sum.Y / vg.Length(len(pts))}
	if len(pts) == 3 {
		return "triangle", at, true
	}
	if w, h := pts[2].X-pts[0].X, pts[2].Y-pts[0].Y; w > 20 || h > 20 {
		return "", vg.Point{}, false // a rectangle, not a glyph
	}
	return "square", at, true
}

// legendEntry is an entry of a recorded legend: its text and its
// thumbnail glyph (shape "" for an entry without one).
type legendEntry struct {
	text string
	drawnGlyph
}

// recordedFigure is what a plot drew, read back from a vg/recorder canvas:
// the point glyphs of the data area in drawing order, the legend's box and
// its entries, and the data area.
type recordedFigure struct {
	points   []drawnGlyph
	box      vg.Rectangle
	legend   []legendEntry
	dataArea vg.Rectangle
}

// legendBoxColour is the translucent white of boxedLegend's box.
var legendBoxColour = color.NRGBA{0xff, 0xff, 0xff, 0xe0}

func recordFigure(t *testing.T, p *plot.Plot) recordedFigure {
	t.Helper()
	rec := &recorder.Canvas{}
	c := draw.NewCanvas(rec, FigureWidth, FigureHeight)
	p.Draw(c)
	var f recordedFigure
	f.dataArea = p.DataCanvas(c).Rectangle
	var col color.Color
	inLegend, boxNext := false, false
	var thumb drawnGlyph
	for _, a := range rec.Actions {
		switch a := a.(type) {
		case *recorder.SetColor:
			col = a.Color
			boxNext = a.Color == color.Color(legendBoxColour)
		case *recorder.Fill, *recorder.Stroke:
			var path vg.Path
			if fa, ok := a.(*recorder.Fill); ok {
				path = fa.Path
			} else {
				path = a.(*recorder.Stroke).Path
			}
			if boxNext && !inLegend {
				inLegend = true
				f.box = vg.Rectangle{Min: path[0].Pos, Max: path[0].Pos}
				for _, q := range path {
					if q.Type != vg.CloseComp {
						f.box.Min = vg.Point{X: min(f.box.Min.X, q.Pos.X), Y: min(f.box.Min.Y, q.Pos.Y)}
						f.box.Max = vg.Point{X: max(f.box.Max.X, q.Pos.X), Y: max(f.box.Max.Y, q.Pos.Y)}
					}
				}
				continue
			}
			shape, at, ok := glyphOf(path)
			if !ok {
				continue
			}
			g := drawnGlyph{shape: shape, colour: col, at: at}
			if inLegend {
				thumb = g
			} else {
				f.points = append(f.points, g)
			}
		case *recorder.FillString:
			if inLegend {
				f.legend = append(f.legend, legendEntry{text: a.String, drawnGlyph: thumb})
				thumb = drawnGlyph{}
			}
		}
	}
	if !inLegend {
		t.Fatal("no legend box drawn")
	}
	return f
}

func sameColour(a, b color.Color) bool {
	if a == nil || b == nil {
		return a == b
	}
	r1, g1, b1, a1 := a.RGBA()
	r2, g2, b2, a2 := b.RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}

// TestStudyFigureLegends renders the three scatter figures of small
// synthetic studies and reads back, from the recorded drawing, the legend's
// texts and thumbnails and the points' colours and shapes. The legend must
// name each encoded value as key=value (optim by colour, batchnorm by shape;
// a key no run has gets no entry), each point must look like the entries of
// its run's values, distinct values must look different, and the legend box
// must lie in the data area without covering a point.
func TestStudyFigureLegends(t *testing.T) {
	type cfg struct {
		optim any // nil: no "optim" in config.json
		bn    any // nil: no "batchnorm"
	}
	for _, tc := range []struct {
		name string
		cfgs []cfg
		want []string
	}{
		{"optim × batchnorm", []cfg{{"sgd", true}, {"adam", false}, {"sgd", false}, {"adam", true}},
			[]string{"optim=adam", "optim=sgd", "batchnorm=false", "batchnorm=true"}},
		{"batchnorm only", []cfg{{nil, true}, {nil, false}}, []string{"batchnorm=false", "batchnorm=true"}},
		{"one optimizer, one missing", []cfg{{"sgd", true}, {nil, true}}, []string{"optim=sgd", "optim=n/a"}}, // batchnorm=true for all: no entry
	} {
		// Two learning rates per configuration, lr not encoded.
		var runs []certify.StudyRun
		for i, c := range tc.cfgs {
			for j, lr := range []float64{0.01, 0.1} {
				conf := map[string]any{"lr": lr, "arch": "4-3-2"}
				if c.optim != nil {
					conf["optim"] = c.optim
				}
				if c.bn != nil {
					conf["batchnorm"] = c.bn
				}
				k := float64(2*i + j + 1)
				runs = append(runs, certify.StudyRun{Config: conf, Report: &certify.Report{Verdict: certify.NonMonotone,
					Delta: 0.01 * k, WeightDistanceNormalized: 0.1 * k, GaussLengthMean: 0.05 * k * k}})
			}
		}
		for _, fig := range []struct {
			name string
			p    func() *plot.Plot
			fit  bool // a least-squares entry first
		}{
			{FigureDeltaDistance, func() *plot.Plot { return deltaScatter(runs, false, false) }, false},
			{FigureDeltaGauss, func() *plot.Plot { return deltaScatter(runs, true, false) }, false},
			{FigureGaussDistance, func() *plot.Plot { return gaussDistancePlot(runs, false) }, true},
		} {
			t.Run(tc.name+"/"+fig.name, func(t *testing.T) {
				f := recordFigure(t, fig.p())
				leg := f.legend
				if fig.fit {
					if len(leg) == 0 || !strings.HasPrefix(leg[0].text, "least squares: slope ") {
						t.Fatalf("legend %v lacks the least-squares line first", leg)
					}
					leg = leg[1:]
				}
				var texts []string
				byText := map[string]drawnGlyph{}
				for _, e := range leg {
					texts = append(texts, e.text)
					byText[e.text] = e.drawnGlyph
				}
				if !slices.Equal(texts, tc.want) {
					t.Fatalf("legend %q, want %q", texts, tc.want)
				}
				// Each point looks like its values' entries.
				if len(f.points) != len(runs) {
					t.Fatalf("%d points drawn, want %d", len(f.points), len(runs))
				}
				for i, r := range runs {
					pt := f.points[i]
					if o, ok := byText["optim="+certify.FormatLevel(r.Config["optim"])]; ok && !sameColour(pt.colour, o.colour) {
						t.Errorf("run %d (%v): point colour %v, legend %v", i, r.Config, pt.colour, o.colour)
					}
					bn, ok := r.Config["batchnorm"]
					if !ok {
						bn = false // RunConfig's zero value
					}
					if b, ok := byText["batchnorm="+certify.FormatLevel(bn)]; ok && pt.shape != b.shape {
						t.Errorf("run %d (%v): point %s, legend %s", i, r.Config, pt.shape, b.shape)
					}
					if want := map[any]string{false: "circle", true: "triangle"}[bn]; pt.shape != want {
						t.Errorf("run %d (%v): point %s, want %s", i, r.Config, pt.shape, want)
					}
				}
				// Distinct values look different; every entry has a thumbnail.
				for i, a := range leg {
					if a.shape == "" {
						t.Errorf("entry %q has no thumbnail", a.text)
					}
					for _, b := range leg[:i] {
						key, _, _ := strings.Cut(a.text, "=")
						if k, _, _ := strings.Cut(b.text, "="); k != key {
							continue
						}
						if key == "optim" && sameColour(a.colour, b.colour) || key == "batchnorm" && a.shape == b.shape {
							t.Errorf("entries %q and %q look the same", a.text, b.text)
						}
					}
				}
				// The box lies in the data area and covers no point.
				if f.box.Min.X < f.dataArea.Min.X || f.box.Min.Y < f.dataArea.Min.Y || f.box.Max.X > f.dataArea.Max.X || f.box.Max.Y > f.dataArea.Max.Y {
					t.Errorf("legend box %v outside the data area %v", f.box, f.dataArea)
				}
				for i, pt := range f.points {
					if pt.at.X >= f.box.Min.X && pt.at.X <= f.box.Max.X && pt.at.Y >= f.box.Min.Y && pt.at.Y <= f.box.Max.Y {
						t.Errorf("point %d at %v under the legend box %v", i, pt.at, f.box)
					}
				}
			})
		}
	}
}
