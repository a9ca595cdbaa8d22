package certify

import (
	"fmt"
	"math"

	"github.com/certify-mli/certify/functionspace"
	"github.com/certify-mli/certify/interval"
)

// WitnessCheck records the interval-arithmetic check of a rise found in
// float64 (the grid's or the continuous Δ's): L(α) and L(β) enclosed as in
// the certificate (THEORY.md §7), and the rigorous rise
// lower(L(β)) − upper(L(α)), rounded down. Proven is set when that rise
// exceeds the tolerance: only then is the pair a witness (RUN_FORMAT.md).
type WitnessCheck struct {
	Alpha     float64    `json:"alpha"`
	Beta      float64    `json:"beta"`
	LossAlpha [2]float64 `json:"loss_alpha"`
	LossBeta  [2]float64 `json:"loss_beta"`
	// RigorousRise is null when the enclosures could not be computed.
	RigorousRise *float64 `json:"rigorous_rise"`
	Proven       bool     `json:"proven"`
	Note         string   `json:"note"`
}

// proveRise encloses L(alpha) and L(beta) in interval arithmetic with the
// certificate's interval path and returns the check of the rise from alpha to
// beta against tol. An interval path that cannot be built (a layer without an
// interval rule) gives an unproven check whose note says why.
func proveRise(p *functionspace.Path, alpha, beta, tol float64) WitnessCheck {
	e, err := NewIntervalPath(p)
	if err != nil {
		return WitnessCheck{Alpha: alpha, Beta: beta, Note: "the rise could not be checked in interval arithmetic: " + err.Error()}
	}
	return proveRiseWith(e, alpha, beta, tol)
}

// proveRiseWith is proveRise with an interval path already built.
func proveRiseWith(e *IntervalPath, alpha, beta, tol float64) WitnessCheck {
	c := WitnessCheck{Alpha: alpha, Beta: beta}
	la, lb := e.point(alpha, false), e.point(beta, false)
	c.LossAlpha, c.LossBeta = [2]float64{la.Lo, la.Hi}, [2]float64{lb.Lo, lb.Hi}
	r := interval.Down(lb.Lo - la.Hi)
	if math.IsNaN(r) || !la.Valid() || !lb.Valid() {
		c.Note = "the interval enclosures of L at the two ends are not finite"
		c.LossAlpha, c.LossBeta = [2]float64{}, [2]float64{}
		return c
	}
	c.RigorousRise = &r
	c.Proven = r > tol
	if c.Proven {
		c.Note = fmt.Sprintf("proven: L(%v) − L(%v) ≥ %.6g > tolerance %v in interval arithmetic", beta, alpha, r, tol)
	} else {
		c.Note = fmt.Sprintf("not a witness: in interval arithmetic L(%v) − L(%v) is only known to be ≥ %.6g, not above the tolerance %v; the float64 rise may be rounding", beta, alpha, r, tol)
	}
	if math.IsInf(c.LossAlpha[0], 0) || math.IsInf(c.LossAlpha[1], 0) || math.IsInf(c.LossBeta[0], 0) || math.IsInf(c.LossBeta[1], 0) {
		// keep the report valid JSON: an unbounded enclosure is not written
		c.LossAlpha, c.LossBeta = [2]float64{}, [2]float64{}
		c.Note += " (an enclosure of L is unbounded and is not recorded)"
	}
	return c
}

// proveWitness checks the float64 witness w in interval arithmetic
// (proveRise). When it is proven, w's RoundingError becomes the distance
// from its float64 rise down to the rigorous rise, so that Rise −
// RoundingError is the proven rise; the check is returned either way.
func proveWitness(p *functionspace.Path, w *Witness, tol float64) WitnessCheck {
	return settleWitness(w, proveRise(p, w.Alpha, w.Beta, tol))
}

// proveWitnessWith is proveWitness with an interval path already built.
func proveWitnessWith(e *IntervalPath, w *Witness, tol float64) WitnessCheck {
	return settleWitness(w, proveRiseWith(e, w.Alpha, w.Beta, tol))
}

func settleWitness(w *Witness, c WitnessCheck) WitnessCheck {
	if c.Proven {
		w.RoundingError = max(w.RoundingError, max(w.Rise-*c.RigorousRise, 0))
	}
	return c
}
