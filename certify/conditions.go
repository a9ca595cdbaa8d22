package certify

import (
	"encoding/json"
	"fmt"
	"math"
)

// PathQuantities are what the sufficient conditions of THEORY.md §6 are
// decided from, for one output path (one example's γ_i, or the stacked path
// Γ) sampled on an increasing grid Alphas [m] that ends at α = 1:
//
//	RemainingGauss[j] = G[α_j, 1]   (radians, corners included)
//	RemainingArc[j]   = S(α_j) = ∫_{α_j}^1 ‖v‖
//	TangentResidual[j] = ⟨T(α_j), e⟩ with T = v/‖v‖ and e = γ(1) − y
//	ResidualNorm       = ‖e‖
//
// TangentResidual[j] is NaN where the velocity vanishes (T undefined).
type PathQuantities struct {
	Alphas          []float64
	RemainingGauss  []float64
	RemainingArc    []float64
	TangentResidual []float64
	ResidualNorm    float64
}

// TheoremA checks Theorem A (exact fit) for one path: it applies when the
// residual e = γ(1) − y is exactly zero, and then G(γ) < π/2 proves ℓ
// strictly decreasing on [0, 1] (G ≤ π/2: non-increasing). THEORY.md §6.
// It returns whether it applies and whether the condition holds.
func TheoremA(q PathQuantities) (applies, holds bool) {
	if q.ResidualNorm != 0 {
		return false, false
	}
	return true, q.RemainingGauss[0] < math.Pi/2
}

// TheoremBCoverage checks Theorem B (inexact fit) for one path at each grid
// point: where G[α,1] < π/2 and ⟨T(α), e⟩ < cos(G[α,1]) S(α), the bound
// ℓ′(α) ≤ 2‖v‖(⟨T,e⟩ − cos(G[α,1]) S(α)) proves ℓ′(α) < 0 (THEORY.md §6).
// It returns, per grid point, whether ℓ′ < 0 is proven there, and the end
// α* of the longest prefix [0, α*] of grid points all proven (−1 when the
// condition fails at α = 0). Near α = 1, S → 0 and the sign of ⟨v(1), e⟩
// decides, so the prefix usually stops short of 1.
func TheoremBCoverage(q PathQuantities) (proven []bool, prefixEnd float64) {
	proven = make([]bool, len(q.Alphas))
	prefixEnd = -1
	prefix := true
	for j := range q.Alphas {
		g := q.RemainingGauss[j]
		tr := q.TangentResidual[j]
		proven[j] = g < math.Pi/2 && !math.IsNaN(tr) && tr < math.Cos(g)*q.RemainingArc[j]
		if prefix && proven[j] {
			prefixEnd = q.Alphas[j]
		} else {
			prefix = false
		}
	}
	return proven, prefixEnd
}

// TheoremReport is the `conditions` entry of the report for the theory's
// sufficient conditions (THEORY.md §6). They are evidence, not proof: the
// Gauss and arc lengths they use are numerical (with the error estimates
// reported beside them), and Theorem B is checked at grid points only.
type TheoremReport struct {
	// Applies is false for cross-entropy runs (the theorems are for mse).
	Applies bool   `json:"applies"`
	Reason  string `json:"reason,omitempty"`
	// Theorem A.
	ExactFitExamples   int     `json:"theorem_a_exact_fit_examples"`
	TheoremAHolds      int     `json:"theorem_a_holds_examples"`
	TheoremAFraction   float64 `json:"theorem_a_fraction"`
	TheoremAStacked    string  `json:"theorem_a_stacked"`
	TheoremAConclusion string  `json:"theorem_a"`
	// Theorem B: the fraction of examples for which ℓ_i′ < 0 is proven at
	// every grid point of [0, α], for α in Alphas; the quantiles of the
	// per-example prefix ends α*_i; and the stacked path's α*.
	TheoremBAlphas        []float64 `json:"theorem_b_alphas"`
	TheoremBFraction      []float64 `json:"theorem_b_fraction_proven_up_to"`
	TheoremBPrefixMedian  float64   `json:"theorem_b_prefix_end_median"`
	TheoremBStackedPrefix float64   `json:"theorem_b_stacked_prefix_end"`
	// FinalVelocityAlongResidual is the fraction of examples with
	// ⟨v_i(1), e_i⟩ > 0: their loss rises at the end (THEORY.md §6, Theorem B).
	FinalVelocityAlongResidual float64 `json:"final_velocity_along_residual_fraction"`
	TheoremBConclusion         string  `json:"theorem_b"`
	// Examples compares, per example, the α-range Theorem B proves with
	// the rigorous per-example certificate (THEORY.md §11); nil when not
	// computed.
	Examples *ExampleTheory `json:"examples,omitempty"`

	examples    []PathQuantities // per example, for exampleTheory
	exampleLoss [][]float64      // [m][N] ℓ_i on the grid
}

// MarshalJSON writes a report whose theorems do not apply (a cross-entropy
// run, no examples, the conditions skipped) as {"applies": false,
// "reason": …} alone: its counts, fractions and conclusions were not
// computed, and RUN_FORMAT.md wants a value that was not computed null or
// absent, never 0 or "". A report that applies is written field by field.
func (t TheoremReport) MarshalJSON() ([]byte, error) {
	if !t.Applies {
		return json.Marshal(struct {
			Applies bool   `json:"applies"`
			Reason  string `json:"reason,omitempty"`
		}{false, t.Reason})
	}
	type plain TheoremReport // the fields without this method
	return json.Marshal(plain(t))
}

// Theorems evaluates Theorems A and B for every example and for the stacked
// path. examples[i] are the quantities of γ_i, stacked those of Γ, and
// finalAlong[i] = ⟨v_i(1), e_i⟩.
func Theorems(examples []PathQuantities, stacked PathQuantities, finalAlong []float64) TheoremReport {
	r := TheoremReport{Applies: true}
	n := len(examples)
	if n == 0 {
		return TheoremReport{Reason: "no examples"}
	}
	r.TheoremBAlphas = examples[0].Alphas
	covered := make([]int, len(r.TheoremBAlphas))
	ends := make([]float64, 0, n)
	for _, q := range examples {
		if a, h := TheoremA(q); a {
			r.ExactFitExamples++
			if h {
				r.TheoremAHolds++
			}
		}
		proven, end := TheoremBCoverage(q)
		ends = append(ends, end)
		for j := range proven {
			if !proven[j] {
				break
			}
			covered[j]++
		}
	}
	for _, c := range covered {
		r.TheoremBFraction = append(r.TheoremBFraction, float64(c)/float64(n))
	}
	r.TheoremAFraction = float64(r.TheoremAHolds) / float64(n)
	r.TheoremBPrefixMedian = quantiles(ends).Median
	for _, f := range finalAlong {
		if f > 0 {
			r.FinalVelocityAlongResidual += 1 / float64(n)
		}
	}
	switch a, h := TheoremA(stacked); {
	case !a:
		r.TheoremAStacked = "does not apply: the fit is not exact (‖e‖ > 0), Theorem B's case"
	case h:
		r.TheoremAStacked = "holds: G(Γ) < π/2, the dataset loss is strictly decreasing"
	default:
		r.TheoremAStacked = "fails: G(Γ) ≥ π/2 (the condition is sufficient, not necessary)"
	}
	switch {
	case r.ExactFitExamples == n && r.TheoremAHolds == n:
		r.TheoremAConclusion = "holds for every example: each ℓ_i, hence the loss, is decreasing"
	case r.ExactFitExamples == 0:
		r.TheoremAConclusion = "does not apply: no example is fitted exactly (Theorem B's case)"
	default:
		r.TheoremAConclusion = "holds for some examples only"
	}
	_, r.TheoremBStackedPrefix = TheoremBCoverage(stacked)
	switch {
	case r.TheoremBStackedPrefix >= 0:
		r.TheoremBConclusion = fmt.Sprintf("the dataset loss is proven decreasing at every grid point of [0, %.4g] (theorem_b_stacked_prefix_end)", r.TheoremBStackedPrefix)
	default:
		r.TheoremBConclusion = "the condition fails on the stacked path already at α = 0"
	}
	return r
}

// AffineReport is the `conditions` entry for models affine in θ (one linear
// layer, no nonlinearity): the output path is a straight segment (G = 0)
// and L(α) is convex (a quadratic for mse; log-sum-exp of affine logits for
// cross-entropy), so L is non-increasing on [0,1] if and only if L′(1) ≤ 0
// (THEORY.md §6).
type AffineReport struct {
	Applies   bool    `json:"applies"`
	DLossAt1  float64 `json:"dloss_at_1,omitempty"`
	Monotone  bool    `json:"monotone,omitempty"`
	Statement string  `json:"statement"`
}

// Conditions is the report's `conditions` object: what the verdict and the
// measurements rest on (RUN_FORMAT.md). An absent entry was not
// evaluated. The fields are in the order of their keys, the order the
// report has always written them in.
type Conditions struct {
	// AffineModel is the exact test for models affine in θ.
	AffineModel *AffineReport `json:"affine_model,omitempty"`
	// BilinearModel is what holds for models bilinear in θ (linear
	// autoencoders: quadratic output paths, a quartic L; THEORY.md §6, §11).
	BilinearModel *BilinearReport `json:"bilinear_model,omitempty"`
	// Certificate says why the certificate was not attempted, when it was
	// refused (e.g. a BatchNorm policy its interval rules do not enclose).
	Certificate string `json:"certificate,omitempty"`
	// DeltaBounds says why delta_bounds is null though a certificate ran.
	DeltaBounds string `json:"delta_bounds,omitempty"`
	// DeltaContinuous qualifies delta_continuous (e.g. sampled jumps).
	DeltaContinuous string `json:"delta_continuous,omitempty"`
	// TheoremA and TheoremB are the conclusions of THEORY.md §6's
	// sufficient conditions (Theorems.TheoremAConclusion and
	// TheoremBConclusion, or why they do not apply).
	TheoremA string `json:"theorem_a,omitempty"`
	TheoremB string `json:"theorem_b,omitempty"`
	// Theorems holds the quantities Theorems A and B were decided from.
	Theorems *TheoremReport `json:"theorems,omitempty"`
	// TheoremBExamples concludes the per-example Theorem B ranges against
	// the per-example certificate (Theorems.Examples; THEORY.md §11).
	TheoremBExamples string `json:"theorem_b_examples,omitempty"`
	// WitnessCheck lists the rigorous checks of grid witnesses, in the
	// order they were made.
	WitnessCheck []WitnessCheck `json:"witness_check,omitempty"`
}
