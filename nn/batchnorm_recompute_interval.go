package nn

import (
	"math"

	"github.com/certify-mli/certify/interval"
)

// IStats encloses, over an α-interval, the `recompute` policy's statistics
// jet of one BatchNorm layer (THEORY.md §2, §7): the reference batch's mean
// μ, μ̇, μ̈ and biased variance σ², σ̇², σ̈², each [C]. Kink is set when some
// reference example's input row has a kink on the interval: the statistics
// (and so every example normalised with them) may then fail to be C², the
// derivative enclosures being hulls of one-sided derivatives.
type IStats struct {
	Mean, MeanVel, MeanAcc []interval.I
	Var, VarVel, VarAcc    []interval.I
	Kink                   bool
	// Jump is set when some reference example's input row may jump on the
	// interval (IJet.Jump): the statistics may then be discontinuous.
	Jump bool
}

// IntervalBatchStats encloses nn.BatchStatsJet(·, false) (biased variance)
// over the α-interval of the reference batch's input jet in (R ≥ 1 rows):
//
//	μ = mean h,  μ̇ = mean ḣ,  μ̈ = mean ḧ,
//	σ² = mean (h−μ)²,  σ̇² = mean 2(h−μ)(ḣ−μ̇),
//	σ̈² = mean 2[(ḣ−μ̇)² + (h−μ)(ḧ−μ̈)],
//
// in outward-rounded interval arithmetic (the dependency problem only
// widens the enclosures), σ² intersected with [0, ∞). Only the derivatives
// up to in.Order are set (the others are left as 0); a Const jet has zero
// derivatives.
func IntervalBatchStats(in *IJet) *IStats {
	n, c := in.N, in.D
	zero := interval.Point(0)
	mk := func() []interval.I {
		s := make([]interval.I, c)
		for j := range s {
			s[j] = zero
		}
		return s
	}
	st := &IStats{Mean: mk(), MeanVel: mk(), MeanAcc: mk(), Var: mk(), VarVel: mk(), VarAcc: mk()}
	for i, k := range in.Kink {
		st.Kink = st.Kink || k
		st.Jump = st.Jump || in.Jumped(i)
	}
	fn := interval.Point(float64(n))
	at := func(m interval.Matrix, t int) interval.I { return interval.I{Lo: m.Lo[t], Hi: m.Hi[t]} }
	d1 := !in.Const && in.Order >= 1
	d2 := !in.Const && in.Order >= 2
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			t := i*c + j
			st.Mean[j] = interval.Add(st.Mean[j], at(in.V, t))
			if d1 {
				st.MeanVel[j] = interval.Add(st.MeanVel[j], at(in.D1, t))
			}
			if d2 {
				st.MeanAcc[j] = interval.Add(st.MeanAcc[j], at(in.D2, t))
			}
		}
	}
	for j := 0; j < c; j++ {
		st.Mean[j] = interval.Div(st.Mean[j], fn)
		st.MeanVel[j] = interval.Div(st.MeanVel[j], fn)
		st.MeanAcc[j] = interval.Div(st.MeanAcc[j], fn)
	}
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			t := i*c + j
			u := interval.Sub(at(in.V, t), st.Mean[j])
			st.Var[j] = interval.Add(st.Var[j], interval.Sqr(u))
			if !d1 {
				continue
			}
			ud := interval.Sub(at(in.D1, t), st.MeanVel[j])
			st.VarVel[j] = interval.Add(st.VarVel[j], interval.Scale(2, interval.Mul(u, ud)))
			if d2 {
				udd := interval.Sub(at(in.D2, t), st.MeanAcc[j])
				st.VarAcc[j] = interval.Add(st.VarAcc[j], interval.Scale(2, interval.Add(interval.Sqr(ud), interval.Mul(u, udd))))
			}
		}
	}
	for j := 0; j < c; j++ {
		st.Var[j] = interval.Intersect(interval.Div(st.Var[j], fn), interval.I{Lo: 0, Hi: math.Inf(1)})
		st.VarVel[j] = interval.Div(st.VarVel[j], fn)
		st.VarAcc[j] = interval.Div(st.VarAcc[j], fn)
	}
	return st
}

// IntervalJetStats is the `recompute` policy of THEORY.md §2
// (BatchNorm.JetStats with the reference batch's statistics) in interval
// arithmetic over α ∈ p.Alpha (THEORY.md §7): y = γ(h − μ)/√(σ² + Eps) + β
// with γ, β enclosed by the ParamBox p (affine in α, Δγ, Δβ exact; the
// running statistics are not used) and μ, σ² and their α-derivatives
// enclosed by st (IntervalBatchStats of the reference batch's input). With
// u = h − μ, u̇ = ḣ − μ̇, ü = ḧ − μ̈, r = (σ² + Eps)^(−1/2), q = 1/(σ² + Eps):
//
//	ṙ = −½ σ̇² r q,  r̈ = ¾ (σ̇²)² r q² − ½ σ̈² r q,
//	g = γ r,  ġ = Δγ r + γ ṙ,  g̈ = 2 Δγ ṙ + γ r̈,
//	y = g u + β,  ẏ = ġ u + g u̇ + Δβ,  ÿ = g̈ u + 2 ġ u̇ + g ü.
//
// When st.Kink (st.Jump) is set every output row is marked Kink (Jump) (the statistics may
// not be C² on the interval). p must not be nil (panics otherwise).
func (b *BatchNorm) IntervalJetStats(p *ParamBox, st *IStats, in *IJet) *IJet {
	return b.intervalJetStats(p, st, in, 1)
}

// intervalJetStats is IntervalJetStats on rows of Features·hw entries,
// feature j holding the hw contiguous entries j·hw … (j+1)·hw − 1 of
// every row (batchnorm2d's [N, C·H·W] as it is, hw = H·W; batchnorm1d
// has hw = 1): every entry's operations are those of IntervalJetStats on
// its feature, so the result is bit for bit that of IntervalJetStats on
// the [N·H·W, C] transpose, without the two transposes (issue 13: they
// were ~10 % of a resnet-8 leaf's CPU).
func (b *BatchNorm) intervalJetStats(p *ParamBox, st *IStats, in *IJet, hw int) *IJet {
	if p == nil {
		panic("nn: BatchNorm.IntervalJetStats: the parameters depend on α; a ParamBox is required")
	}
	n, c := in.N, b.Features
	d := c * hw
	order := in.Order
	out := &IJet{N: n, D: d, Order: order, V: interval.NewMatrix(n, d), Kink: make([]bool, n), Jump: make([]bool, n)}
	copy(out.Kink, in.Kink)
	if in.Jump != nil {
		copy(out.Jump, in.Jump)
	}
	if st.Kink {
		for i := range out.Kink {
			out.Kink[i] = true
		}
	}
	if st.Jump {
		for i := range out.Jump {
			out.Jump[i] = true
		}
	}
	if order >= 1 {
		out.D1 = interval.NewMatrix(n, d)
	}
	if order >= 2 {
		out.D2 = interval.NewMatrix(n, d)
	}
	at := func(m interval.Matrix, t int) interval.I { return interval.I{Lo: m.Lo[t], Hi: m.Hi[t]} }
	for j := 0; j < c; j++ {
		w, bias := boxAt(p, 0, j), boxAt(p, 1, j)
		dw, db := p.Delta[0].Data[j], p.Delta[1].Data[j]
		ve := interval.AddF(st.Var[j], b.Eps)
		r := rsqrt(ve)
		g := interval.Mul(w, r)
		var rd, rdd, gd, gdd interval.I
		if order >= 1 {
			q := interval.Recip(ve)
			rq := interval.Mul(r, q)
			rd = interval.Mul(interval.Scale(-0.5, st.VarVel[j]), rq)
			gd = interval.Add(interval.Scale(dw, r), interval.Mul(w, rd))
			if order >= 2 {
				t1 := interval.Mul(interval.Scale(0.75, interval.Sqr(st.VarVel[j])), interval.Mul(rq, q))
				t2 := interval.Mul(interval.Scale(-0.5, st.VarAcc[j]), rq)
				rdd = interval.Add(t1, t2)
				gdd = interval.Add(interval.Scale(2*dw, rd), interval.Mul(w, rdd))
			}
		}
		// entry t = e·d + j·hw + s of example e, in the same order as one
		// loop over q = e·hw + s, without q/hw and q%hw per entry (integer
		// divisions)
		for t0 := j * hw; t0 < n*d; t0 += d {
			for t := t0; t < t0+hw; t++ {
				u := interval.Sub(at(in.V, t), st.Mean[j])
				y := interval.Add(interval.Mul(g, u), bias)
				out.V.Lo[t], out.V.Hi[t] = y.Lo, y.Hi
				if order < 1 {
					continue
				}
				ud, udd := interval.Neg(st.MeanVel[j]), interval.Neg(st.MeanAcc[j])
				if !in.Const {
					ud = interval.Sub(at(in.D1, t), st.MeanVel[j])
					if order >= 2 {
						udd = interval.Sub(at(in.D2, t), st.MeanAcc[j])
					}
				}
				y1 := interval.AddF(interval.Add(interval.Mul(gd, u), interval.Mul(g, ud)), db)
				out.D1.Lo[t], out.D1.Hi[t] = y1.Lo, y1.Hi
				if order < 2 {
					continue
				}
				y2 := interval.Add(interval.Add(interval.Mul(gdd, u), interval.Scale(2, interval.Mul(gd, ud))), interval.Mul(g, udd))
				out.D2.Lo[t], out.D2.Hi[t] = y2.Lo, y2.Hi
			}
		}
	}
	return out
}
