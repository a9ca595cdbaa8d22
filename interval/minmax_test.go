package interval

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// specialFloats are the float64 where min and max have special rules (Go
// spec, "Min and max"; math.Max and math.Min's documented special cases).
var specialFloats = []float64{
	math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
	0x1p-1074, -0x1p-1074, 0x1p-1022, -0x1p-1022, 0x1.fffffffffffffp-1023, -0x1.fffffffffffffp-1023,
	math.MaxFloat64, -math.MaxFloat64, 1, -1,
}

// drawSpecial draws a float64 that is a special value half of the time and
// an arbitrary bit pattern (every NaN payload, subnormal and sign) otherwise.
func drawSpecial(t *rapid.T, name string) float64 {
	if rapid.Bool().Draw(t, name+".special") {
		return rapid.SampledFrom(specialFloats).Draw(t, name)
	}
	return math.Float64frombits(rapid.Uint64().Draw(t, name+".bits"))
}

// same reports whether a and b are the same float64 up to the NaN payload
// (both NaN, or equal with the same sign bit: −0 and +0 differ).
func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b && math.Signbit(a) == math.Signbit(b)
}

// TestBuiltinMinMaxSemantics checks what the package relies on in replacing
// math.Max and math.Min by the builtin max and min (issue 12: the math
// functions are assembly on amd64 and are never inlined, ~10 % of the
// certificate's leaf passes). The two agree on every pair of float64,
// signed zeros (max(−0, +0) = +0, min(−0, +0) = −0), subnormals and
// infinities included, except one documented case: math.Max(+Inf, NaN) is
// +Inf and math.Min(−Inf, NaN) is −Inf, where the builtin returns NaN
// ("if any argument is a NaN, the result is a NaN"). A NaN bound is a
// failed enclosure that callers treat as the whole line (I, Valid), and an
// infinite bound on that side is the whole line on that side too, so
// neither is tighter than the other: see docs/soundness.md, "polish".
func TestBuiltinMinMaxSemantics(t *testing.T) {
	check := func(t interface{ Fatalf(string, ...any) }, x, y float64) {
		bmax, bmin := max(x, y), min(x, y)
		mmax, mmin := math.Max(x, y), math.Min(x, y)
		nan := math.IsNaN(x) || math.IsNaN(y)
		// the builtin propagates any NaN
		if nan && !(math.IsNaN(bmax) && math.IsNaN(bmin)) {
			t.Fatalf("max/min(%v, %v) = %v, %v: a NaN argument must give NaN", x, y, bmax, bmin)
		}
		// the builtin is commutative, signed zeros included
		if !same(bmax, max(y, x)) || !same(bmin, min(y, x)) {
			t.Fatalf("max/min(%v, %v) not commutative", x, y)
		}
		switch {
		case nan && (math.IsInf(x, 1) || math.IsInf(y, 1)):
			if !math.IsInf(mmax, 1) {
				t.Fatalf("math.Max(%v, %v) = %v, documented +Inf", x, y, mmax)
			}
		case !same(bmax, mmax):
			t.Fatalf("max(%v, %v) = %v, math.Max %v", x, y, bmax, mmax)
		}
		switch {
		case nan && (math.IsInf(x, -1) || math.IsInf(y, -1)):
			if !math.IsInf(mmin, -1) {
				t.Fatalf("math.Min(%v, %v) = %v, documented −Inf", x, y, mmin)
			}
		case !same(bmin, mmin):
			t.Fatalf("min(%v, %v) = %v, math.Min %v", x, y, bmin, mmin)
		}
		// the result is one of the arguments (or NaN)
		if !nan && (!(same(bmax, x) || same(bmax, y)) || !(same(bmin, x) || same(bmin, y))) {
			t.Fatalf("max/min(%v, %v) = %v, %v: not an argument", x, y, bmax, bmin)
		}
		if !nan && (bmax < x || bmax < y || bmin > x || bmin > y) {
			t.Fatalf("max/min(%v, %v) = %v, %v: out of order", x, y, bmax, bmin)
		}
	}
	for _, x := range specialFloats {
		for _, y := range specialFloats {
			check(t, x, y)
		}
	}
	// the two signed zeros, each order (the spec's table)
	nz := math.Copysign(0, -1)
	if !same(max(nz, 0.0), 0) || !same(max(0.0, nz), 0) || !same(min(nz, 0.0), nz) || !same(min(0.0, nz), nz) {
		t.Fatal("signed zeros: max(−0, +0) must be +0 and min −0")
	}
	rapid.Check(t, func(t *rapid.T) {
		check(t, drawSpecial(t, "x"), drawSpecial(t, "y"))
	})
}

// TestMulNeverNaNWithoutNaN: Mul of two intervals without a NaN bound has no
// NaN bound, infinite bounds and zeros included (0·∞ is a product with a
// zero factor: 0), and it holds every product of their end points. With
// the builtin min/max a NaN product always reaches Mul's slow path, where
// math.Min/math.Max could hide it behind an infinite one
// (docs/soundness.md, "polish round").
func TestMulNeverNaNWithoutNaN(t *testing.T) {
	ends := []float64{math.Inf(-1), -math.MaxFloat64, -1.5, -0x1p-1074, math.Copysign(0, -1), 0, 0x1p-1074, 2.5, math.MaxFloat64, math.Inf(1)}
	draw := func(t *rapid.T, name string) I {
		pick := func(n string) float64 {
			if rapid.Bool().Draw(t, n+".special") {
				return rapid.SampledFrom(ends).Draw(t, n)
			}
			return rapid.Float64().Draw(t, n)
		}
		a, b := pick(name+".a"), pick(name+".b")
		return I{min(a, b), max(a, b)}
	}
	prod := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a * b
	}
	rapid.Check(t, func(t *rapid.T) {
		x, y := draw(t, "x"), draw(t, "y")
		r := Mul(x, y)
		if math.IsNaN(r.Lo) || math.IsNaN(r.Hi) || !r.Valid() {
			t.Fatalf("Mul(%v, %v) = %v", x, y, r)
		}
		for _, a := range []float64{x.Lo, x.Hi} {
			for _, b := range []float64{y.Lo, y.Hi} {
				if p := prod(a, b); !r.Contains(p) {
					t.Fatalf("Mul(%v, %v) = %v does not hold %v·%v = %v", x, y, r, a, b, p)
				}
			}
		}
	})
}
