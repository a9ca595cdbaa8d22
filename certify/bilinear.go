package certify

import (
	"fmt"
	"math"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/nn"
)

// BilinearReport is the `conditions.bilinear_model` entry of the report
// for two-layer linear networks z = W2(W1 x + b1) + b2 (identity layers
// between them allowed), e.g. the linear autoencoders 784-h-784 of
// THEORY.md §11. Such a model is not affine in θ (THEORY.md §6's affine case
// does not apply) but bilinear, so along the line θα = θ0 + αδ:
//
//   - every output path is a quadratic polynomial
//     γ_i(α) = c0 + c1·α + c2·α² with c2 = ΔW2(ΔW1 x_i + Δb1): γ_i″ is
//     constant and the path is a parabola (or a segment) in the plane
//     spanned by c1 and c2; so is the stacked path Γ;
//   - its tangent turns monotonically within that plane, so the Gauss
//     length is exactly the angle between the end velocities,
//     G(γ_i) = ∠(γ_i′(0), γ_i′(1)) < π (when γ_i′ does not vanish), and
//     likewise G(Γ) = ∠(Γ′(0), Γ′(1));
//   - the mse loss L(α) is a quartic polynomial, not convex in general, and
//     L′ is the cubic fixed by L′(0), L″(0), L′(1), L″(1): L is
//     non-increasing on [0, 1] iff that cubic's maximum on [0, 1] is ≤ 0.
//
// The decision uses four float64 numbers of the path (not a rigorous
// enclosure); MaxDLoss is the cubic's maximum on [0, 1], at ArgMaxDLoss.
type BilinearReport struct {
	Applies bool `json:"applies"`
	// MaxDLoss is max over [0, 1] of L′ (from the cubic), ArgMaxDLoss where.
	MaxDLoss    *float64 `json:"max_dloss,omitempty"`
	ArgMaxDLoss *float64 `json:"argmax_dloss,omitempty"`
	Monotone    bool     `json:"monotone,omitempty"`
	// GaussLengthStacked is ∠(Γ′(0), Γ′(1)), the exact G(Γ) (null when a
	// velocity vanishes).
	GaussLengthStacked *float64 `json:"gauss_length_stacked_exact,omitempty"`
	Statement          string   `json:"statement"`
}

// isBilinear reports whether m is exactly two layers affine in α on a
// constant input (nn.AffineInAlpha: dense layers, bilinear in (W, h)) with
// only identity layers (identity, flatten: nn.Identity) around and between
// them.
func isBilinear(m *nn.Model) bool {
	affine := 0
	for _, l := range m.Layers {
		if _, ok := l.(nn.AffineInAlpha); ok {
			affine++
			continue
		}
		if id, ok := l.(nn.Identity); !ok || !id.IsIdentity() {
			return false
		}
	}
	return affine == 2
}

// CubicMax returns the maximum on [0, 1] of the cubic p with p(0) = d0,
// p′(0) = s0, p(1) = d1, p′(1) = s1 (cubic Hermite interpolation) and where
// it is attained.
func CubicMax(d0, s0, d1, s1 float64) (max, at float64) {
	// p(t) = d0 + s0 t + c t² + e t³ with c = 3(d1 − d0) − 2s0 − s1,
	// e = 2(d0 − d1) + s0 + s1.
	c := 3*(d1-d0) - 2*s0 - s1
	e := 2*(d0-d1) + s0 + s1
	p := func(t float64) float64 { return d0 + t*(s0+t*(c+t*e)) }
	max, at = d0, 0
	try := func(t float64) {
		if t >= 0 && t <= 1 && !math.IsNaN(t) {
			if v := p(t); v > max {
				max, at = v, t
			}
		}
	}
	try(1)
	// p′(t) = s0 + 2c t + 3e t² = 0.
	if e == 0 {
		if c != 0 {
			try(-s0 / (2 * c))
		}
	} else if disc := 4*c*c - 12*e*s0; disc >= 0 {
		r := math.Sqrt(disc)
		try((-2*c + r) / (6 * e))
		try((-2*c - r) / (6 * e))
	}
	return max, at
}

// bilinearCondition decides monotonicity of a two-layer linear model from
// L′ and L″ at α = 0 and 1 (BilinearReport), for mse.
func bilinearCondition(p *functionspace.Path, first, last *functionspace.Sample) BilinearReport {
	if !isBilinear(p.Model) {
		return BilinearReport{Statement: "does not apply: the model is not two linear layers with only identity layers between them"}
	}
	if p.Model.Spec.Loss != "mse" {
		return BilinearReport{Statement: "does not apply: the quartic-loss decision is for mse (the output paths are still parabolas)"}
	}
	mx, at := CubicMax(first.DLoss, first.D2Loss, last.DLoss, last.D2Loss)
	r := BilinearReport{Applies: true, MaxDLoss: &mx, ArgMaxDLoss: &at, Monotone: mx <= 0}
	if first.StackedVV > 0 && last.StackedVV > 0 && first.Velocity != nil && last.Velocity != nil {
		var dot float64
		a, b := first.Velocity.RawMatrix().Data, last.Velocity.RawMatrix().Data
		for i := range a {
			dot += a[i] * b[i]
		}
		g := math.Acos(max(-1, min(1, dot/math.Sqrt(first.StackedVV*last.StackedVV))))
		r.GaussLengthStacked = &g
	}
	if r.Monotone {
		r.Statement = fmt.Sprintf("monotone: the model is bilinear in θ, L is a quartic in α and L′ ≤ %.3g < 0 on [0, 1]", mx)
		if mx == 0 {
			r.Statement = "monotone (non-increasing): the model is bilinear in θ, L is a quartic in α and max L′ = 0 on [0, 1]"
		}
	} else {
		r.Statement = fmt.Sprintf("not monotone: the model is bilinear in θ, L is a quartic in α and L′(%.4g) = %.3g > 0", at, mx)
	}
	return r
}
