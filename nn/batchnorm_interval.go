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
	return b.intervalJet(p, in, 1)
}

// intervalJet is IntervalJet on rows of Features·hw entries, feature j
// holding entries j·hw … (j+1)·hw − 1 of every row (intervalJetStats):
// batchnorm2d's rule without transposes, bit for bit IntervalJet on the
// transpose.
func (b *BatchNorm) intervalJet(p *ParamBox, in *IJet, hw int) *IJet {
	if p == nil {
		panic("nn: BatchNorm.IntervalJet: the parameters depend on α; a ParamBox is required")
	}
	out := b.intervalJetStats(p, runningIStats(p, b.Features), in, hw)
	if in.HasDK() && out.D2.Lo != nil {
		// y = g(α)(h − μ(α)) + β(α) with g = γ r: ẏ(α) − ẏ(β) holds the
		// jumps of ḣ times g(α) (IJet.DK); the rest is smooth in α and
		// enclosed by D2's rule
		c := b.Features
		d := c * hw
		out.DK = interval.NewMatrix(in.N, d)
		for j := 0; j < c; j++ {
			g := interval.Mul(boxAt(p, 0, j), rsqrt(interval.AddF(boxAt(p, 3, j), b.Eps)))
			for q := 0; q < in.N*hw; q++ {
				t := (q/hw)*d + j*hw + q%hw
				k := interval.Mul(g, interval.I{Lo: in.DK.Lo[t], Hi: in.DK.Hi[t]})
				out.DK.Lo[t], out.DK.Hi[t] = k.Lo, k.Hi
			}
		}
	}
	return out
}

// runningIStats are the statistics of the interpolate policy as IStats: the
// running mean and variance enclosed by the ParamBox, with their exact
// α-derivatives Δμ, Δσ² and second derivatives 0 (they are affine in α), so
// that one rule, IntervalJetStats, serves both policies.
func runningIStats(p *ParamBox, c int) *IStats {
	st := &IStats{Mean: make([]interval.I, c), MeanVel: make([]interval.I, c), MeanAcc: make([]interval.I, c),
		Var: make([]interval.I, c), VarVel: make([]interval.I, c), VarAcc: make([]interval.I, c)}
	for j := 0; j < c; j++ {
		st.Mean[j] = boxAt(p, 2, j)
		st.Var[j] = boxAt(p, 3, j)
		st.MeanVel[j] = interval.Point(p.Delta[2].Data[j])
		st.VarVel[j] = interval.Point(p.Delta[3].Data[j])
	}
	return st
}

// boxAt encloses tensor k's entry j over the ParamBox's α-interval. A
// zero radius (a box of exact parameters, such as the certificate's
// left-end pass at α = 0) gives the point Mid itself: Mid ± 0 is exact,
// and rounding it outward would turn an exact 0 (a reset BatchNorm's bias
// and running mean) into an interval straddling 0.
func boxAt(p *ParamBox, k, j int) interval.I {
	m, r := p.Mid[k].Data[j], p.Rad[k].Data[j]
	if r == 0 {
		return interval.Point(m)
	}
	return interval.I{Lo: interval.Down(m - r), Hi: interval.Up(m + r)}
}

// rsqrt encloses x^(−1/2) over x; the whole line when x may be ≤ 0.
// math.Sqrt is correctly rounded, so one ulp outward encloses √.
func rsqrt(x interval.I) interval.I {
	if !(x.Lo > 0) || math.IsNaN(x.Hi) {
		return interval.I{Lo: math.Inf(-1), Hi: math.Inf(1)}
	}
	s := interval.I{Lo: max(interval.Down(math.Sqrt(x.Lo)), 0), Hi: interval.Up(math.Sqrt(x.Hi))}
	return interval.Recip(s)
}
