package certify

import (
	"math"
	"testing"

	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// bnRecomputePath draws a small MLP with one or two hidden layers, each
// followed by batchnorm1d, under bn_policy recompute with a reference batch
// of 2…N of its N examples.
func bnRecomputePath(t *rapid.T) *functionspace.Path {
	return bnPath(t, functionspace.BNRecompute, true)
}

// outJet is pass's interval forward pass for chunk c without the loss: the
// enclosure of the output path γ, γ′, γ″ over α ∈ alpha.
func (e *IntervalPath) outJet(c int, alpha interval.I, boxes []*nn.ParamBox, order int) *nn.IJet {
	j := nn.AffineIJet(e.a[c], e.b[c], alpha, order, e.kink0[c])
	st := e.refStats(alpha, boxes, order)
	for i := e.start; i < len(e.layers); i++ {
		if st[i] != nil {
			j = e.p.Model.Layers[i].(*nn.BatchNorm).IntervalJetStats(boxes[i], st[i], j)
			continue
		}
		j = e.layers[i].IntervalJet(boxes[i], j)
	}
	return j
}

func within(v float64, lo, hi float64) bool {
	s := 1e-10 * (1 + math.Abs(v))
	return v >= lo-s && v <= hi+s
}

// TestRecomputeOutputJetContains: under bn_policy recompute, for random
// [a, b] ⊂ [0, 1] and random α inside, every chunk's interval output jet
// (reference statistics from nn.IntervalBatchStats, normalisation by
// nn.BatchNorm.IntervalJetStats) contains functionspace's float64 output
// path γ(α), γ′(α) and, on rows without a kink, γ″(α) (nn.BatchStatsJet and
// BatchNorm.JetStats: an independent implementation of the same policy);
// and the leaf's L′ enclosure contains functionspace's L′(α).
func TestRecomputeOutputJetContains(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := bnRecomputePath(t)
		e, err := NewIntervalPath(p)
		if err != nil {
			t.Fatal(err)
		}
		a := rapid.Float64Range(0, 1).Draw(t, "a")
		b := a + (1-a)*rapid.SampledFrom([]float64{0, 1e-6, 1e-2, 0.3, 1}).Draw(t, "frac")
		ab := interval.I{Lo: a, Hi: b}
		bs := e.boxes(ab)
		for q := 0; q < 3; q++ {
			al := a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "u")
			ps := p.ParamsAt(al)
			for c := range e.chunks {
				want := p.JetChunk(ps, c, nil)
				got := e.outJet(c, ab, bs, 2)
				for _, st := range e.refStats(ab, bs, 2) {
					if st == nil || !st.Kink {
						continue
					}
					for i, kk := range got.Kink {
						if !kk {
							t.Fatalf("chunk %d row %d: reference statistics kink on [%v, %v] but the row is marked smooth", c, i, a, b)
						}
					}
				}
				v, d1, d2 := want.Value(), want.Velocity(), want.Acceleration()
				for i := 0; i < got.N; i++ {
					for k := 0; k < got.D; k++ {
						tt := i*got.D + k
						if x := v.At(i, k); !within(x, got.V.Lo[tt], got.V.Hi[tt]) {
							t.Fatalf("chunk %d row %d: γ = %v outside [%v, %v]", c, i, x, got.V.Lo[tt], got.V.Hi[tt])
						}
						if x := d1.At(i, k); !within(x, got.D1.Lo[tt], got.D1.Hi[tt]) {
							t.Fatalf("chunk %d row %d: γ′ = %v outside [%v, %v]", c, i, x, got.D1.Lo[tt], got.D1.Hi[tt])
						}
						if x := d2.At(i, k); !got.Kink[i] && !within(x, got.D2.Lo[tt], got.D2.Hi[tt]) {
							t.Fatalf("chunk %d row %d: γ″ = %v outside [%v, %v]", c, i, x, got.D2.Lo[tt], got.D2.Hi[tt])
						}
					}
				}
			}
		}
		if b < 1 && b > a {
			l := &Leaf{A: a, B: b}
			if err := e.evalLeaves(t.Context(), []*Leaf{l}, 2); err != nil {
				t.Fatal(err)
			}
			al := a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "v")
			if d := p.At(al).DLoss; !within(d, l.DL.Lo, l.DL.Hi) {
				t.Fatalf("L′(%v) = %v outside [%v, %v]", al, d, l.DL.Lo, l.DL.Hi)
			}
		}
	})
}

// TestBatchNormRecomputeCertificateSound: TestBatchNormCertificateSound
// under bn_policy recompute (reference batches smaller than N, one or two
// BatchNorm layers): never certified_monotone when a 400-point grid of the
// recompute loss rises above the tolerance, the upper bound covers the
// grid's Δ, and the L′ enclosure contains functionspace's L′.
func TestBatchNormRecomputeCertificateSound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) { checkBNCertificateSound(t, bnRecomputePath(t)) })
}
