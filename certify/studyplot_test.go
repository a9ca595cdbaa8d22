package certify

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"pgregory.net/rapid"
)

// powerRuns makes runs with normalised distances d and Gauss lengths g (the
// trapezoid value twice the corner-aware one).
func powerRuns(d, g []float64) []StudyRun {
	runs := make([]StudyRun, len(d))
	for i := range d {
		runs[i] = StudyRun{Report: &Report{WeightDistanceNormalized: d[i], GaussLengthMean: g[i], GaussLengthMeanTrapezoid: 2 * g[i]}}
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
	runs, _, err := LoadStudy(studyDir, false)
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
	runs, _, err := LoadStudy(studyDir, false)
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
	one := []StudyRun{{Config: map[string]any{"lr": 0.1, "arch": "4-3"}, Report: &Report{Verdict: MonotoneOnGrid}}}
	var many []StudyRun
	for i := range 5 {
		many = append(many, StudyRun{
			Config: map[string]any{"lr": 0.1 * float64(i+1), "arch": "4-" + strconv.Itoa(i+1) + "-3", "optim": "sgd"},
			Report: &Report{Verdict: NonMonotone, Delta: math.Pow(10, -float64(i)), WeightDistanceNormalized: float64(i), GaussLengthMean: 0.1},
		})
	}
	for name, runs := range map[string][]StudyRun{"one run, all zero": one, "zeros and decades": many} {
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
