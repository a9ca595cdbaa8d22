package certify

import (
	"math"
	"math/big"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
	"github.com/certify-mli/certify/nn"
)

// exactPrec is the mantissa precision (bits) of the exact endpoint
// evaluation. Every input (θ0, δ, x, the targets, α ∈ {0, 1}) is a
// float64, so every value of a piecewise-linear network's forward pass is a
// dyadic rational; each operation is checked to be exact (big.Exact), so
// the precision only decides how often the check gives up, never a value.
const exactPrec = 1 << 12

// exactEndWork caps Σ over linear layers of N·In·Out for the exact
// endpoint evaluation (big.Float products are ~100× a float64's): tiny
// networks only, where the float64 endpoint can sit exactly on a fit.
const exactEndWork = 1 << 16

// exactEndSlopes returns, per example, ℓ_i′ at an end of the line (side
// −1: the left derivative at α = 1; side +1: the right derivative at α =
// 0) computed exactly: θ(α) = θ0 + αδ with θ0, δ, the inputs and targets
// the float64 values the interval path certifies, evaluated in dyadic
// rational arithmetic (math/big, every operation checked exact), with
// ℓ_i = Σ_k (y_k − t_k)² unscaled (IntervalPath's per-example loss for
// mse). ok[i] is false where example i is not decided: a ReLU input
// exactly 0 at the end with zero velocity (the one-sided derivative then
// depends on higher orders), unless every residual of the example is
// exactly 0 (ℓ_i′ = 2Σ r_k r_k′ = 0 from either side). It returns nil for
// models it does not handle: only layers with an exact rule (nn.ExactRule:
// linear, relu, leaky_relu, identity, flatten) with the mse loss, at most
// exactEndWork products, and paths without BatchNorm buffers or float32
// precision.
//
// Why (issue 12, THEORY.md §7's endpoint-centred form): after an exact fit
// the interval enclosure of ℓ_i′(1) is [−ε, ε] with ε a few ulps, so the
// last leaf keeps a rise of order ε²/(2L″) and tolerance 0 is never
// reached. The exact value decides it: ℓ_i′(1) = 0 exactly (the residual is
// exactly 0 in real arithmetic) or its true sign.
func exactEndSlopes(p *functionspace.Path, side int) (d []*big.Float, ok []bool) {
	if p.Model.Spec.Loss != "mse" || p.Precision() != functionspace.Float64 || p.BNPolicy() != functionspace.BNNone {
		return nil, nil
	}
	dy := &nn.Dyadic{Prec: exactPrec, Side: side}
	maps, work, err := p.Model.ExactEnd(dy, p.Theta0, p.Delta)
	if err != nil || work == 0 || p.N*work > exactEndWork || dy.Inexact {
		return nil, nil // a layer without an exact rule, no products, too much work, or inexact parameters
	}
	d, ok = make([]*big.Float, p.N), make([]bool, p.N)
	tbuf := make([]float64, p.K)
	for n := 0; n < p.N; n++ {
		dy.Inexact, dy.Undecided = false, false
		row := p.X.RawRowView(n)
		h, hd := make([]*big.Float, len(row)), make([]*big.Float, len(row))
		for j, v := range row {
			h[j], hd[j] = dy.Of(v), dy.Of(0)
		}
		for _, f := range maps {
			h, hd = f(h, hd)
		}
		y := p.Targets.Target(n, p.K, tbuf)
		sum, t := dy.New(), dy.New()
		allZero := true
		for k := 0; k < p.K; k++ {
			r := dy.Check(dy.New().Sub(h[k], dy.Of(y[k])))
			if r.Sign() != 0 {
				allZero = false
			}
			dy.Check(sum.Add(sum, dy.Check(t.Mul(r, hd[k]))))
		}
		dy.Check(sum.Mul(sum, dy.Of(2)))
		switch {
		case !dy.Inexact && allZero:
			d[n], ok[n] = dy.New(), true // ℓ_i′ = 0 from either side
		case !dy.Inexact && !dy.Undecided:
			d[n], ok[n] = sum, true
		}
	}
	return d, ok
}

// outward returns the tightest float64 interval holding the dyadic value v.
func outward(v *big.Float) interval.I {
	lo, _ := new(big.Float).SetMode(big.ToNegativeInf).Set(v).Float64()
	hi, _ := new(big.Float).SetMode(big.ToPositiveInf).Set(v).Float64()
	return interval.I{Lo: lo, Hi: hi}
}

// tightenEnds replaces the interval path's enclosures of per-example ℓ_i′(1)
// (and ℓ_i′(0), when kept) by the exact one-sided values of
// exactEndSlopes, rounded outward, where they are decided. The exact value
// lies in the old enclosure, so this only tightens it (the intersection is
// taken; an empty one is a contradiction and leaves the old enclosure). It
// returns the number of examples tightened at α = 1.
func (e *IntervalPath) tightenEnds() int {
	n := 0
	for _, end := range []struct {
		side int
		encs [][]interval.I
	}{{-1, e.dl1}, {+1, e.dl0}} {
		if end.encs == nil {
			continue
		}
		d, ok := exactEndSlopes(e.p, end.side)
		if d == nil {
			continue
		}
		for c, ch := range e.chunks {
			for i := range end.encs[c] {
				x := ch[0] + i
				if !ok[x] {
					continue
				}
				v := interval.Intersect(end.encs[c][i], outward(d[x]))
				if !(v.Lo <= v.Hi) || math.IsNaN(v.Lo) {
					continue
				}
				end.encs[c][i] = v
				if end.side < 0 {
					n++
				}
			}
		}
	}
	return n
}
