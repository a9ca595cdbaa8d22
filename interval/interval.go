package interval

import "math"

// I is the closed interval [Lo, Hi] of reals, Lo ≤ Hi. Infinite bounds are
// allowed; NaN bounds mean the enclosure failed (overflow of an operation)
// and must be treated as the whole real line by callers (see Valid).
type I struct{ Lo, Hi float64 }

// Point returns the degenerate interval [x, x].
func Point(x float64) I { return I{x, x} }

// Valid reports whether neither bound is NaN and Lo ≤ Hi.
func (x I) Valid() bool { return x.Lo <= x.Hi }

// Mid returns a float64 near the midpoint (not rounded outward).
func (x I) Mid() float64 { return 0.5*x.Lo + 0.5*x.Hi }

// Width returns Hi − Lo rounded up.
func (x I) Width() float64 { return Up(x.Hi - x.Lo) }

// Contains reports whether v ∈ x.
func (x I) Contains(v float64) bool { return x.Lo <= v && v <= x.Hi }

// StraddlesZero reports Lo < 0 < Hi: the interval holds values of both signs
// (a ReLU-family unit whose pre-activation interval straddles 0 may cross its kink).
func (x I) StraddlesZero() bool { return x.Lo < 0 && x.Hi > 0 }

// Down returns a float64 at or below the next float64 below x, and at most
// two float64 below x (x itself for −Inf, MaxFloat64 for +Inf): a lower
// bound for any real that rounds to x under round-to-nearest. It is the
// mirror of Up: fl(x − fl(φ|x| + η)).
func Down(x float64) float64 {
	r := x - (float64(phi*math.Abs(x)) + eta)
	if r != r && x == x { // x = +Inf: +Inf − +Inf (a NaN x stays NaN)
		return math.MaxFloat64
	}
	return r
}

// Up returns a float64 at or above the next float64 above x, and at most two
// float64 above x (x itself for +Inf, −MaxFloat64 for −Inf): an upper bound
// for any real that rounds to x under round-to-nearest.
//
// It is the branch-free successor bound of S. M. Rump, P. Zimmermann,
// S. Boldo and G. Melquiond, "Computing predecessor and successor in
// rounding to nearest", BIT 49 (2009), Algorithm 1 and Theorem 2.1: in
// binary64 with rounding to nearest, for every finite x, with
// e = fl(fl(φ|x|) + η), φ = u(1 + 2u) = 2⁻⁵³(1 + 2⁻⁵²) and η = 2⁻¹⁰⁷⁴ the
// smallest positive subnormal, succ(x) ≤ fl(x + e) and fl(x − e) ≤ pred(x),
// with equality except near the underflow threshold, where the result may
// be one float64 further. Four floating-point operations replace
// math.Nextafter (exact, but scalar and branchy: 17% of the certificate's
// samples, docs/performance.md). The product φ|x| is converted to float64
// explicitly so that the compiler may not fuse it with the sum into a
// multiply–add (Go spec, "Floating-point operators"): the theorem is about
// separately rounded operations. Checked against math.Nextafter on the
// edge cases (subnormals, powers of two, ±MaxFloat64, ±0, ±Inf) and on
// random float64 (TestUpDownEdges, TestUpDownRapid).
func Up(x float64) float64 {
	r := x + (float64(phi*math.Abs(x)) + eta)
	if r != r && x == x { // x = −Inf: −Inf + +Inf (a NaN x stays NaN)
		return -math.MaxFloat64
	}
	return r
}

const (
	phi = 0x1p-53 * (1 + 0x1p-52) // φ = u(1 + 2u), exactly a float64
	eta = 0x1p-1074               // η, the smallest positive subnormal
)

const (
	u      = 0x1p-53   // unit roundoff of float64
	libRel = 0x1p-50   // relative widening of elementary function results
	libAbs = 0x1p-1060 // absolute widening (subnormal results)
)

// widen encloses a real whose float64 approximation v by a library function
// has relative error below libRel.
// A library result of ±Inf (overflow) stands for a real beyond
// ±MaxFloat64·(1 − libRel): the bound on the other side stays finite.
func widen(lo, hi float64) I {
	const big = math.MaxFloat64 * (1 - libRel)
	var r I
	switch {
	case math.IsInf(lo, 1):
		r.Lo = big
	case math.IsInf(lo, -1):
		r.Lo = lo
	default:
		r.Lo = Down(lo - math.Abs(lo)*libRel - libAbs)
	}
	switch {
	case math.IsInf(hi, -1):
		r.Hi = -big
	case math.IsInf(hi, 1):
		r.Hi = hi
	default:
		r.Hi = Up(hi + math.Abs(hi)*libRel + libAbs)
	}
	return r
}

// Add returns x + y. A sum with a zero term is exact and not rounded
// (so sums of terms bounded by 0 stay bounded by 0).
func Add(x, y I) I {
	lo, hi := x.Lo+y.Lo, x.Hi+y.Hi
	if x.Lo != 0 && y.Lo != 0 {
		lo = Down(lo)
	}
	if x.Hi != 0 && y.Hi != 0 {
		hi = Up(hi)
	}
	return I{lo, hi}
}

// Sub returns x − y. A difference with a zero operand is exact and is not
// rounded (exact zeros stay exact, as in Add).
func Sub(x, y I) I {
	lo, hi := x.Lo-y.Hi, x.Hi-y.Lo
	if x.Lo != 0 && y.Hi != 0 {
		lo = Down(lo)
	}
	if x.Hi != 0 && y.Lo != 0 {
		hi = Up(hi)
	}
	return I{lo, hi}
}

// Neg returns −x (exact).
func Neg(x I) I { return I{-x.Hi, -x.Lo} }

// AddF returns x + c for a float64 c.
func AddF(x I, c float64) I { return I{Down(x.Lo + c), Up(x.Hi + c)} }

// Mul returns x·y.
func Mul(x, y I) I {
	if x.Lo >= 0 && y.Lo >= 0 { // the common case in sums of products of non-negatives
		// both factors are ≥ 0, so is the product; a zero factor makes it
		// exactly 0, also against ∞ (where x.Lo·y.Lo or x.Hi·y.Hi is NaN)
		var lo, hi float64
		if x.Hi != 0 && y.Hi != 0 {
			hi = Up(x.Hi * y.Hi)
		}
		if x.Lo != 0 && y.Lo != 0 {
			lo = max(Down(x.Lo*y.Lo), 0)
		}
		return I{lo, hi}
	}
	a, b, c, d := x.Lo*y.Lo, x.Lo*y.Hi, x.Hi*y.Lo, x.Hi*y.Hi
	lo := min(a, b, c, d)
	hi := max(a, b, c, d)
	// 0·∞ gives NaN; an infinite bound times 0 contributes 0. A bound of
	// exactly 0 may be an exact product with a zero factor (not rounded).
	if math.IsNaN(lo) || math.IsNaN(hi) || lo == 0 || hi == 0 {
		return mulSlow(x, y)
	}
	return I{Down(lo), Up(hi)}
}

// mulSlow is Mul with every product rounded on its own: a product with a
// zero factor is exactly 0 (also against ∞), any other is rounded outward.
func mulSlow(x, y I) I {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, a := range [2]float64{x.Lo, x.Hi} {
		for _, b := range [2]float64{y.Lo, y.Hi} {
			if a == 0 || b == 0 {
				lo, hi = min(lo, 0), max(hi, 0)
				continue
			}
			v := a * b
			lo, hi = min(lo, Down(v)), max(hi, Up(v))
		}
	}
	return I{lo, hi}
}

// Scale returns c·x for a float64 c.
func Scale(c float64, x I) I {
	if c >= 0 {
		return I{Down(c * x.Lo), Up(c * x.Hi)}
	}
	return I{Down(c * x.Hi), Up(c * x.Lo)}
}

// Sqr returns {v² : v ∈ x} (the exact range, not x·x).
func Sqr(x I) I {
	switch {
	case x.Lo >= 0:
		return I{Down(x.Lo * x.Lo), Up(x.Hi * x.Hi)}
	case x.Hi <= 0:
		return I{Down(x.Hi * x.Hi), Up(x.Lo * x.Lo)}
	}
	m := max(-x.Lo, x.Hi)
	return I{0, Up(m * m)}
}

// Cube returns {v³ : v ∈ x} (v³ is increasing).
func Cube(x I) I {
	lo, hi := Point(x.Lo), Point(x.Hi)
	return I{Mul(Sqr(lo), lo).Lo, Mul(Sqr(hi), hi).Hi}
}

// Recip returns 1/x; the whole line when 0 ∈ x.
func Recip(x I) I {
	if x.Lo <= 0 && x.Hi >= 0 {
		return I{math.Inf(-1), math.Inf(1)}
	}
	return I{Down(1 / x.Hi), Up(1 / x.Lo)}
}

// Div returns x/y; the whole line when 0 ∈ y.
func Div(x, y I) I {
	if y.Lo <= 0 && y.Hi >= 0 {
		return I{math.Inf(-1), math.Inf(1)}
	}
	a, b, c, d := x.Lo/y.Lo, x.Lo/y.Hi, x.Hi/y.Lo, x.Hi/y.Hi
	return I{Down(min(a, b, c, d)), Up(max(a, b, c, d))}
}

// Hull returns the smallest interval holding x and y.
func Hull(x, y I) I { return I{min(x.Lo, y.Lo), max(x.Hi, y.Hi)} }

// Intersect returns x ∩ y (valid when both enclose the same real, so the
// intersection is not empty in exact arithmetic).
func Intersect(x, y I) I { return I{max(x.Lo, y.Lo), min(x.Hi, y.Hi)} }

// Clamp intersects x with [lo, hi].
func Clamp(x I, lo, hi float64) I { return I{max(x.Lo, lo), min(x.Hi, hi)} }

// Exp returns exp(x).
func Exp(x I) I {
	r := widen(math.Exp(x.Lo), math.Exp(x.Hi))
	r.Lo = max(r.Lo, 0)
	return r
}

// Log returns log(x) for x ≥ 0 (log 0 = −∞); the lower bound of x is
// clamped at 0 (log of a negative number is not defined).
func Log(x I) I {
	lo := max(x.Lo, 0)
	if math.IsNaN(x.Lo) || math.IsNaN(x.Hi) {
		return I{math.Inf(-1), math.Inf(1)}
	}
	r := widen(math.Log(lo), math.Log(x.Hi))
	if math.IsInf(r.Lo, -1) || lo == 0 {
		r.Lo = math.Inf(-1)
	}
	return r
}

// Expm1 returns eˣ − 1 (accurate near 0; at least −1).
func Expm1(x I) I {
	r := widen(math.Expm1(x.Lo), math.Expm1(x.Hi))
	r.Lo = max(r.Lo, -1)
	return r
}

// Log1p returns log(1 + x), for x > −1.
func Log1p(x I) I { return widen(math.Log1p(x.Lo), math.Log1p(x.Hi)) }

// Tanh returns tanh(x), clamped to [−1, 1].
func Tanh(x I) I { return Clamp(widen(math.Tanh(x.Lo), math.Tanh(x.Hi)), -1, 1) }

// Sigmoid returns 1/(1 + e^{−x}), clamped to [0, 1].
func Sigmoid(x I) I { return Clamp(widen(sigmoid(x.Lo), sigmoid(x.Hi)), 0, 1) }

func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Softplus returns log(1 + eˣ) (computed without overflow; its few roundings
// stay within the library widening).
func Softplus(x I) I { return widen(softplus(x.Lo), softplus(x.Hi)) }

func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// sqrt2 encloses √2 (math.Sqrt2 is its nearest float64).
var sqrt2 = I{Down(math.Sqrt2), Up(math.Sqrt2)}

// NormCDF returns Φ(x) = ½ erfc(−x/√2), clamped to [0, 1]. The argument
// t = −x/√2 is itself enclosed (its rounding matters in the tails, where
// the relative condition number of erfc is about 2t²), and erfc, which is
// decreasing, is evaluated at the ends of that enclosure.
func NormCDF(x I) I {
	t := Div(Neg(x), sqrt2)
	return Clamp(widen(0.5*math.Erfc(t.Hi), 0.5*math.Erfc(t.Lo)), 0, 1)
}

// NormPDF returns φ(x) = e^{−x²/2}/√(2π).
func NormPDF(x I) I {
	s := Sqr(x)
	const c = 0.3989422804014327 // 1/√(2π), within an ulp
	e := Exp(Scale(-0.5, s))
	return widen(c*e.Lo, c*e.Hi)
}
