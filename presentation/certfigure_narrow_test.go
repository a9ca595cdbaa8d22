package presentation

import (
	"bytes"
	"image/png"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg/draw"

	"github.com/certify-mli/certify/certify"
)

// TestCertificateFigureNarrowRisingLeaf: a rising leaf 1e-6 wide between
// two settled leaves (as next to a witness) is still visible in
// certificate.png, in the not-settled shade over the settled band, and the
// legend names it.
func TestCertificateFigureNarrowRisingLeaf(t *testing.T) {
	r := figureReport(false)
	r.Certificate = &certify.Certificate{Verdict: certify.Inconclusive, DeltaUpper: 1, Leaves: 3, UnsettledCount: 1,
		Intervals: []certify.CertLeaf{{A: 0, B: 0.4, Inf: -3, Sup: -0.1}, {A: 0.4, B: 0.4 + 1e-6, Inf: -1, Sup: 2}, {A: 0.4 + 1e-6, B: 1, Inf: -3, Sup: -0.1}}}
	p := certificatePlot(r)
	b, err := render("png", func(cv draw.Canvas) { drawPanels(cv, []*plot.Plot{p}) })
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// the longest vertical run of the not-settled shade: the strip spans
	// the plot's height, the legend's swatch only a line of text
	want := unsettledFill
	longest := 0
	bd := img.Bounds()
	for x := bd.Min.X; x < bd.Max.X; x++ {
		run := 0
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if uint8(r>>8) == want.R && uint8(g>>8) == want.G && uint8(b>>8) == want.B {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
	}
	if longest < bd.Dy()/10 { // boxes, the zero line and L′ cross the strip
		t.Errorf("longest vertical run of the not-settled shade %d px of %d: the narrow rising leaf is not visible", longest, bd.Dy())
	}
	f := recordFigure(t, p)
	if !slicesHasPrefix(f.legend, "not settled: L′ > 0 possible") {
		t.Errorf("legend %v does not name the leaves not settled", f.legend)
	}
}
