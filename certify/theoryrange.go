package certify

import (
	"fmt"
	"math"
)

// TheoremBRange decides Theorem B (THEORY.md §6) on whole α-intervals of one
// path, not only at grid points. On [α_j, α_{j+1}] every α has
// G[α,1] ≤ G[α_j,1], S(α) ≥ S(α_{j+1}), and the unit tangent T(α) lies
// within angle G[α_j,α_{j+1}] of T(α_j), so ⟨T(α), e⟩ ≤ ⟨T(α_j), e⟩ +
// ‖e‖·G[α_j,α_{j+1}] (a chord of the unit sphere is shorter than its arc;
// tangent jumps at ReLU kinks are part of G, THEORY.md §3). Hence, wherever
//
//	G[α_j,1] < π/2  and  ⟨T(α_j), e⟩ + ‖e‖·G[α_j,α_{j+1}] < cos(G[α_j,1])·S(α_{j+1}),
//
// Theorem B's bound ℓ′(α) ≤ 2‖v(α)‖(⟨T(α),e⟩ − cos(G[α,1])S(α)) is negative
// at every α of [α_j, α_{j+1}] with v(α) ≠ 0, and ℓ is strictly decreasing
// there. proven[j] says so for interval j (len(Alphas) − 1 intervals).
// prefixEnd is the end of the longest run of proven intervals from α = 0
// (0 when the first is not proven; 1 when ℓ is proven decreasing on all of
// [0, 1]). The inputs are numerical (G and S carry their quadrature error),
// so this is the theory's claim given those numbers, not a rigorous proof
// (the certificate, ExampleCertificate, is).
func TheoremBRange(q PathQuantities) (proven []bool, prefixEnd float64) {
	m := len(q.Alphas)
	if m < 2 {
		return nil, 0
	}
	proven = make([]bool, m-1)
	prefix := true
	for j := 0; j+1 < m; j++ {
		g := q.RemainingGauss[j]
		seg := max(q.RemainingGauss[j]-q.RemainingGauss[j+1], 0)
		tr := q.TangentResidual[j]
		proven[j] = g < math.Pi/2 && !math.IsNaN(tr) &&
			tr+q.ResidualNorm*seg < math.Cos(g)*q.RemainingArc[j+1]
		if prefix && proven[j] {
			prefixEnd = q.Alphas[j+1]
		} else {
			prefix = false
		}
	}
	return proven, prefixEnd
}

// ExampleTheory is the per-example comparison of what Theorem B proves with
// what the rigorous certificate proves (THEORY.md §6, §7, §11): the report's
// conditions.theorems.examples.
type ExampleTheory struct {
	// TheoremBRangeEnd [N] is, per example, the end α*_i of the range
	// [0, α*_i] on which Theorem B proves ℓ_i strictly decreasing
	// (TheoremBRange on the report grid's intervals; 0: not even the first
	// interval).
	TheoremBRangeEnd []float64 `json:"theorem_b_range_end"`
	// TheoremBExamplesFraction is the fraction of examples with α*_i = 1:
	// ℓ_i proven decreasing on all of [0, 1] by the theory alone.
	// TheoremBLossFraction is their share of the dataset loss at α = 0,
	// Σ_{proven} ℓ_i(0) / Σ_i ℓ_i(0).
	TheoremBExamplesFraction float64 `json:"theorem_b_examples_fraction"`
	TheoremBLossFraction     float64 `json:"theorem_b_loss_fraction"`
	// TheoremBMeasureMean is the mean over examples of the total length of
	// the α-intervals on which Theorem B proves ℓ_i′ < 0 (anywhere in
	// [0, 1], not only from 0).
	TheoremBMeasureMean float64 `json:"theorem_b_proven_measure_mean"`
	// GaussBelowHalfPiFraction is the fraction of examples with G(γ_i) <
	// π/2, the condition Theorem B needs at α = 0 to say anything on all of
	// [0, 1].
	GaussBelowHalfPiFraction float64 `json:"gauss_below_half_pi_fraction"`
	// Certificate: the same, proven rigorously (ExampleCertificate); null
	// when the certificate was not run.
	CertificateRangeEnd         []float64 `json:"certificate_range_end"`
	CertificateExamplesFraction *float64  `json:"certificate_examples_fraction"`
	CertificateLossFraction     *float64  `json:"certificate_loss_fraction"`
	CertificateIntervals        int       `json:"certificate_intervals,omitempty"`
	CertificateMeasureMean      *float64  `json:"certificate_proven_measure_mean"`
	// Agreement counts examples proven decreasing on [0, 1] by both, by
	// Theorem B only, by the certificate only, or by neither; and, among the
	// certificate-only examples, those whose G(γ_i) ≥ π/2 (Theorem B cannot
	// apply at α = 0) and those with G(γ_i) < π/2 where the tangent–residual
	// condition fails. Nil without the certificate.
	Agreement *TheoryAgreement `json:"agreement"`
	// Contradictions counts (example, interval) pairs where Theorem B proves
	// ℓ_i′ < 0 on the interval but the certificate's enclosure of ℓ_i′ on an
	// overlapping interval is > 0: a bug or a numerical failure of the
	// theory's inputs. Nil without the certificate.
	Contradictions *int `json:"contradictions"`
	// Per-example Δ_i of ℓ_i on the report grid against Gauss length:
	// the fraction of examples whose ℓ_i rises somewhere on the grid, and
	// the mean G(γ_i) of the examples that rise and of those that do not
	// (null when a group is empty).
	ExamplesNonMonotoneFraction float64  `json:"examples_non_monotone_fraction"`
	GaussLengthMeanNonMonotone  *float64 `json:"gauss_length_mean_non_monotone"`
	GaussLengthMeanMonotone     *float64 `json:"gauss_length_mean_monotone"`
	// ExampleDelta [N] is Δ_i of ℓ_i = ‖γ_i − y_i‖² on the report grid.
	ExampleDelta []float64 `json:"example_delta"`
}

// TheoryAgreement is ExampleTheory.Agreement.
type TheoryAgreement struct {
	Both            int `json:"both"`
	TheoremBOnly    int `json:"theorem_b_only"`
	CertificateOnly int `json:"certificate_only"`
	Neither         int `json:"neither"`
	// CertificateOnlyGaussTooLong counts certificate-only examples with
	// G(γ_i) ≥ π/2; CertificateOnlyResidual those with G(γ_i) < π/2 where
	// ⟨T, e⟩ + ‖e‖G_seg < cos(G[α,1])S fails on some interval.
	CertificateOnlyGaussTooLong int `json:"certificate_only_gauss_too_long"`
	CertificateOnlyResidual     int `json:"certificate_only_residual"`
}

// exampleTheory evaluates TheoremBRange for every example and summarises it
// with the per-example losses on the grid, loss [m][N] (ℓ_i at the grid's
// α), and, when cert is not nil, compares it with the per-example
// certificate.
func exampleTheory(examples []PathQuantities, gauss []float64, loss [][]float64, cert *ExampleCertificateResult) *ExampleTheory {
	n := len(examples)
	t := &ExampleTheory{TheoremBRangeEnd: make([]float64, n), ExampleDelta: make([]float64, n)}
	provenB := make([][]bool, n)
	var l0, lB float64
	for i, q := range examples {
		provenB[i], t.TheoremBRangeEnd[i] = TheoremBRange(q)
		for j, ok := range provenB[i] {
			if ok {
				t.TheoremBMeasureMean += (q.Alphas[j+1] - q.Alphas[j]) / float64(n)
			}
		}
		l0 += loss[0][i]
		if t.TheoremBRangeEnd[i] == 1 {
			t.TheoremBExamplesFraction++
			lB += loss[0][i]
		}
		if gauss[i] < math.Pi/2 {
			t.GaussBelowHalfPiFraction++
		}
		col := make([]float64, len(loss))
		for j := range loss {
			col[j] = loss[j][i]
		}
		t.ExampleDelta[i] = Delta(col)
	}
	t.TheoremBExamplesFraction /= float64(n)
	t.GaussBelowHalfPiFraction /= float64(n)
	if l0 > 0 {
		t.TheoremBLossFraction = lB / l0
	}
	var gNon, gMon float64
	var nNon, nMon int
	for i, d := range t.ExampleDelta {
		if d > 0 {
			gNon += gauss[i]
			nNon++
		} else {
			gMon += gauss[i]
			nMon++
		}
	}
	t.ExamplesNonMonotoneFraction = float64(nNon) / float64(n)
	if nNon > 0 {
		v := gNon / float64(nNon)
		t.GaussLengthMeanNonMonotone = &v
	}
	if nMon > 0 {
		v := gMon / float64(nMon)
		t.GaussLengthMeanMonotone = &v
	}
	if cert == nil {
		return t
	}
	t.CertificateRangeEnd = cert.RangeEnd
	t.CertificateIntervals = len(cert.Edges) - 1
	var fc, lc, mc float64
	ag := &TheoryAgreement{}
	contra := 0
	alphas := examples[0].Alphas
	for i := range examples {
		b, c := t.TheoremBRangeEnd[i] == 1, cert.RangeEnd[i] == 1
		if c {
			fc++
			lc += loss[0][i]
		}
		for k, hi := range cert.DLossHi[i] {
			if hi < 0 {
				mc += (cert.Edges[k+1] - cert.Edges[k]) / float64(n)
			}
		}
		switch {
		case b && c:
			ag.Both++
		case b:
			ag.TheoremBOnly++
		case c:
			ag.CertificateOnly++
			if gauss[i] >= math.Pi/2 {
				ag.CertificateOnlyGaussTooLong++
			} else {
				ag.CertificateOnlyResidual++
			}
		default:
			ag.Neither++
		}
		for j, ok := range provenB[i] {
			if !ok {
				continue
			}
			a, bb := alphas[j], alphas[j+1]
			for k := 0; k+1 < len(cert.Edges); k++ {
				if cert.Edges[k+1] <= a || cert.Edges[k] >= bb {
					continue
				}
				if cert.DLossLo[i][k] > 0 {
					contra++
				}
			}
		}
	}
	fc /= float64(n)
	t.CertificateExamplesFraction = &fc
	t.CertificateMeasureMean = &mc
	if l0 > 0 {
		lc /= l0
		t.CertificateLossFraction = &lc
	}
	t.Agreement, t.Contradictions = ag, &contra
	return t
}

// theoremBExamplesConclusion is conditions.theorem_b_examples: one sentence
// on what Theorem B and the certificate prove per example.
func theoremBExamplesConclusion(t *ExampleTheory) string {
	s := fmt.Sprintf("Theorem B proves ℓ_i decreasing on all of [0, 1] for %.1f%% of the examples (%.1f%% of the loss at α = 0); %.1f%% have G(γ_i) < π/2",
		100*t.TheoremBExamplesFraction, 100*t.TheoremBLossFraction, 100*t.GaussBelowHalfPiFraction)
	if t.CertificateExamplesFraction != nil && t.CertificateLossFraction != nil {
		s += fmt.Sprintf("; the certificate proves %.1f%% (%.1f%% of the loss)", 100**t.CertificateExamplesFraction, 100**t.CertificateLossFraction)
	}
	return s
}
