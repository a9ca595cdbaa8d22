package interval

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

// ulpsAbove returns how many float64 steps y lies above x (x ≤ y, both
// finite or y = +Inf counted as one step above MaxFloat64), or −1 when
// y < x or more than 8 steps.
func ulpsAbove(x, y float64) int {
	for k := 0; k <= 8; k++ {
		if x == y {
			return k
		}
		if x > y || math.IsInf(x, 1) {
			return -1
		}
		x = math.Nextafter(x, math.Inf(1))
	}
	return -1
}

// checkUpDown asserts Rump et al.'s bounds for x against math.Nextafter:
// Up(x) is at least the next float64 above x and at most two above, Down(x)
// the same below, and (strict) equal to Nextafter when strict is set.
func checkUpDown(t interface {
	Helper()
	Fatalf(string, ...any)
}, x float64, strict bool) {
	t.Helper()
	up, down := Up(x), Down(x)
	switch {
	case math.IsNaN(x):
		if !math.IsNaN(up) || !math.IsNaN(down) {
			t.Fatalf("Up/Down(NaN) = %v, %v", up, down)
		}
		return
	case math.IsInf(x, 1):
		if up != x || down != math.MaxFloat64 {
			t.Fatalf("Up/Down(+Inf) = %v, %v", up, down)
		}
		return
	case math.IsInf(x, -1):
		if down != x || up != -math.MaxFloat64 {
			t.Fatalf("Up/Down(−Inf) = %v, %v", up, down)
		}
		return
	}
	nu := ulpsAbove(x, up)
	nd := ulpsAbove(-x, -down) // Down(x) = −Up(−x) in exact symmetry
	if nu < 1 || nu > 2 {
		t.Fatalf("Up(%v) = %v: %d steps above (want 1 or 2; −1: below or far)", x, up, nu)
	}
	if nd < 1 || nd > 2 {
		t.Fatalf("Down(%v) = %v: %d steps below (want 1 or 2)", x, down, nd)
	}
	if strict && (nu != 1 || nd != 1) {
		t.Fatalf("Up/Down(%v) = %v, %v: %d and %d steps, want exactly the neighbours", x, up, down, nu, nd)
	}
}

// nearUnderflow is where Rump et al.'s Theorem 2.1 allows a second step:
// |x| ∈ [2⁻¹⁰²², 2⁻¹⁰²⁰] = [½u⁻¹η, 2u⁻¹η], where fl(φ|x|) is subnormal and
// its rounding not relative. Outside it (subnormals included) Up and Down
// are exactly math.Nextafter.
func nearUnderflow(x float64) bool { a := math.Abs(x); return a >= 0x1p-1022 && a <= 0x1p-1020 }

// TestUpDownEdges checks Up and Down on the edge cases: ±0, subnormals
// (the first 100,000 multiples of η and both ends of the subnormal range),
// every power of two with its neighbours, the underflow threshold,
// ±MaxFloat64 (whose successor is +Inf), ±Inf and NaN.
func TestUpDownEdges(t *testing.T) {
	xs := []float64{0, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1),
		math.MaxFloat64, -math.MaxFloat64, math.Nextafter(math.MaxFloat64, 0),
		math.SmallestNonzeroFloat64, 0x1p-1022, math.Nextafter(0x1p-1022, 0),
		1, 1.5, 3, 1 / 3.0, math.Pi, 0.1, 1e300, 1e-300}
	for k := 1; k <= 100000; k++ {
		xs = append(xs, float64(k)*eta)
	}
	for k := -1074; k <= 1023; k++ {
		p := math.Ldexp(1, k)
		xs = append(xs, p, math.Nextafter(p, 0), math.Nextafter(p, math.Inf(1)),
			p*1.5, math.Nextafter(2*p, 0))
	}
	// every float64 near the underflow threshold's binades' ends
	for _, b := range []float64{0x1p-1023, 0x1p-1022, 0x1p-1021, 0x1p-1020, 0x1p-1019} {
		lo, hi := b, b
		for i := 0; i < 20000; i++ {
			xs = append(xs, lo, hi)
			lo, hi = math.Nextafter(lo, 0), math.Nextafter(hi, math.Inf(1))
		}
	}
	strictMiss := 0
	for _, x := range xs {
		for _, v := range []float64{x, -x} {
			checkUpDown(t, v, !nearUnderflow(v))
			if nearUnderflow(v) && (Up(v) != math.Nextafter(v, math.Inf(1)) || Down(v) != math.Nextafter(v, math.Inf(-1))) {
				strictMiss++
			}
		}
	}
	// the exact values: Up(MaxFloat64) overflows to +Inf, as its successor
	if Up(math.MaxFloat64) != math.Inf(1) || Down(-math.MaxFloat64) != math.Inf(-1) {
		t.Errorf("Up(MaxFloat64) = %v, Down(−MaxFloat64) = %v, want ±Inf", Up(math.MaxFloat64), Down(-math.MaxFloat64))
	}
	if Up(0) != eta || Down(0) != -eta || Up(math.Copysign(0, -1)) != eta {
		t.Errorf("Up(0) = %v, Down(0) = %v, want ±η", Up(0), Down(0))
	}
	t.Logf("%d edge values; %d near the underflow threshold took a second step", 2*len(xs), strictMiss)
}

// TestUpDownRapid checks Up and Down against math.Nextafter on float64
// drawn from every bit pattern (all binades, both signs, subnormals, NaN
// and ±Inf included).
func TestUpDownRapid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := math.Float64frombits(rapid.Uint64().Draw(t, "bits"))
		checkUpDown(t, x, !nearUnderflow(x))
	})
	rapid.Check(t, func(t *rapid.T) {
		x := rapid.Float64().Draw(t, "x")
		checkUpDown(t, x, !nearUnderflow(x))
	})
}
