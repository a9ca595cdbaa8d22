package certify

import (
	"math"
	"testing"

	"github.com/certify-mli/certify/interval"
	"pgregory.net/rapid"
)

// leafcostFloat draws a float64 over many binades, with exact zeros,
// subnormals, infinities and NaN among them.
func leafcostFloat(t *rapid.T, label string) float64 {
	switch rapid.IntRange(0, 9).Draw(t, label+"-kind") {
	case 0:
		return 0
	case 1:
		return rapid.SampledFrom([]float64{math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, -5e-324, math.MaxFloat64}).Draw(t, label+"-edge")
	default:
		m := rapid.Float64Range(-1, 1).Draw(t, label+"-m")
		return math.Ldexp(m, rapid.IntRange(-1080, 1020).Draw(t, label+"-e"))
	}
}

// TestMulStraddleIsMul checks centredForm's fast product against
// interval.Mul bit for bit (NaN for NaN) on intervals t straddling 0 and
// any d (empty, NaN, infinite, subnormal, zero bounds included).
func TestMulStraddleIsMul(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a, b := leafcostFloat(rt, "a"), leafcostFloat(rt, "b")
		if rapid.Bool().Draw(rt, "ordered") && a > b {
			a, b = b, a
		}
		tl := -math.Abs(leafcostFloat(rt, "tl"))
		th := math.Abs(leafcostFloat(rt, "th"))
		if !(tl < 0 && th > 0) {
			tl, th = -0x1p-9, 0x1p-9
		}
		d, tt := interval.I{Lo: a, Hi: b}, interval.I{Lo: tl, Hi: th}
		got, want := mulStraddle(d, tt), interval.Mul(d, tt)
		same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) || (x != x && y != y) }
		if !same(got.Lo, want.Lo) || !same(got.Hi, want.Hi) {
			rt.Fatalf("mulStraddle(%v, %v) = %v, Mul gives %v", d, tt, got, want)
		}
	})
}
