package presentation

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/certify-mli/certify/certify"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"pgregory.net/rapid"
)

// figureReport is a synthetic report on Grid(50): a decreasing loss with a
// Gaussian bump at α = 0.5 when bump is set (its bumps, Δ and witness
// computed by Bumps and deltaIndex), a rising accuracy, turning rates
// spanning three decades and 500 per-example Gauss lengths.
func figureReport(bump bool) *certify.Report {
	a := certify.Grid(50)
	r := &certify.Report{Verdict: certify.MonotoneOnGrid, LossKind: "cross_entropy", Alphas: a}
	for _, x := range a {
		l, dl := 2.3*(1-x)*(1-x)+0.05, -4.6*(1-x)
		if bump {
			u := (x - 0.5) / 0.07
			g := math.Exp(-u * u)
			l += 0.3 * g
			dl += 0.3 * g * (-2 * u / 0.07)
		}
		r.Loss = append(r.Loss, l)
		r.DLoss = append(r.DLoss, dl)
		r.Accuracy = append(r.Accuracy, 0.1+0.85*(1-math.Exp(-5*x)))
		u := (x - 0.45) / 0.05
		r.TurningRateMean = append(r.TurningRateMean, 0.002+3*math.Exp(-u*u))
		r.TurningRateStacked = append(r.TurningRateStacked, 0.001+math.Exp(-u*u/4))
	}
	if bump {
		r.Verdict = certify.NonMonotone
		r.Bumps = certify.Bumps(a, r.Loss)
		d, i, j := deltaIndex(r.Loss)
		r.Delta, r.DeltaContinuous = d, d
		r.Witness = &certify.Witness{Alpha: a[i], Beta: a[j], Rise: d}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		r.GaussLengthPerExample = append(r.GaussLengthPerExample, 0.3+0.8*rng.ExpFloat64())
	}
	r.GaussLengthMean, r.GaussLengthStacked = 1.1, 0.7
	return r
}

// readPNG decodes dir/name.png and checks its size.
func readPNG(t *testing.T, dir, name string) image.Image {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name+".png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s.png: %v", name, err)
	}
	wantW := int(math.Round(float64(FigureWidth/vg.Inch) * FigureDPI))
	wantH := int(math.Round(float64(FigureHeight/vg.Inch) * FigureDPI))
	if s := img.Bounds().Size(); s.X != wantW || s.Y != wantH {
		t.Errorf("%s.png is %d×%d pixels, want %d×%d", name, s.X, s.Y, wantW, wantH)
	}
	return img
}

// near reports whether c is within tol of want in every channel.
func near(c color.Color, want color.RGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, y uint8) bool { return math.Abs(float64(int(x>>8)-int(y))) <= float64(tol) }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

// count returns the number of pixels of img within tol of want.
func count(img image.Image, want color.RGBA, tol int) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			if near(img.At(x, y), want, tol) {
				n++
			}
		}
	}
	return n
}

// distinct returns the number of distinct colours in img.
func distinct(img image.Image) int {
	seen := map[color.RGBA]bool{}
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			seen[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)] = true
		}
	}
	return len(seen)
}

func TestWriteFiguresWritesThreePNGs(t *testing.T) {
	dir := t.TempDir()
	// An old figure is replaced.
	if err := os.WriteFile(filepath.Join(dir, "turning.png"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := figureReport(true)
	if err := WriteFigures(dir, r); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"gauss_hist.png", "interpolation.png", "turning.png"}; !slices.Equal(names, want) {
		t.Fatalf("directory holds %q, want %q (and no temporaries)", names, want)
	}
	for _, name := range []string{FigureInterpolation, FigureTurning, FigureGaussHist} {
		img := readPNG(t, dir, name)
		// Anti-aliased lines and text give many colours; a blank or
		// single-colour image does not.
		if n := distinct(img); n < 20 {
			t.Errorf("%s.png has %d distinct colours: nothing drawn?", name, n)
		}
		if n := count(img, color.RGBA{255, 255, 255, 255}, 0); n < 1050*750/3 {
			t.Errorf("%s.png has only %d white pixels: the background is not white", name, n)
		}
	}
	// The bump is shaded in both line figures, the histogram has no band.
	for name, want := range map[string]bool{FigureInterpolation: true, FigureTurning: true, FigureGaussHist: false} {
		n := count(readPNG(t, dir, name), bumpShade, 0)
		if got := n > 1000; got != want {
			t.Errorf("%s.png: %d pixels of the bump shade, want shading %v", name, n, want)
		}
	}
	// The witness is drawn in vermillion, used by nothing else in the figure.
	if n := count(readPNG(t, dir, FigureInterpolation), oiVermillion, 12); n < 20 {
		t.Errorf("interpolation.png: %d vermillion pixels, want the witness marked", n)
	}
	r.Witness = nil
	if err := WriteFigures(dir, r); err != nil {
		t.Fatal(err)
	}
	if n := count(readPNG(t, dir, FigureInterpolation), oiVermillion, 12); n != 0 {
		t.Errorf("interpolation.png without witness: %d vermillion pixels, want 0", n)
	}
	// The histogram's two vertical lines: π/2 in vermillion (Theorem A's
	// threshold: mse runs only), the mean in black.
	for _, loss := range []string{"mse", "cross_entropy"} {
		r.LossKind = loss
		if err := WriteFigures(dir, r); err != nil {
			t.Fatal(err)
		}
		n := count(readPNG(t, dir, FigureGaussHist), oiVermillion, 12)
		if loss == "mse" && n < 200 {
			t.Errorf("gauss_hist.png (mse): %d vermillion pixels, want the π/2 line", n)
		}
		if loss == "cross_entropy" && n != 0 {
			t.Errorf("gauss_hist.png (cross_entropy): %d vermillion pixels, want no π/2 line", n)
		}
	}
}

// runs returns the maximal runs [start, end] of true in v.
func runs(v []bool) [][2]int {
	var rs [][2]int
	for i := 0; i < len(v); i++ {
		if !v[i] {
			continue
		}
		j := i
		for j+1 < len(v) && v[j+1] {
			j++
		}
		rs = append(rs, [2]int{i, j})
		i = j
	}
	return rs
}

// TestBumpBandsPlacement renders interpolation.png with and without two bumps
// at α ∈ [0.2, 0.3] and [0.6, 0.8] and checks, in the accuracy panel (the
// lower half of the figure, which has no legend), that the renders differ in
// exactly two column ranges placed as an affine image of the bumps: widths in
// ratio 1:2 and the second starting 4 widths of the first after it. Both
// bands hold the shade and the column of α = 0.1 none.
func TestBumpBandsPlacement(t *testing.T) {
	render := func(bs []certify.Bump) image.Image {
		dir := t.TempDir()
		r := figureReport(false)
		r.Bumps = bs
		if err := WriteFigures(dir, r); err != nil {
			t.Fatal(err)
		}
		return readPNG(t, dir, FigureInterpolation)
	}
	plain := render(nil)
	shaded := render([]certify.Bump{
		{Start: 0.2, End: 0.3, StartIndex: 10, EndIndex: 15, Height: 0.01},
		{Start: 0.6, End: 0.8, StartIndex: 29, EndIndex: 39, Height: 0.02},
	})
	bd := plain.Bounds()
	differs := make([]bool, bd.Dx())
	for y := bd.Min.Y + bd.Dy()/2; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			if plain.At(x, y) != shaded.At(x, y) {
				differs[x-bd.Min.X] = true
			}
		}
	}
	rs := runs(differs)
	if len(rs) != 2 {
		t.Fatalf("lower panel differs in column runs %v, want 2 runs (one per bump)", rs)
	}
	w1 := float64(rs[0][1] - rs[0][0] + 1)
	w2 := float64(rs[1][1] - rs[1][0] + 1)
	if math.Abs(w2-2*w1) > 3 {
		t.Errorf("band widths %v and %v pixels, want ratio 2 (0.2 vs 0.1 in α)", w1, w2)
	}
	// Pixels per 0.1 of α, free of the anti-aliased edges' widening.
	unit := w2 - w1
	if unit < 40 {
		t.Errorf("0.1 in α is %v pixels wide, want a plot area wider than 400 pixels", unit)
	}
	c1 := float64(rs[0][0]+rs[0][1]) / 2 // α = 0.25
	c2 := float64(rs[1][0]+rs[1][1]) / 2 // α = 0.7
	if math.Abs((c2-c1)-4.5*unit) > 5 {
		t.Errorf("band centres %v pixels apart, want 4.5 × %v (0.45 in α)", c2-c1, unit)
	}
	// Pixel column of α: x(α) = x(0.25) + (α − 0.25)·unit/0.1.
	col := func(alpha float64) int { return int(math.Round(c1 + (alpha-0.25)*unit/0.1)) }
	hasShade := func(img image.Image, x int) bool {
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			if near(img.At(x, y), bumpShade, 0) {
				return true
			}
		}
		return false
	}
	for _, a := range []float64{0.25, 0.7} {
		if !hasShade(shaded, col(a)) {
			t.Errorf("column of α = %v (x = %d) has no shade", a, col(a))
		}
		if hasShade(plain, col(a)) {
			t.Errorf("column of α = %v (x = %d) is shaded without bumps", a, col(a))
		}
	}
	for _, a := range []float64{0.1, 0.5, 0.9} {
		if hasShade(shaded, col(a)) {
			t.Errorf("column of α = %v (x = %d), outside every bump, is shaded", a, col(a))
		}
	}
}

func TestWriteFiguresEdgeCases(t *testing.T) {
	mod := func(f func(r *certify.Report)) *certify.Report {
		r := figureReport(false)
		f(r)
		return r
	}
	cases := map[string]*certify.Report{
		"no bumps": figureReport(false),
		"linear model: zero turning rate": mod(func(r *certify.Report) {
			for i := range r.Alphas {
				r.TurningRateMean[i], r.TurningRateStacked[i] = 0, 0
			}
			r.GaussLengthPerExample = make([]float64, 7)
		}),
		"zeros among a wide turning range": mod(func(r *certify.Report) {
			r.TurningRateMean[3], r.TurningRateStacked[40] = 0, 0
		}),
		"mse with constant accuracy": mod(func(r *certify.Report) {
			r.LossKind = "mse"
			for i := range r.Accuracy {
				r.Accuracy[i] = 1
			}
		}),
		"constant loss and zero L′": mod(func(r *certify.Report) {
			for i := range r.Loss {
				r.Loss[i], r.DLoss[i] = 0.5, 0
			}
		}),
		"single example":               mod(func(r *certify.Report) { r.GaussLengthPerExample = []float64{0.9}; r.Examples = 1 }),
		"no per-example Gauss lengths": mod(func(r *certify.Report) { r.GaussLengthPerExample = nil }),
		"series not recorded": mod(func(r *certify.Report) {
			r.DLoss, r.Accuracy, r.TurningRateMean, r.TurningRateStacked = nil, nil, nil, nil
		}),
		"single α":     {Alphas: []float64{0}, Loss: []float64{1}, Accuracy: []float64{0.5}},
		"empty report": {},
		"bump over the last step, witness at the end": mod(func(r *certify.Report) {
			m := len(r.Loss)
			r.Loss[m-1] = r.Loss[m-2] + 0.01
			r.Bumps = certify.Bumps(r.Alphas, r.Loss)
			r.Witness = &certify.Witness{Alpha: r.Alphas[m-2], Beta: 1, Rise: 0.01}
			r.Verdict = certify.NonMonotone
		}),
		"non-finite values are left out": mod(func(r *certify.Report) {
			r.Loss[5], r.TurningRateMean[7] = math.NaN(), math.Inf(1)
			r.GaussLengthPerExample[0] = math.Inf(1)
		}),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := WriteFigures(dir, r); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{FigureInterpolation, FigureTurning, FigureGaussHist} {
				readPNG(t, dir, f)
			}
			if os.Getenv("CERTIFY_FIGURES") != "" { // for looking at them
				out := filepath.Join(os.Getenv("CERTIFY_FIGURES"), strings.ReplaceAll(name, " ", "_"))
				os.MkdirAll(out, 0o755)
				WriteFigures(out, r)
			}
		})
	}
}

func TestWriteFigureFormats(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFigureFormats(dir, figureReport(true), "svg", "pdf", "png"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FigureInterpolation, FigureTurning, FigureGaussHist} {
		readPNG(t, dir, f)
		svg, err := os.ReadFile(filepath.Join(dir, f+".svg"))
		if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(svg), []byte("</svg>")) {
			t.Errorf("%s.svg is not an SVG document (err %v)", f, err)
		}
		pdf, err := os.ReadFile(filepath.Join(dir, f+".pdf"))
		if err != nil || !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf[max(0, len(pdf)-64):], []byte("%%EOF")) {
			t.Errorf("%s.pdf is not a PDF document (err %v)", f, err)
		}
	}
}

func TestWriteFiguresErrors(t *testing.T) {
	good := figureReport(false)
	short := figureReport(false)
	short.Accuracy = short.Accuracy[1:]
	cases := []struct {
		name    string
		r       *certify.Report
		formats []string
		want    string
	}{
		{"nil report", nil, nil, "nil report"},
		{"unknown format", good, []string{"png", "gif"}, `"gif"`},
		{"series length", short, nil, "accuracy has 49 values but alphas has 50"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		err := WriteFigureFormats(dir, c.r, c.formats...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: %d files written, want none", c.name, len(ents))
		}
	}
	if err := WriteFigures(filepath.Join(t.TempDir(), "missing"), good); err == nil {
		t.Error("WriteFigures into a missing directory: no error")
	}
}

func TestTurningAxisScale(t *testing.T) {
	cases := []struct {
		name    string
		mean    float64 // scale of the mean rate; the stacked rate is 1
		zero    bool
		wantLog bool
	}{
		{"three decades", 1e-3, false, true},
		{"two decades exactly is linear", 1e-2, false, false},
		{"one decade", 0.1, false, false},
		{"all zero (linear model)", 0, true, false},
	}
	for _, c := range cases {
		r := figureReport(false)
		for i := range r.Alphas {
			r.TurningRateMean[i], r.TurningRateStacked[i] = c.mean, 1
			if c.zero {
				r.TurningRateStacked[i] = 0
			}
		}
		top := turningPlots(r)[0]
		_, isLog := top.Y.Tick.Marker.(log10Ticks)
		if isLog != c.wantLog {
			t.Errorf("%s: log axis %v, want %v", c.name, isLog, c.wantLog)
		}
		if !isLog && (top.Y.Min != 0 || !(top.Y.Max > 0)) {
			t.Errorf("%s: linear axis [%v, %v], want [0, positive]", c.name, top.Y.Min, top.Y.Max)
		}
		if isLog && (math.Abs(top.Y.Min-math.Log10(c.mean/2)) > 1e-12 || math.Abs(top.Y.Max-math.Log10(1.5)) > 1e-12) {
			t.Errorf("%s: log axis [%v, %v], want [log10(%v), log10(1.5)]", c.name, top.Y.Min, top.Y.Max, c.mean/2)
		}
	}
}

func TestLog10Ticks(t *testing.T) {
	ts := log10Ticks{}.Ticks(-3.3, 0.2)
	var labels []string
	var labelled []float64
	for _, tk := range ts {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
			labelled = append(labelled, tk.Value)
		}
		if tk.Value < -3.3 || tk.Value > 0.2 {
			t.Errorf("tick %v outside [-3.3, 0.2]", tk.Value)
		}
	}
	if want := []string{"0.001", "0.01", "0.1", "1"}; !slices.Equal(labels, want) {
		t.Errorf("labels %q, want %q", labels, want)
	}
	if want := []float64{-3, -2, -1, 0}; !slices.Equal(labelled, want) {
		t.Errorf("labelled ticks at %v, want %v", labelled, want)
	}
	// Unlabelled ticks at log10(j·10^k) in [−3.3, 0.2]: j = 6…9 for k = −4
	// (log10(5e-4) ≈ −3.301 is out), j = 2…9 for k = −3, −2, −1, and none
	// for k = 0 (log10 2 ≈ 0.301 is out).
	if got, want := len(ts)-len(labels), 4+3*8; got != want {
		t.Errorf("%d unlabelled ticks, want %d", got, want)
	}
	var _ plot.Ticker = log10Ticks{}
}

func TestHistogram(t *testing.T) {
	h := histogram([]float64{0, 1, 2, 3})
	// ⌈√4⌉ = 2 bins over [0, 3].
	if len(h.Bins) != 2 || h.Bins[0].Min != 0 || h.Bins[1].Max != 3 || h.Width != 1.5 {
		t.Fatalf("bins %+v width %v, want [0,1.5) and [1.5,3]", h.Bins, h.Width)
	}
	if h.Bins[0].Weight != 2 || h.Bins[1].Weight != 2 {
		t.Errorf("weights %v, %v, want 2, 2", h.Bins[0].Weight, h.Bins[1].Weight)
	}
	one := histogram([]float64{0.7})
	if len(one.Bins) != 1 || one.Bins[0].Weight != 1 || !(one.Bins[0].Min < 0.7 && 0.7 < one.Bins[0].Max) {
		t.Errorf("single value: bins %+v, want one bin of weight 1 around 0.7", one.Bins)
	}
	rapid.Check(t, func(t *rapid.T) {
		g := rapid.SliceOfN(rapid.Float64Range(0, 50), 1, 300).Draw(t, "g")
		h := histogram(g)
		var total float64
		for i, b := range h.Bins {
			total += b.Weight
			if i > 0 && b.Min != h.Bins[i-1].Max {
				t.Fatalf("bins %d and %d not contiguous", i-1, i)
			}
		}
		if total != float64(len(g)) {
			t.Fatalf("bins hold %v values, want %d", total, len(g))
		}
		lo, hi := slices.Min(g), slices.Max(g)
		if h.Bins[0].Min > lo || h.Bins[len(h.Bins)-1].Max < hi {
			t.Fatalf("bins cover [%v, %v], values span [%v, %v]", h.Bins[0].Min, h.Bins[len(h.Bins)-1].Max, lo, hi)
		}
	})
}

func TestInterpolate(t *testing.T) {
	xy := plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 2}, {X: 3, Y: -2}}
	for _, c := range []struct{ x, want float64 }{
		{-1, 0}, {0, 0}, {0.25, 0.5}, {1, 2}, {2, 0}, {2.5, -1}, {3, -2}, {4, -2},
	} {
		if got := interpolate(xy, c.x); got != c.want {
			t.Errorf("interpolate(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

func TestRenderPanicIsError(t *testing.T) {
	_, err := render("png", func(draw.Canvas) { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error %v, want one reporting the panic", err)
	}
}
