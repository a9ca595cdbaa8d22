package nn

import (
	"math/big"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// TestDenseSplitValuesContainExact: the Split box's rule (Dense.IntervalJet
// with NewSplitBox, W(α)h = W0·h + α·(ΔW·h), issue 12 acc-share) encloses
// the exact value of (θ0 + αδ)·x + (b0 + αΔb), computed in rational
// arithmetic (math/big), at the ends, the middle and random α of the
// interval (points included) and at the corners and random points of the
// input's enclosure; the box rule (NewParamBox) encloses it too. On random
// small layers whose entries span 40 binades, with and without a bias. It
// fails when the rule takes α as the point Alpha.Lo.
func TestDenseSplitValuesContainExact(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in, out, n := rapid.IntRange(1, 6).Draw(t, "in"), rapid.IntRange(1, 5).Draw(t, "out"), rapid.IntRange(1, 4).Draw(t, "n")
		bias := rapid.Bool().Draw(t, "bias")
		val := func(name string) float64 {
			return rapid.Float64Range(-1, 1).Draw(t, name) * pow2(rapid.IntRange(-30, 10).Draw(t, name+"e"))
		}
		d := &Dense{In: in, Out: out, HasBias: bias}
		w0, dw := NewTensor(out, in), NewTensor(out, in)
		for k := range w0.Data {
			w0.Data[k], dw.Data[k] = val("w0"), val("dw")
		}
		theta0, delta := []*Tensor{w0, nil}, []*Tensor{dw, nil}
		if bias {
			b0, db := NewTensor(out), NewTensor(out)
			for k := range b0.Data {
				b0.Data[k], db.Data[k] = val("b0"), val("db")
			}
			theta0[1], delta[1] = b0, db
		}
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		b := a + rapid.SampledFrom([]float64{0, 1e-9, 1e-3, 0.25, 1}).Draw(t, "w")
		al := interval.I{Lo: a, Hi: b}
		x := &IJet{N: n, D: in, V: interval.NewMatrix(n, in), Kink: make([]bool, n), Jump: make([]bool, n)}
		for k := range x.V.Lo {
			lo := val("x")
			x.V.Lo[k], x.V.Hi[k] = lo, lo+rapid.SampledFrom([]float64{0, 1e-12, 1e-3, 1}).Draw(t, "xw")
		}
		var line WeightsCache
		split := d.IntervalJet(NewSplitBox(theta0, delta, al, &line), x)
		boxed := d.IntervalJet(NewParamBox(theta0, delta, al), x)
		if split.Order != 0 || split.N != n || split.D != out {
			t.Fatalf("split jet order %d shape [%d, %d], want order 0 [%d, %d]", split.Order, split.N, split.D, n, out)
		}
		for s := 0; s < 6; s++ {
			alpha := []float64{a, b, 0.5*a + 0.5*b, a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "s")}[min(s, 3)]
			if alpha < a || alpha > b {
				alpha = a
			}
			xs := make([]float64, n*in)
			for k := range xs {
				switch s % 3 {
				case 0:
					xs[k] = x.V.Lo[k]
				case 1:
					xs[k] = x.V.Hi[k]
				default:
					xs[k] = min(x.V.Hi[k], x.V.Lo[k]+(x.V.Hi[k]-x.V.Lo[k])*rapid.Float64Range(0, 1).Draw(t, "f"))
				}
			}
			ra := new(big.Rat).SetFloat64(alpha)
			for i := 0; i < n; i++ {
				for q := 0; q < out; q++ {
					z := new(big.Rat)
					for k := 0; k < in; k++ {
						wq := new(big.Rat).Mul(ra, new(big.Rat).SetFloat64(dw.Data[q*in+k]))
						wq.Add(wq, new(big.Rat).SetFloat64(w0.Data[q*in+k]))
						z.Add(z, wq.Mul(wq, new(big.Rat).SetFloat64(xs[i*in+k])))
					}
					if bias {
						bq := new(big.Rat).Mul(ra, new(big.Rat).SetFloat64(delta[1].Data[q]))
						z.Add(z, bq.Add(bq, new(big.Rat).SetFloat64(theta0[1].Data[q])))
					}
					for name, m := range map[string]interval.Matrix{"split": split.V, "box": boxed.V} {
						e := m.At(i, q)
						if new(big.Rat).SetFloat64(e.Lo).Cmp(z) > 0 || new(big.Rat).SetFloat64(e.Hi).Cmp(z) < 0 {
							zf, _ := z.Float64()
							t.Fatalf("%s rule: α = %v, row %d unit %d: exact %v not in [%v, %v]", name, alpha, i, q, zf, e.Lo, e.Hi)
						}
					}
				}
			}
		}
	})
}

func pow2(e int) float64 {
	v := 1.0
	for ; e > 0; e-- {
		v *= 2
	}
	for ; e < 0; e++ {
		v /= 2
	}
	return v
}
