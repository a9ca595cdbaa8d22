package nn

import (
	"math"

	"github.com/certify-mli/certify/interval"
)

// IntervalJet is the `interpolate` policy of THEORY.md §2 (BatchNorm.Jet) in
// interval arithmetic over α ∈ p.Alpha (THEORY.md §7): with γ(α), β(α),
// μ(α) = running_mean(α) and σ²(α) = running_var(α) enclosed by the
// ParamBox p (all four affine in α, their α-derivatives Δγ, Δβ, Δμ, Δσ²
// exact, second derivatives 0), u = h − μ, r = (σ² + Eps)^(−1/2) and
// q = 1/(σ² + Eps),
//
//	ṙ = −½ Δσ² r q,  r̈ = ¾ (Δσ²)² r q²,
//	g = γ r,  ġ = Δγ r + γ ṙ,  g̈ = 2 Δγ ṙ + γ r̈,
//	y = g u + β,  ẏ = ġ u + g u̇ + Δβ,  ÿ = g̈ u + 2 ġ u̇ + g ü,
//
// u̇ = ḣ − Δμ, ü = ḧ, each operation rounded outward (package interval; the
// square root is IEEE correctly rounded, so one ulp encloses it). The layer
// is smooth in α wherever σ² + Eps > 0, so it sets no Kink and the
// mean-value form stays valid through it. Where the enclosure of σ² + Eps
// reaches 0 or below (running_var extrapolated past 0) r is the whole line.
//
// Only the enclosed order (in.Order) is computed. A Const input (the
// network input) is taken with zero α-derivatives; p must not be nil,
// since the parameters depend on α (IntervalJet panics otherwise).
func (b *BatchNorm) IntervalJet(p *ParamBox, in *IJet) *IJet {
	if p == nil {
		panic("nn: BatchNorm.IntervalJet: the parameters depend on α; a ParamBox is required")
	}
	n, c := in.N, b.Features
	order := in.Order
	out := &IJet{N: n, D: c, Order: order, V: interval.NewMatrix(n, c), Kink: append([]bool(nil), in.Kink...)}
	if out.Kink == nil {
		out.Kink = make([]bool, n)
	}
	if order >= 1 {
		out.D1 = interval.NewMatrix(n, c)
	}
	if order >= 2 {
		out.D2 = interval.NewMatrix(n, c)
	}
	box := func(k, j int) interval.I {
		m, r := p.Mid[k].Data[j], p.Rad[k].Data[j]
		return interval.I{Lo: interval.Down(m - r), Hi: interval.Up(m + r)}
	}
	zero := interval.Point(0)
	for j := 0; j < c; j++ {
		w, bias, mu, v := box(0, j), box(1, j), box(2, j), box(3, j)
		dw, db, dm, dv := p.Delta[0].Data[j], p.Delta[1].Data[j], p.Delta[2].Data[j], p.Delta[3].Data[j]
		ve := interval.AddF(v, b.Eps)
		r := rsqrt(ve)
		g := interval.Mul(w, r)
		var rd, rdd, gd, gdd interval.I
		if order >= 1 {
			q := interval.Recip(ve)
			rq := interval.Mul(r, q)
			rd = interval.Scale(dv, interval.Scale(-0.5, rq))
			gd = interval.Add(interval.Scale(dw, r), interval.Mul(w, rd))
			if order >= 2 {
				dv2 := interval.Sqr(interval.Point(dv))
				rdd = interval.Mul(interval.Scale(0.75, dv2), interval.Mul(rq, q))
				gdd = interval.Add(interval.Scale(2*dw, rd), interval.Mul(w, rdd))
			}
		}
		for i := 0; i < n; i++ {
			t := i*c + j
			u := interval.Sub(interval.I{Lo: in.V.Lo[t], Hi: in.V.Hi[t]}, mu)
			y := interval.Add(interval.Mul(g, u), bias)
			out.V.Lo[t], out.V.Hi[t] = y.Lo, y.Hi
			if order < 1 {
				continue
			}
			ud, udd := interval.Point(-dm), zero
			if !in.Const {
				ud = interval.AddF(interval.I{Lo: in.D1.Lo[t], Hi: in.D1.Hi[t]}, -dm)
				if order >= 2 {
					udd = interval.I{Lo: in.D2.Lo[t], Hi: in.D2.Hi[t]}
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
	return out
}

// rsqrt encloses x^(−1/2) over x; the whole line when x may be ≤ 0.
// math.Sqrt is correctly rounded, so one ulp outward encloses √.
func rsqrt(x interval.I) interval.I {
	if !(x.Lo > 0) || math.IsNaN(x.Hi) {
		return interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	}
	s := interval.I{Lo: math.Max(interval.Down(math.Sqrt(x.Lo)), 0), Hi: interval.Up(math.Sqrt(x.Hi))}
	return interval.Recip(s)
}
