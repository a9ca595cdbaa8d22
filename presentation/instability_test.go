package presentation

import (
	"math"
	"testing"

	"github.com/certify-mli/certify/certify"
)

// TestInstabilityFigureMarks renders the instability plot of pairs whose
// barrier is certified 0 to rounding (bounds [0, 1e-9], as the committed
// docs/lmc-instability figures have) and reads the drawing back: every
// certified pair must leave a visible black mark (a square on a bar less
// than a pixel tall), not hidden inside a pair's ring, and the legend box
// must keep clear of every ring, the k = 0 ring at the data area's corner
// included.
func TestInstabilityFigureMarks(t *testing.T) {
	var pairs []certify.LMCPair
	for _, k := range []int{0, 100, 500, 2000} {
		for s := range 2 {
			k := k
			r := certify.LMCReport{}
			r.BarrierLoss = 0
			r.MidpointGap = certify.Num(-0.005 - 0.001*float64(s) - 1e-6*float64(k))
			r.BarrierError = certify.Num(1e-4 * float64(s))
			r.BarrierBounds = &[2]float64{0, 1e-9}
			pairs = append(pairs, certify.LMCPair{Report: r, SpawnStep: &k})
		}
	}
	top := instabilityPlots(pairs, "")[0]
	f := recordFigure(t, top)
	const ring = 3.0 // the pairs' ring radius, points
	var rings, squares []drawnGlyph
	for _, g := range f.points {
		switch {
		case g.shape == "circle" && sameColour(g.colour, oiVermillion):
			rings = append(rings, g)
		case g.shape == "square" && sameColour(g.colour, oiBlack):
			squares = append(squares, g)
		}
	}
	if len(rings) != len(pairs) {
		t.Fatalf("%d rings drawn, want one per pair (%d)", len(rings), len(pairs))
	}
	if len(squares) != len(pairs) {
		t.Errorf("%d black squares drawn, want one per certified pair (%d): bounds 1e-9 wide are invisible", len(squares), len(pairs))
	}
	for _, sq := range squares {
		if sq.at.X < f.dataArea.Min.X || sq.at.X > f.dataArea.Max.X {
			t.Errorf("certified mark at %v outside the data area %v", sq.at, f.dataArea)
		}
		for _, r := range rings {
			if math.Hypot(float64(sq.at.X-r.at.X), float64(sq.at.Y-r.at.Y)) < 2*ring {
				t.Errorf("certified mark at %v hidden by the ring at %v", sq.at, r.at)
			}
		}
	}
	// The distance from a ring's centre to the box must exceed its radius.
	for _, r := range rings {
		dx := math.Max(0, math.Max(float64(f.box.Min.X-r.at.X), float64(r.at.X-f.box.Max.X)))
		dy := math.Max(0, math.Max(float64(f.box.Min.Y-r.at.Y), float64(r.at.Y-f.box.Max.Y)))
		if math.Hypot(dx, dy) <= ring {
			t.Errorf("legend box %v covers the ring at %v", f.box, r.at)
		}
	}
	var texts []string
	for _, e := range f.legend {
		texts = append(texts, e.text)
	}
	want := map[string]bool{"certified barrier bounds": false, "certified bounds narrower than the square": false}
	for _, s := range texts {
		if _, ok := want[s]; ok {
			want[s] = true
		}
	}
	for s, ok := range want {
		if !ok {
			t.Errorf("legend lacks %q: %q", s, texts)
		}
	}
}
