package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// TestIntervalPathContains: on random small MLPs of every activation and
// both losses (randomCertPath), and a random α-interval, the interval
// path's enclosures contain functionspace's float64 values at random α
// inside: the outputs γ, γ′ (and γ″ on rows without a kink), the
// per-example ℓ_i and ℓ_i′, and L, L′ (and L″ when no example has a kink),
// up to 1e-10 relative (functionspace's own rounding). Away from a softplus
// threshold (no Jump); a possible jump skips the α.
func TestIntervalPathContains(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := randomCertPath(t)
		ip, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(-0.2, 1.2).Draw(t, "a")
		w := rapid.SampledFrom([]float64{0, 1e-6, 1e-3, 0.05, 0.4}).Draw(t, "width")
		ab := interval.I{Lo: a, Hi: a + w}
		enc := ip.Loss(ab, 2)
		outs := ip.Outputs(ab, 2)
		l, dl, _, kink, jump := ip.ExampleLosses(ab, 1)
		if enc.Jump {
			return
		}
		in := func(what string, v float64, x interval.I) {
			s := 1e-10 * (1 + math.Abs(v))
			if v < x.Lo-s || v > x.Hi+s {
				t.Fatalf("%s = %v outside [%v, %v] on [%v, %v]", what, v, x.Lo, x.Hi, ab.Lo, ab.Hi)
			}
		}
		for range 4 {
			al := a + w*rapid.Float64Range(0, 1).Draw(t, "u")
			s := p.At(al)
			in("L", s.Loss, enc.L)
			in("L′", s.DLoss, enc.DL)
			if !(math.IsInf(enc.D2L.Lo, -1) && math.IsInf(enc.D2L.Hi, 1)) {
				in("L″", s.D2Loss, enc.D2L)
			}
			for i := 0; i < p.N; i++ {
				if jump[i] {
					continue
				}
				in("ℓ_i", s.ExampleLoss[i], l[i])
				in("ℓ_i′", s.ExampleDLoss[i], dl[i])
			}
			row := 0
			for _, j := range outs {
				for r := 0; r < j.N; r++ {
					for k := 0; k < p.K; k++ {
						in("γ", s.Output.At(row, k), j.V.At(r, k))
						in("γ′", s.Velocity.At(row, k), j.D1.At(r, k))
						if !kink[row] {
							in("γ″", s.Acceleration.At(row, k), j.D2.At(r, k))
						}
					}
					row++
				}
			}
		}
	})
}
