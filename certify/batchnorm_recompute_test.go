package certify

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/internal/testnets"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// bnRecomputePath draws a small MLP with one or two hidden layers, each
// followed by batchnorm1d, under bn_policy recompute with a reference batch
// of 2…N of its N examples.
func bnRecomputePath(t *rapid.T) *functionspace.Path {
	act := rapid.SampledFrom([]string{"relu", "tanh"}).Draw(t, "act")
	loss := rapid.SampledFrom([]string{"mse", "cross_entropy"}).Draw(t, "loss")
	in := rapid.IntRange(1, 3).Draw(t, "in")
	k := rapid.IntRange(2, 3).Draw(t, "k")
	sizes := []int{in}
	for range rapid.IntRange(1, 2).Draw(t, "depth") {
		sizes = append(sizes, rapid.IntRange(2, 4).Draw(t, "hidden"))
	}
	sizes = append(sizes, k)
	m, err := nn.Build(nn.InsertBatchNorm(nn.MLPSpec(sizes, act, loss)))
	if err != nil {
		t.Fatal(err)
	}
	seed := rapid.Uint64().Draw(t, "seed")
	s0, _ := nn.Init(m, "pytorch", 1, seed)
	sT, _ := nn.Init(m, "pytorch", 1, seed+1)
	rng := rand.New(rand.NewPCG(seed, 7))
	testnets.RandomizeBatchNorm(m, rng, 0.1, s0, sT)
	n := rapid.IntRange(2, 7).Draw(t, "n")
	x := mat.NewDense(n, in, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = 2 * rng.NormFloat64()
	}
	tg := nn.Targets{Labels: make([]int, n)}
	for i := range tg.Labels {
		tg.Labels[i] = rng.IntN(k)
	}
	if loss == "mse" {
		tg = nn.Targets{Values: mat.NewDense(n, k, nil)}
		for i := range tg.Values.RawMatrix().Data {
			tg.Values.RawMatrix().Data[i] = rng.NormFloat64()
		}
	}
	opt := functionspace.Options{Chunk: rapid.IntRange(1, 3).Draw(t, "chunk"), BNPolicy: functionspace.BNRecompute,
		BNReference: rapid.IntRange(2, n).Draw(t, "reference")}
	p, err := functionspace.New(m, s0, sT, x, tg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if p.BNPolicy() != functionspace.BNRecompute || p.BNReference() != opt.BNReference {
		t.Fatalf("policy %q reference %d", p.BNPolicy(), p.BNReference())
	}
	return p
}

// outJet is pass's interval forward pass for chunk c without the loss: the
// enclosure of the output path γ, γ′, γ″ over α ∈ alpha.
func (e *evaluator) outJet(c int, alpha interval.I, boxes []*nn.ParamBox, order int) *nn.IJet {
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
		e, err := newEvaluator(p)
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
			l := &leaf{a: a, b: b}
			if err := e.evalLeaves(t.Context(), []*leaf{l}, 2); err != nil {
				t.Fatal(err)
			}
			al := a + (b-a)*rapid.Float64Range(0, 1).Draw(t, "v")
			if d := p.At(al).DLoss; !within(d, l.dl.Lo, l.dl.Hi) {
				t.Fatalf("L′(%v) = %v outside [%v, %v]", al, d, l.dl.Lo, l.dl.Hi)
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
