package geometry

import (
	"math"
)

// Pointwise geometry of a path γ from its velocity v = γ′(α) and acceleration
// a = γ″(α), THEORY.md §3. All functions take [n] slices, panic if lengths
// differ, and never return NaN: a zero velocity gives ErrZeroSpeed and a
// non-finite input gives ErrNonFinite.

// sumSquares accumulates a Euclidean norm without overflow or harmful
// underflow (the scaled sum of squares of LAPACK's dlassq).
type sumSquares struct {
	scale, ssq float64
}

func (s *sumSquares) add(x float64) {
	if x == 0 {
		return
	}
	ax := math.Abs(x)
	if s.scale < ax {
		r := s.scale / ax
		s.ssq = 1 + s.ssq*r*r
		s.scale = ax
		return
	}
	r := ax / s.scale
	s.ssq += r * r
}

func (s *sumSquares) norm() float64 {
	if s.scale == 0 {
		return 0
	}
	return s.scale * math.Sqrt(s.ssq)
}

func norm(x []float64) float64 {
	var s sumSquares
	for _, xi := range x {
		s.add(xi)
	}
	return s.norm()
}

func checkLen(n int, xs ...[]float64) {
	for _, x := range xs {
		if len(x) != n {
			panic("geometry: slice length mismatch")
		}
	}
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

func allFinite(x []float64) bool {
	for _, xi := range x {
		if !finite(xi) {
			return false
		}
	}
	return true
}

// frame holds the decomposition of the acceleration a against the velocity v:
// speed s = ‖v‖, tangential component c = ⟨a, T⟩ and normal part
// a⊥ = a − c T with T = v/s.
type frame struct {
	s float64 // ‖v‖
	c float64 // ⟨a, T⟩
}

// newFrame computes ‖v‖ and ⟨a, T⟩, the latter with one step of
// re-orthogonalisation ("twice is enough"), so that a − cT is orthogonal to T
// to working accuracy and ‖a − cT‖ has no cancellation beyond that inherent in
// the data (absolute error a few ulps of ‖a‖, never negative).
func newFrame(v, a []float64) (frame, error) {
	s := norm(v)
	if !finite(s) || !allFinite(a) {
		return frame{}, ErrNonFinite
	}
	if s == 0 {
		return frame{}, ErrZeroSpeed
	}
	var c float64
	for i, vi := range v {
		c += a[i] * (vi / s)
	}
	var c2 float64
	for i, vi := range v {
		u := vi / s
		c2 += (a[i] - c*u) * u
	}
	c += c2
	if !finite(c) {
		return frame{}, ErrNonFinite
	}
	return frame{s: s, c: c}, nil
}

// normalNorm returns ‖a − cT‖ = ‖a⊥‖.
func (f frame) normalNorm(v, a []float64) float64 {
	var ss sumSquares
	for i, vi := range v {
		ss.add(a[i] - f.c*(vi/f.s))
	}
	return ss.norm()
}

// Speed returns ‖v‖, the speed of the path at a point whose velocity is v
// (THEORY.md §3). It is computed with scaling, so it neither overflows nor
// underflows for representable results.
func Speed(v []float64) float64 { return norm(v) }

// UnitTangent writes the unit tangent T = v/‖v‖ (the Gauss map, THEORY.md §3)
// into dst. dst and v are [n] and may be the same slice. It returns
// ErrZeroSpeed if v = 0 and ErrNonFinite if v has a NaN or Inf, leaving dst
// unchanged.
func UnitTangent(dst, v []float64) error {
	checkLen(len(v), dst)
	s := norm(v)
	if !finite(s) {
		return ErrNonFinite
	}
	if s == 0 {
		return ErrZeroSpeed
	}
	for i, vi := range v {
		dst[i] = vi / s
	}
	return nil
}

// TangentDerivative writes T′ = dT/dα = (a − ⟨a,T⟩T)/‖v‖ (THEORY.md §3) into
// dst, for velocity v and acceleration a; all three are [n]. dst may not
// alias v or a. It returns ErrZeroSpeed if v = 0 and ErrNonFinite for NaN or
// Inf input, leaving dst unchanged.
func TangentDerivative(dst, v, a []float64) error {
	checkLen(len(v), dst, a)
	f, err := newFrame(v, a)
	if err != nil {
		return err
	}
	for i, vi := range v {
		dst[i] = (a[i] - f.c*(vi/f.s)) / f.s
	}
	return nil
}

// TurningRate returns ‖T′‖ = sqrt(‖a‖²‖v‖² − ⟨a,v⟩²)/‖v‖² = ‖a⊥‖/‖v‖, the
// rate (radians per unit α) at which the unit tangent turns, the integrand of
// the Gauss length (THEORY.md §3). v and a are [n].
//
// It is computed as the norm of the component a⊥ of a orthogonal to v, not
// from the formula with the square root, so it never cancels to a negative
// number under the root; its absolute error is a few ulps of ‖a‖/‖v‖.
// It returns ErrZeroSpeed if v = 0 and ErrNonFinite for NaN or Inf input.
func TurningRate(v, a []float64) (float64, error) {
	checkLen(len(v), a)
	f, err := newFrame(v, a)
	if err != nil {
		return 0, err
	}
	return f.normalNorm(v, a) / f.s, nil
}

// Curvature returns κ = ‖T′‖/‖v‖ = ‖a⊥‖/‖v‖², the curvature of the path with
// respect to arc length (THEORY.md §3). v and a are [n]. Errors are those of
// TurningRate.
func Curvature(v, a []float64) (float64, error) {
	checkLen(len(v), a)
	f, err := newFrame(v, a)
	if err != nil {
		return 0, err
	}
	return f.normalNorm(v, a) / f.s / f.s, nil
}

// SpeedDerivative returns d‖v‖/dα = ⟨a, v⟩/‖v‖ = ⟨a, T⟩, the tangential
// acceleration. It is the derivative needed by RemainingArcHermite. v and a
// are [n]. Errors are those of TurningRate.
func SpeedDerivative(v, a []float64) (float64, error) {
	checkLen(len(v), a)
	f, err := newFrame(v, a)
	if err != nil {
		return 0, err
	}
	return f.c, nil
}

// CornerAngle returns the angle in [0, π] between the one-sided unit tangents
// T(α⁻) = vLeft/‖vLeft‖ and T(α⁺) = vRight/‖vRight‖ at a kink of a
// piecewise-smooth path: the turning contributed by the corner to the Gauss
// length, arccos⟨T(α⁻), T(α⁺)⟩ (THEORY.md §3).
//
// It is evaluated as 2·atan2(‖u − w‖, ‖u + w‖) with u, w the unit tangents,
// which is accurate to a few ulps over the whole range, including angles near
// 0 and π where arccos of the dot product loses half the digits.
// vLeft and vRight are [n]. It returns ErrZeroSpeed if either is zero and
// ErrNonFinite for NaN or Inf input.
func CornerAngle(vLeft, vRight []float64) (float64, error) {
	checkLen(len(vLeft), vRight)
	sl, sr := norm(vLeft), norm(vRight)
	if !finite(sl) || !finite(sr) {
		return 0, ErrNonFinite
	}
	if sl == 0 || sr == 0 {
		return 0, ErrZeroSpeed
	}
	var d, p sumSquares
	for i, l := range vLeft {
		u, w := l/sl, vRight[i]/sr
		d.add(u - w)
		p.add(u + w)
	}
	return 2 * math.Atan2(d.norm(), p.norm()), nil
}

// unitAngle is CornerAngle for vectors already of unit length.
func unitAngle(u, w []float64) float64 {
	var d, p float64
	for i, ui := range u {
		x, y := ui-w[i], ui+w[i]
		d += x * x
		p += y * y
	}
	return 2 * math.Atan2(math.Sqrt(d), math.Sqrt(p))
}
