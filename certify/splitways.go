package certify

import (
	"math"

	"github.com/certify-mli/certify/interval"
)

// riseRatio is the factor by which a leaf's rise bound is assumed to fall
// per bisection when splitWays skips levels: on the resnet-8 of
// docs/resnet/certificate.md (Round 6) the measured factor between widths
// 2⁻⁵ and 2⁻⁹ is 16–27 (the enclosures' wrapping grows with the width
// faster than the width itself), so assuming 16 never splits such a leaf
// past the level where its rise first falls below the tolerance. Where
// the true factor is smaller (4 for a smooth leaf, rise ∝ w²) the
// prediction falls short and ordinary bisection continues from there.
const riseRatio = 16

// maxSkip is the most levels one split may go down (16 parts).
const maxSkip = 4

// splitWays sets Leaf.Ways for the leaves split chose (indices into
// leaves, end their rise bounds, Monotonicity.Bound): a leaf whose rise
// bound is more than riseRatio times the tolerance alone keeps the
// certificate from deciding, and so does every part of it until its rise
// falls below the tolerance; its intermediate levels are evaluated only to
// be split again. It is split d = ⌊log_riseRatio(end/tolerance)⌋ levels at
// once (2^d parts, 1 ≤ d ≤ maxSkip), as far as the budget (leaves that may
// still be added; a bisection adds one) and minWidth allow. Only the search
// order changes: the parts cover the leaf, and every bound is computed on
// them as on bisected leaves (issue 13, resnet8-leaf).
func splitWays(leaves []*Leaf, split []int, end []float64, tol, minWidth float64, budget int) {
	spare := budget - len(split)
	for _, k := range split {
		l := leaves[k]
		l.Ways = 0
		if tol <= 0 || !(end[k] > riseRatio*tol) || math.IsInf(end[k], 1) || l.Jump {
			continue
		}
		d := min(int(math.Floor(math.Log(end[k]/tol)/math.Log(riseRatio))), maxSkip)
		for ; d > 1; d-- {
			n := 1 << d
			if n-2 <= spare && (l.B-l.A)/float64(n) > 2*minWidth {
				break
			}
		}
		if d > 1 {
			l.Ways = 1 << d
			spare -= l.Ways - 2
		}
	}
}

// splitLeaf returns the parts of l (Leaf.Ways of them, 2 when unset), in
// order, with the ends repeated bisection would give (0.5·a + 0.5·b at
// every level, so the same α as bisecting d times), L at the parent's ends
// and midpoint where they are ends of a part (unknown elsewhere:
// wholeLine, until an objective evaluates them), and the parent's kept
// rows (their enclosures over l hold over every part).
func splitLeaf(l *Leaf) []*Leaf {
	n := max(l.Ways, 2)
	xs := []float64{l.A, l.B}
	for len(xs)-1 < n {
		nx := make([]float64, 0, 2*len(xs)-1)
		for i := 0; i+1 < len(xs); i++ {
			nx = append(nx, xs[i], 0.5*xs[i]+0.5*xs[i+1])
		}
		xs = append(nx, xs[len(xs)-1])
	}
	mid := 0.5*l.A + 0.5*l.B
	at := func(x float64) interval.I {
		switch x {
		case l.A:
			return l.LA
		case l.B:
			return l.LB
		case mid:
			return l.LC
		}
		return wholeLine
	}
	kids := make([]*Leaf, n)
	for i := range kids {
		kids[i] = &Leaf{A: xs[i], B: xs[i+1], LA: at(xs[i]), LB: at(xs[i+1]), parent: l.kept}
	}
	return kids
}
