// Package interval is closed interval arithmetic on float64 with outward
// rounding, for the rigorous certificate of THEORY.md §7.
//
// An interval [Lo, Hi] encloses a set of reals. Every operation returns an
// interval that contains the exact image of its arguments' intervals: Go has
// no rounding modes, so each float64 result computed with round-to-nearest
// (error at most half an ulp) is widened by one ulp (two near the underflow
// threshold) with Rump, Zimmermann, Boldo and Melquiond's successor bound
// (Down, Up). Elementary functions (Exp, Log1p, Tanh, Erf, …) are taken from
// Go's math package, whose documented or measured error is below 1 ulp for
// these functions; their results are widened by a relative 2⁻⁵⁰ (8 ulps) plus
// an absolute 2⁻¹⁰⁶⁰ (covering subnormal results). That widening is the one
// assumption of the package not proved here.
//
// Matrix products use the midpoint–radius form (S. M. Rump, Fast and parallel
// interval arithmetic, BIT 39, 1999): for X ⊆ Xm ± Xr and W ⊆ Wm ± Wr,
//
//	X·Wᵀ ⊆ Xm·Wmᵀ ± (|Xm|·(Wr + γ|Wm|)ᵀ + Xr·(|Wm| + Wr)ᵀ),
//
// where the product Xm·Wmᵀ is computed in float64 by any BLAS (any summation
// order, with or without fused multiply–add) and γ = γ_{k+2} = (k+2)u/(1−(k+2)u),
// u = 2⁻⁵³, bounds its rounding error (N. J. Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., §3.1, eq. 3.5); the radius, a sum of
// non-negative products, is computed the same way and scaled up by
// 1 + 2γ_{2k+2}, with an absolute term for underflow.
package interval
