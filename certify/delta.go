package certify

import (
	"fmt"
	"math"
)

// This file holds the measures of non-monotonicity of a loss along the line
// θα = θ0 + α(θT − θ0) (THEORY.md §5) and the run sum used for the certificate's
// upper bound on Δ (THEORY.md §7).

// Delta returns the non-monotonicity of a loss sequence sampled on an increasing
// grid α_0 < … < α_m (THEORY.md §5):
//
//	Δ = max_{i<j} (L[j] − L[i])⁺,
//
// the smallest Δ ≥ 0 with L[j] ≤ L[i] + Δ for all i < j. The sequence is monotone
// (non-increasing) on the grid iff Δ = 0. It is computed in one O(m) pass as
// max_j (L[j] − min_{i<j} L[i])⁺. Sequences shorter than 2 give 0. If loss contains a
// NaN the result is NaN (a NaN loss is never reported as monotone).
func Delta(loss []float64) float64 {
	d, _, _ := deltaIndex(loss)
	return d
}

// deltaIndex returns Δ of loss and a pair i < j with L[j] − L[i] = Δ (i = j = 0 when
// Δ = 0; i = j = −1 when Δ is NaN). Among maximising pairs it returns the one with
// the smallest j, and for that j the earliest minimum i.
func deltaIndex(loss []float64) (delta float64, from, to int) {
	for _, l := range loss {
		if math.IsNaN(l) {
			return math.NaN(), -1, -1
		}
	}
	if len(loss) < 2 {
		return 0, 0, 0
	}
	minIdx := 0
	for j := 1; j < len(loss); j++ {
		if r := loss[j] - loss[minIdx]; r > delta {
			delta, from, to = r, minIdx, j
		}
		if loss[j] < loss[minIdx] {
			minIdx = j
		}
	}
	return delta, from, to
}

// Bump is one rise of a sampled loss (THEORY.md §5). A bump starts at the last grid
// point before a strict rise, L[StartIndex+1] > L[StartIndex], and ends at the first
// later point strictly below its start, L[EndIndex] < L[StartIndex], or at the last
// grid point if the loss never returns below its start. Every point strictly inside
// the bump has L ≥ L[StartIndex], so the largest rise inside it is
//
//	Height = max_{StartIndex < k ≤ EndIndex} L[k] − L[StartIndex] > 0,
//
// and Δ (Delta) is the largest Height over all bumps.
type Bump struct {
	Start      float64 `json:"start"`       // α at StartIndex
	End        float64 `json:"end"`         // α at EndIndex
	StartIndex int     `json:"start_index"` // grid index, StartIndex < EndIndex
	EndIndex   int     `json:"end_index"`   // grid index
	Height     float64 `json:"height"`      // largest rise inside the bump, in loss units
}

// Bumps returns the bumps of the loss sequence loss sampled at alphas (same length,
// strictly increasing), in order of α; consecutive bumps do not overlap (a bump may
// start where the previous one ended). Between bumps the loss is non-increasing.
// A rise over the very last grid step is a bump ending at the last point (the
// paper's released evaluation code missed it). Bumps returns nil for a monotone
// sequence. It panics if the lengths differ, alphas is not strictly increasing, or
// loss contains a NaN (Delta reports NaN for such a sequence).
func Bumps(alphas, loss []float64) []Bump {
	if len(alphas) != len(loss) {
		panic(fmt.Sprintf("certify: Bumps: %d alphas but %d losses", len(alphas), len(loss)))
	}
	for i, l := range loss {
		if math.IsNaN(l) {
			panic(fmt.Sprintf("certify: Bumps: loss[%d] is NaN", i))
		}
		if i > 0 && !(alphas[i] > alphas[i-1]) {
			panic(fmt.Sprintf("certify: Bumps: alphas not strictly increasing at index %d (%v after %v)", i, alphas[i], alphas[i-1]))
		}
	}
	var bumps []Bump
	m := len(loss)
	for s := 0; s+1 < m; {
		if !(loss[s+1] > loss[s]) {
			s++
			continue
		}
		// s is the last point before a strict rise: find where the loss first
		// drops strictly below loss[s].
		e, top := s+1, loss[s+1]
		for e < m-1 && !(loss[e] < loss[s]) {
			e++
			if loss[e] > top {
				top = loss[e]
			}
		}
		bumps = append(bumps, Bump{
			Start: alphas[s], End: alphas[e],
			StartIndex: s, EndIndex: e,
			Height: top - loss[s],
		})
		s = e
	}
	return bumps
}

// DeltaContinuous returns the non-monotonicity of a loss over the whole interval
// [lo, hi] rather than on a grid (THEORY.md §5):
//
//	Δ = max_{lo ≤ α < β ≤ hi} (L(β) − L(α))⁺,
//
// and a pair from < to attaining it (from = to = lo when Δ = 0; all NaN if f returns
// a NaN loss). f returns the loss L(α) and its exact derivative L′(α) (for example
// from the second-order forward pass of THEORY.md §2).
//
// L′ is evaluated on n ≥ 2 equally spaced points including lo and hi; in every cell
// where L′ changes sign the critical point is refined by Brent's method to full
// precision. The maximal rise over [lo, hi] is attained between local extrema or
// endpoints, so Δ is Delta over the sequence of loss values at the grid points and
// the refined critical points, in order of α. An extremum pair hidden inside one
// cell (L′ of the same sign at both ends) is not seen: this is a sampled measure
// with exact refinement, not the rigorous bound of THEORY.md §7. It panics if n < 2
// or lo ≥ hi.
func DeltaContinuous(f func(alpha float64) (l, dl float64), lo, hi float64, n int) (delta float64, from, to float64) {
	if n < 2 {
		panic(fmt.Sprintf("certify: DeltaContinuous: need n ≥ 2 grid points, got %d", n))
	}
	if !(lo < hi) {
		panic(fmt.Sprintf("certify: DeltaContinuous: need lo < hi, got [%v, %v]", lo, hi))
	}
	alphas := make([]float64, n)
	losses := make([]float64, n)
	dlosses := make([]float64, n)
	for k := range n {
		a := lo + (hi-lo)*float64(k)/float64(n-1)
		if k == n-1 {
			a = hi
		}
		alphas[k] = a
		losses[k], dlosses[k] = f(a)
	}
	return DeltaRefined(alphas, losses, dlosses, f)
}

// DeltaRefined is DeltaContinuous on values already computed on an increasing
// grid: loss[k] = L(alphas[k]) and dloss[k] = L′(alphas[k]). f is called only
// to refine the critical points in the cells where L′ changes sign. It panics
// if the slices differ in length or hold fewer than 2 points.
func DeltaRefined(alphas, loss, dloss []float64, f func(alpha float64) (l, dl float64)) (delta float64, from, to float64) {
	if len(alphas) < 2 || len(loss) != len(alphas) || len(dloss) != len(alphas) {
		panic(fmt.Sprintf("certify: DeltaRefined: need ≥ 2 points and equal lengths, got %d, %d, %d", len(alphas), len(loss), len(dloss)))
	}
	as := make([]float64, 0, len(alphas)+len(alphas)/2)
	ls := make([]float64, 0, len(alphas)+len(alphas)/2)
	for k, a := range alphas {
		if k > 0 {
			pa, pd, d := alphas[k-1], dloss[k-1], dloss[k]
			if (pd > 0 && d < 0) || (pd < 0 && d > 0) {
				r := brentRoot(func(x float64) float64 { _, dx := f(x); return dx }, pa, a, pd, d)
				if r > pa && r < a {
					lr, _ := f(r)
					as = append(as, r)
					ls = append(ls, lr)
				}
			}
		}
		as = append(as, a)
		ls = append(ls, loss[k])
	}
	d, i, j := deltaIndex(ls)
	if math.IsNaN(d) {
		return d, math.NaN(), math.NaN()
	}
	return d, as[i], as[j]
}

// brentRoot returns a zero of g in [a, b], given g(a) = fa and g(b) = fb of opposite
// signs, by Brent's method (R. P. Brent, Algorithms for Minimization without
// Derivatives, 1973, ch. 4, procedure zero; netlib zeroin) with tolerance 0, that
// is, to within a few ulps of the root.
func brentRoot(g func(float64) float64, a, b, fa, fb float64) float64 {
	const eps = 0x1p-52
	c, fc := a, fa
	d := b - a
	e := d
	for iter := 0; iter < 500; iter++ {
		if (fb > 0) == (fc > 0) {
			c, fc = a, fa
			d = b - a
			e = d
		}
		if math.Abs(fc) < math.Abs(fb) {
			a, b, c = b, c, b
			fa, fb, fc = fb, fc, fb
		}
		tol := 2 * eps * math.Abs(b)
		xm := 0.5 * (c - b)
		if math.Abs(xm) <= tol || fb == 0 {
			return b
		}
		if math.Abs(e) >= tol && math.Abs(fa) > math.Abs(fb) {
			// Inverse quadratic interpolation, or secant when only two points.
			s := fb / fa
			var p, q float64
			if a == c {
				p = 2 * xm * s
				q = 1 - s
			} else {
				q = fa / fc
				r := fb / fc
				p = s * (2*xm*q*(q-r) - (b-a)*(r-1))
				q = (q - 1) * (r - 1) * (s - 1)
			}
			if p > 0 {
				q = -q
			} else {
				p = -p
			}
			if 2*p < min(3*xm*q-math.Abs(tol*q), math.Abs(e*q)) {
				e = d
				d = p / q
			} else {
				d = xm
				e = d
			}
		} else {
			d = xm // bisection
			e = d
		}
		a, fa = b, fb
		if math.Abs(d) > tol {
			b += d
		} else {
			b += math.Copysign(tol, xm)
		}
		fb = g(b)
		if math.IsNaN(fb) {
			return math.NaN()
		}
	}
	return b
}

// MaxRunSum returns the largest sum of a run of consecutive entries of c,
//
//	sum = max_{first ≤ last} Σ_{k=first}^{last} c[k], or 0 for the empty run,
//
// with the run attaining it (first = 0, last = −1 for the empty run; otherwise the
// maximising run ending earliest, and of those the shortest). One pass
// (Kadane's maximum-subarray algorithm). A NaN in c gives (NaN, 0, −1).
//
// Use (THEORY.md §7): the certificate's branch and bound covers [0, 1] by leaf
// intervals [a_k, b_k] in order, with c_k = (b_k − a_k)·sup L′[a_k, b_k] (negative
// where the loss surely falls). Since L(β) − L(α) = ∫_α^β L′, a rise from α in leaf f
// to β in leaf l is at most c_f⁺ + Σ_{f<k<l} c_k + c_l⁺, and the maximum of this over
// all runs is exactly MaxRunSum(c) (an end with c < 0 is better dropped from the
// run). So Δ ≤ MaxRunSum(c), and the bound tightens to Δ as the leaves shrink.
//
// Summing only the positive parts, Σ_k c_k⁺, is also an upper bound but the wrong
// one: it converges to ∫(L′)⁺, the total rise, not to Δ. Once the loss rises twice
// (up by r1, down by d > r2, up by r2) Δ = max(r1, r2) while Σ c_k⁺ → r1 + r2, so the
// certified interval for Δ would never close.
func MaxRunSum(c []float64) (sum float64, first, last int) {
	first, last = 0, -1
	cur, curStart := 0.0, 0
	for k, x := range c {
		if math.IsNaN(x) {
			return math.NaN(), 0, -1
		}
		if cur <= 0 {
			cur, curStart = x, k
		} else {
			cur += x
		}
		if cur > sum {
			sum, first, last = cur, curStart, k
		}
	}
	return sum, first, last
}
