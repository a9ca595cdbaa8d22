package nn

import (
	"testing"

	"github.com/certify-mli/certify/interval"
	"pgregory.net/rapid"
)

// TestReLUIntervalJetExactSides: a ReLU unit whose input enclosure lies on
// one side of 0 (touching it included) passes its value, D1, D2 and DK on
// exactly (z ≥ 0) or gives exact zeros (z ≤ 0), and every unit's output
// contains σ(z), σ′·ż and σ′·z̈ (σ′ = 1 on an enclosure z ≥ 0, 0 on z ≤ 0,
// either one-sided derivative on one that straddles 0) for points z, ż, z̈ drawn in its input's enclosures, corners included.
func TestReLUIntervalJetExactSides(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := &Activation{Kind: ReLU}
		n, c := rapid.IntRange(1, 3).Draw(t, "n"), rapid.IntRange(1, 6).Draw(t, "c")
		in := &IJet{N: n, D: c, Order: 2, V: interval.NewMatrix(n, c), D1: interval.NewMatrix(n, c), D2: interval.NewMatrix(n, c), DK: interval.NewMatrix(n, c), Kink: make([]bool, n), Jump: make([]bool, n)}
		pick := func(x interval.I) float64 {
			return rapid.SampledFrom([]float64{x.Lo, x.Hi, x.Lo + (x.Hi-x.Lo)*0.37}).Draw(t, "p")
		}
		draw := func(m interval.Matrix, name string) {
			for q := range m.Lo {
				lo := rapid.SampledFrom([]float64{-2, -1e-300, 0, 1e-300, 0.5}).Draw(t, name)
				w := rapid.SampledFrom([]float64{0, 1e-300, 0.25, 3}).Draw(t, name+"w")
				m.Lo[q], m.Hi[q] = lo, lo+w
			}
		}
		draw(in.V, "v")
		draw(in.D1, "d1")
		draw(in.D2, "d2")
		draw(in.DK, "dk")
		out := a.IntervalJet(nil, in)
		for q := range in.V.Lo {
			z := interval.I{Lo: in.V.Lo[q], Hi: in.V.Hi[q]}
			for name, pair := range map[string][2]interval.Matrix{"V": {in.V, out.V}, "D1": {in.D1, out.D1}, "D2": {in.D2, out.D2}, "DK": {in.DK, out.DK}} {
				got := pair[1].At(q/c, q%c)
				switch {
				case z.Lo >= 0 && got != pair[0].At(q/c, q%c):
					t.Fatalf("%s[%d] with z = %v ≥ 0: %v, want the input's %v exactly", name, q, z, got, pair[0].At(q/c, q%c))
				case z.Lo < 0 && z.Hi <= 0 && (got.Lo != 0 || got.Hi != 0):
					t.Fatalf("%s[%d] with z = %v ≤ 0: %v, want exactly 0", name, q, z, got)
				}
			}
			zp, zd, zdd := pick(z), pick(in.D1.At(q/c, q%c)), pick(in.D2.At(q/c, q%c))
			var ds []float64 // σ′ on the interval: Enclose's convention σ′ = 1 on z ≥ 0 (z ≡ 0 has ż = 0)
			switch {
			case z.Lo >= 0:
				ds = []float64{1}
			case z.Hi <= 0:
				ds = []float64{0}
			default: // may cross: either one-sided derivative
				ds = []float64{0, 1}
			}
			if v := max(zp, 0); !out.V.At(q/c, q%c).Contains(v) {
				t.Fatalf("V[%d] = %v does not contain σ(%v) = %v", q, out.V.At(q/c, q%c), zp, v)
			}
			for _, d := range ds {
				if !out.D1.At(q/c, q%c).Contains(d * zd) {
					t.Fatalf("D1[%d] = %v does not contain σ′·ż = %v·%v", q, out.D1.At(q/c, q%c), d, zd)
				}
				if !z.StraddlesZero() && !out.D2.At(q/c, q%c).Contains(d*zdd) {
					t.Fatalf("D2[%d] = %v does not contain σ′·z̈ = %v·%v (z = %v)", q, out.D2.At(q/c, q%c), d, zdd, z)
				}
			}
		}
	})
}
