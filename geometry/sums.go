package geometry

import "math"

// The stacked path Γ = (γ_1, …, γ_N) of THEORY.md §1 has velocity V and
// acceleration A made of the examples' v_i and a_i. Its turning rate needs
// only the three sums ‖V‖² = Σ‖v_i‖², ⟨V,A⟩ = Σ⟨v_i,a_i⟩ and ‖A‖² = Σ‖a_i‖²
// (THEORY.md §3), which a caller can accumulate batch by batch.
//
// ‖T′‖ = sqrt(‖A‖²‖V‖² − ⟨V,A⟩²)/‖V‖² suffers cancellation when A is nearly
// parallel to V (a nearly straight stacked path): the two products agree in
// their leading digits. If the sums carry relative error δ, the computed
// ‖T′‖ has absolute error about sqrt(2δ)·‖A‖/‖V‖; with sums accumulated in
// ordinary floating point δ ≈ n·2⁻⁵³ and that floor is ≈ 1e-8·‖A‖/‖V‖ for
// moderate n. StackedSums removes the floor by accumulating the sums in
// double-double arithmetic (δ ≈ 2⁻¹⁰⁶·n), giving an absolute error of a few
// ulps of ‖A‖/‖V‖, like TurningRate on the concatenated vectors.

// dd is an unevaluated sum hi + lo of two float64 (double-double).
type dd struct{ hi, lo float64 }

func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return s, e
}

func twoProd(a, b float64) (p, e float64) {
	p = a * b
	e = math.FMA(a, b, -p)
	return p, e
}

// addProd adds x·y to d with the compensated dot product of Ogita, Rump and
// Oishi (Dot2, SIAM J. Sci. Comput. 26(6), 2005).
func (d *dd) addProd(x, y float64) {
	p, e := twoProd(x, y)
	s, q := twoSum(d.hi, p)
	d.hi = s
	d.lo += q + e
}

func (d dd) norm() dd {
	s, e := twoSum(d.hi, d.lo)
	return dd{s, e}
}

func ddAdd(x, y dd) dd {
	s, e := twoSum(x.hi, y.hi)
	e += x.lo + y.lo
	return dd{s, e}.norm()
}

func ddMul(x, y dd) dd {
	p, e := twoProd(x.hi, y.hi)
	e += x.hi*y.lo + x.lo*y.hi
	return dd{p, e}.norm()
}

func (d dd) scale(k int) dd { return dd{math.Ldexp(d.hi, k), math.Ldexp(d.lo, k)} }

func (d dd) finite() bool { return finite(d.hi) && finite(d.lo) }

// evenExp returns an even k with |x|·2⁻ᵏ in [1/4, 1), or 0 for x = 0.
func evenExp(x float64) int {
	if x == 0 {
		return 0
	}
	_, e := math.Frexp(x)
	return e &^ 1
}

// rateFromDD returns sqrt(aa·vv − va²)/vv evaluated in double-double after an
// exact power-of-two scaling (no overflow or underflow of the products).
func rateFromDD(vv, va, aa dd) (float64, error) {
	vv, va, aa = vv.norm(), va.norm(), aa.norm()
	if !vv.finite() || !va.finite() || !aa.finite() {
		return 0, ErrNonFinite
	}
	if vv.hi < 0 || aa.hi < 0 {
		panic("geometry: negative sum of squares")
	}
	if vv.hi == 0 {
		return 0, ErrZeroSpeed
	}
	if aa.hi == 0 {
		return 0, nil
	}
	k, j := evenExp(vv.hi), evenExp(aa.hi)
	vv, aa, va = vv.scale(-k), aa.scale(-j), va.scale(-(k+j)/2)
	d := ddAdd(ddMul(aa, vv), ddMul(dd{-va.hi, -va.lo}, va))
	det := d.hi + d.lo
	if det <= 0 {
		return 0, nil
	}
	return math.Ldexp(math.Sqrt(det)/(vv.hi+vv.lo), (j-k)/2), nil
}

// TurningRateFromSums returns the turning rate ‖T′‖ = sqrt(aa·vv − va²)/vv of
// a path whose velocity V and acceleration A have ‖V‖² = vv, ⟨V,A⟩ = va and
// ‖A‖² = aa (THEORY.md §3, stacked path Γ). The determinant aa·vv − va² is
// evaluated exactly up to a final rounding (products split with FMA), after an
// exact power-of-two scaling, and clamped at 0; so the result is never NaN and
// its error comes from the rounding already present in the sums: absolute
// error ≈ sqrt(2δ)·sqrt(aa/vv) for sums with relative error δ (see
// StackedSums for sums with δ near 2⁻¹⁰⁶).
//
// It returns ErrZeroSpeed if vv = 0, ErrNonFinite if a sum is NaN or Inf, and
// panics if vv or aa is negative.
func TurningRateFromSums(vv, va, aa float64) (float64, error) {
	return rateFromDD(dd{vv, 0}, dd{va, 0}, dd{aa, 0})
}

// StackedSums accumulates ‖V‖², ⟨V,A⟩ and ‖A‖² over the examples of the
// stacked path Γ at one α (THEORY.md §3), in double-double arithmetic so that
// the turning rate of Γ keeps full relative accuracy even when Γ is nearly
// straight. The zero value is empty and ready to use. A StackedSums is not
// safe for concurrent use; accumulate per goroutine and Merge.
type StackedSums struct {
	vv, va, aa dd
}

// Add adds the velocity v and acceleration a of one example (both [K], or any
// equal lengths) to the sums. It panics if the lengths differ.
func (s *StackedSums) Add(v, a []float64) {
	checkLen(len(v), a)
	for i, vi := range v {
		ai := a[i]
		s.vv.addProd(vi, vi)
		s.va.addProd(vi, ai)
		s.aa.addProd(ai, ai)
	}
}

// Merge adds the sums accumulated in t to s.
func (s *StackedSums) Merge(t *StackedSums) {
	s.vv = ddAdd(s.vv, t.vv)
	s.va = ddAdd(s.va, t.va)
	s.aa = ddAdd(s.aa, t.aa)
}

// Reset empties s.
func (s *StackedSums) Reset() { *s = StackedSums{} }

// Sums returns ‖V‖², ⟨V,A⟩ and ‖A‖² rounded to float64.
func (s *StackedSums) Sums() (vv, va, aa float64) {
	return s.vv.hi + s.vv.lo, s.va.hi + s.va.lo, s.aa.hi + s.aa.lo
}

// Speed returns ‖V‖, the speed of the stacked path.
func (s *StackedSums) Speed() float64 { return math.Sqrt(s.vv.hi + s.vv.lo) }

// TurningRate returns ‖T′‖ of the stacked path from the accumulated sums,
// accurate to a few ulps of ‖A‖/‖V‖. Errors as for TurningRateFromSums
// (ErrNonFinite also if a product overflowed during Add).
func (s *StackedSums) TurningRate() (float64, error) {
	return rateFromDD(s.vv, s.va, s.aa)
}

// Curvature returns κ = ‖T′‖/‖V‖ of the stacked path. Errors as for
// TurningRate.
func (s *StackedSums) Curvature() (float64, error) {
	r, err := s.TurningRate()
	if err != nil {
		return 0, err
	}
	return r / s.Speed(), nil
}
