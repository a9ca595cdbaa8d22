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
// models it does not handle: only linear, relu, leaky_relu, identity and
// flatten layers with the mse loss, at most exactEndWork products, and
// paths without BatchNorm buffers or float32 precision.
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
	work := 0
	for _, l := range p.Model.Layers {
		switch v := l.(type) {
		case *nn.Dense:
			work += p.N * v.In * v.Out
		case *nn.Activation:
			switch v.Kind {
			case nn.ReLU, nn.LeakyReLU, nn.IdentityKind, nn.Flatten:
			default:
				return nil, nil
			}
		default:
			return nil, nil
		}
	}
	if work > exactEndWork || work == 0 {
		return nil, nil
	}
	nf := func() *big.Float { return new(big.Float).SetPrec(exactPrec) }
	exact := true
	chk := func(z *big.Float) *big.Float {
		if z.Acc() != big.Exact || z.IsInf() {
			exact = false
		}
		return z
	}
	fromF := func(v float64) *big.Float { return nf().SetFloat64(v) }
	// the parameters at the end and their velocity δ
	type lin struct {
		w, dw [][]*big.Float // [Out][In]
		b, db []*big.Float
	}
	lins := map[int]*lin{}
	for i, l := range p.Model.Layers {
		dl, isD := l.(*nn.Dense)
		if !isD {
			continue
		}
		ps := p.Model.LayerParams(p.Theta0, i)
		ds := p.Model.LayerParams(p.Delta, i)
		L := &lin{}
		at := func(t *nn.Tensor, j int) float64 {
			if t == nil {
				return 0
			}
			return t.Data[j]
		}
		for o := 0; o < dl.Out; o++ {
			var wr, dr []*big.Float
			for in := 0; in < dl.In; in++ {
				j := o*dl.In + in
				dv := fromF(at(ds[0], j))
				w := fromF(at(ps[0], j))
				if side < 0 { // α = 1
					chk(w.Add(w, dv))
				}
				wr, dr = append(wr, w), append(dr, dv)
			}
			L.w, L.dw = append(L.w, wr), append(L.dw, dr)
			bv, dbv := fromF(0), fromF(0)
			if dl.HasBias && len(ps) > 1 {
				bv, dbv = fromF(at(ps[1], o)), fromF(at(ds[1], o))
				if side < 0 {
					chk(bv.Add(bv, dbv))
				}
			}
			L.b, L.db = append(L.b, bv), append(L.db, dbv)
		}
		lins[i] = L
	}
	if !exact {
		return nil, nil
	}
	d, ok = make([]*big.Float, p.N), make([]bool, p.N)
	tbuf := make([]float64, p.K)
	for n := 0; n < p.N; n++ {
		exact = true
		row := p.X.RawRowView(n)
		h, hd := make([]*big.Float, len(row)), make([]*big.Float, len(row))
		for j, v := range row {
			h[j], hd[j] = fromF(v), fromF(0)
		}
		decided := true
		for i, l := range p.Model.Layers {
			switch v := l.(type) {
			case *nn.Dense:
				L := lins[i]
				z, zd := make([]*big.Float, v.Out), make([]*big.Float, v.Out)
				t := nf()
				for o := 0; o < v.Out; o++ {
					s, sd := nf().Set(L.b[o]), nf().Set(L.db[o])
					for j := 0; j < v.In; j++ {
						chk(s.Add(s, chk(t.Mul(L.w[o][j], h[j]))))
						chk(sd.Add(sd, chk(t.Mul(L.dw[o][j], h[j]))))
						chk(sd.Add(sd, chk(t.Mul(L.w[o][j], hd[j]))))
					}
					z[o], zd[o] = s, sd
				}
				h, hd = z, zd
			case *nn.Activation:
				if v.Kind != nn.ReLU && v.Kind != nn.LeakyReLU {
					continue // identity, flatten
				}
				slope := 0.0
				if v.Kind == nn.LeakyReLU {
					slope = v.Slope
				}
				for j := range h {
					// active: the unit is the identity on the side of
					// the end the derivative is taken from
					sg := h[j].Sign()
					if sg == 0 {
						sg = side * hd[j].Sign()
						if sg == 0 {
							decided = false
						}
					}
					if sg < 0 {
						chk(h[j].Mul(h[j], fromF(slope)))
						chk(hd[j].Mul(hd[j], fromF(slope)))
					}
				}
			}
		}
		y := p.Targets.Target(n, p.K, tbuf)
		sum, t := nf(), nf()
		allZero := true
		for k := 0; k < p.K; k++ {
			r := chk(nf().Sub(h[k], fromF(y[k])))
			if r.Sign() != 0 {
				allZero = false
			}
			chk(sum.Add(sum, chk(t.Mul(r, hd[k]))))
		}
		chk(sum.Mul(sum, fromF(2)))
		switch {
		case exact && allZero:
			d[n], ok[n] = nf(), true // ℓ_i′ = 0 from either side
		case exact && decided:
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
