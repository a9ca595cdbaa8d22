package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"

	"github.com/certify-mli/certify/interval"
)

// bnIntervalCase draws a batchnorm1d layer's θ0 and θT (running_var positive
// at both ends, so on all of [0,1]), an α-interval [a, b] ⊆ [0, 1] and an
// input enclosure (V, D1, D2 boxes) for n examples.
type bnIntervalCase struct {
	b          *BatchNorm
	theta0, dp []*Tensor
	a, bb      float64
	n          int
	lo, wd     [3][]float64 // per part: lower bounds and widths [n·c]
	kink       []bool
}

func drawBNIntervalCase(t *rapid.T) *bnIntervalCase {
	c := rapid.IntRange(1, 4).Draw(t, "c")
	n := rapid.IntRange(1, 3).Draw(t, "n")
	f := rapid.Float64Range(-2, 2)
	pos := rapid.Float64Range(0.01, 3)
	cs := &bnIntervalCase{b: &BatchNorm{Features: c, Eps: DefaultBatchNormEps}, n: n}
	t0, tT := make([]*Tensor, 5), make([]*Tensor, 5)
	for k := 0; k < 4; k++ {
		t0[k], tT[k] = NewTensor(c), NewTensor(c)
		for j := 0; j < c; j++ {
			if k == 3 {
				t0[k].Data[j], tT[k].Data[j] = pos.Draw(t, "v0"), pos.Draw(t, "vT")
			} else {
				t0[k].Data[j], tT[k].Data[j] = f.Draw(t, "p0"), f.Draw(t, "pT")
			}
		}
	}
	t0[4], tT[4] = NewTensor(), NewTensor()
	cs.theta0 = t0
	cs.dp = make([]*Tensor, 5)
	for k := range t0 {
		cs.dp[k] = NewTensor(t0[k].Shape...)
		for j := range t0[k].Data {
			cs.dp[k].Data[j] = tT[k].Data[j] - t0[k].Data[j]
		}
	}
	x := rapid.Float64Range(0, 1).Draw(t, "a")
	y := rapid.Float64Range(0, 1).Draw(t, "b")
	cs.a, cs.bb = math.Min(x, y), math.Max(x, y)
	if cs.bb-cs.a < 1e-9 {
		cs.bb = math.Min(cs.a+1e-3, 1)
		cs.a = cs.bb - 1e-3
	}
	for part := 0; part < 3; part++ {
		cs.lo[part], cs.wd[part] = make([]float64, n*c), make([]float64, n*c)
		for k := range cs.lo[part] {
			cs.lo[part][k] = rapid.Float64Range(-3, 3).Draw(t, "lo")
			cs.wd[part][k] = rapid.Float64Range(0, 0.5).Draw(t, "wd")
		}
	}
	cs.kink = make([]bool, n)
	for i := range cs.kink {
		cs.kink[i] = rapid.Bool().Draw(t, "kink")
	}
	return cs
}

func (cs *bnIntervalCase) ijet(order int) *IJet {
	c := cs.b.Features
	in := &IJet{N: cs.n, D: c, Order: order, Kink: cs.kink}
	ms := []*interval.Matrix{&in.V, &in.D1, &in.D2}
	for part := 0; part <= order; part++ {
		m := interval.NewMatrix(cs.n, c)
		for k := range m.Lo {
			m.Lo[k], m.Hi[k] = cs.lo[part][k], cs.lo[part][k]+cs.wd[part][k]
		}
		*ms[part] = m
	}
	return in
}

// TestBatchNormIntervalJetEncloses: for random layers, α-intervals and input
// enclosures, the interval jet contains BatchNorm.Jet (the float64
// `interpolate` rule, checked against hyperdual numbers and PyTorch in
// batchnorm_test.go) at random interior α and inputs, for orders 1 and 2,
// and it carries the input's Kink flags unchanged (BatchNorm is smooth).
func TestBatchNormIntervalJetEncloses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cs := drawBNIntervalCase(t)
		order := rapid.IntRange(1, 2).Draw(t, "order")
		c, n := cs.b.Features, cs.n
		box := NewParamBox(cs.theta0, cs.dp, interval.I{Lo: cs.a, Hi: cs.bb})
		out := cs.b.IntervalJet(box, cs.ijet(order))
		for i := 0; i < n; i++ {
			if out.Kink[i] != cs.kink[i] {
				t.Fatalf("kink[%d] = %v, want %v", i, out.Kink[i], cs.kink[i])
			}
		}
		u := rapid.Float64Range(0, 1)
		for trial := 0; trial < 5; trial++ {
			alpha := cs.a + u.Draw(t, "s")*(cs.bb-cs.a)
			pa := make([]*Tensor, 5)
			for k := range cs.theta0 {
				pa[k] = NewTensor(cs.theta0[k].Shape...)
				for j := range pa[k].Data {
					pa[k].Data[j] = cs.theta0[k].Data[j] + alpha*cs.dp[k].Data[j]
				}
			}
			in := &Jet{N: n, M: mat.NewDense(3*n, c, nil)}
			for part := 0; part <= order; part++ {
				for k := 0; k < n*c; k++ {
					in.M.Set(part*n+k/c, k%c, cs.lo[part][k]+u.Draw(t, "x")*cs.wd[part][k])
				}
			}
			y := cs.b.Jet(pa, cs.dp, in)
			parts := []interval.Matrix{out.V, out.D1, out.D2}
			for part := 0; part <= order; part++ {
				for k := 0; k < n*c; k++ {
					v := y.M.At(part*n+k/c, k%c)
					slack := 1e-12 * (1 + math.Abs(v)) // the float64 jet's own rounding
					if !(parts[part].Lo[k]-slack <= v && v <= parts[part].Hi[k]+slack) {
						t.Fatalf("part %d entry %d at α=%v: %v outside [%v, %v]", part, k, alpha, v, parts[part].Lo[k], parts[part].Hi[k])
					}
				}
			}
		}
	})
}

// TestBatchNormIntervalJetTight: on a point input and an α-interval of width
// 1e-9 the enclosure's widths are of the order of the width times the jet's
// derivative plus rounding, not the whole line; and a running_var box
// reaching below −Eps gives the whole line (r undefined), not a finite lie.
func TestBatchNormIntervalJetTight(t *testing.T) {
	b := &BatchNorm{Features: 1, Eps: 1e-5}
	ten := func(v ...float64) []*Tensor {
		out := make([]*Tensor, 5)
		for k := 0; k < 4; k++ {
			out[k] = &Tensor{Shape: []int{1}, Data: []float64{v[k]}}
		}
		out[4] = NewTensor()
		return out
	}
	theta0, dp := ten(1.5, -0.2, 0.3, 2), ten(-0.5, 0.4, 1, -1.5)
	x := 0.7
	in := NewConstIJet(1, 1, []float64{x}, 2)
	in = &IJet{N: 1, D: 1, Order: 2, V: in.V, D1: interval.PointMatrix(1, 1, []float64{0.25}), D2: interval.PointMatrix(1, 1, []float64{-1}), Kink: []bool{false}}
	out := b.IntervalJet(NewParamBox(theta0, dp, interval.I{Lo: 0.5, Hi: 0.5 + 1e-9}), in)
	for part, m := range []interval.Matrix{out.V, out.D1, out.D2} {
		if w := m.Hi[0] - m.Lo[0]; !(w > 0 && w < 1e-7) {
			t.Errorf("part %d: width %g, want in (0, 1e-7)", part, w)
		}
	}
	neg := ten(1, 0, 0, 1)
	dneg := ten(0, 0, 0, -2) // running_var 1 − 2α: negative beyond α = 0.5
	out = b.IntervalJet(NewParamBox(neg, dneg, interval.I{Lo: 0.4, Hi: 0.6}), in)
	if !math.IsInf(out.V.Lo[0], -1) || !math.IsInf(out.V.Hi[0], 1) {
		t.Errorf("running_var crossing −Eps: V = [%v, %v], want the whole line", out.V.Lo[0], out.V.Hi[0])
	}
}
