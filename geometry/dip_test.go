package geometry

import (
	"math"
	"testing"
)

// TestGaussLengthNearInflection: where the curvature nearly vanishes, the
// turning rate ‖a⊥‖/‖v‖ has a narrow dip that Gauss–Kronrod nodes can step
// over with both rules agreeing (a rapid draw of TestGaussLengthInvariance
// found this cubic: at tolerance 1e-10 the result was 9.5e-7 low with an
// error estimate of 3e-12). The value must match a fine trapezoid rule, and
// a true inflection — the planar cubic (α, α³) on [−1, 1], whose total
// turning is 2·atan 3 — must converge to its closed form.
func TestGaussLengthNearInflection(t *testing.T) {
	p := polyCurve{d: 3, c: [][]float64{{1, 1, 1}, {1.5, 0.75, 1}, {0x1p-13, 0x1p-14, 0x1p-9}, {0.125, 0.0625, -1}}}
	const m = 400000
	v, a := make([]float64, 3), make([]float64, 3)
	var trap float64
	for j := 0; j <= m; j++ {
		p.curve(float64(j)/m, v, a)
		r, err := TurningRate(v, a)
		if err != nil {
			t.Fatal(err)
		}
		if j == 0 || j == m {
			r /= 2
		}
		trap += r / m
	}
	for _, tol := range []float64{1e-6, 1e-8, 1e-10} {
		r, err := GaussLength(p.curve, 3, 0, 1, nil, tol)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(r.Value - trap); d > tol+1e-9 || d > r.ErrorEstimate+1e-9 {
			t.Errorf("tol %g: G = %.15g, trapezoid %.15g: off by %.2g, estimate %.2g", tol, r.Value, trap, d, r.ErrorEstimate)
		}
	}

	cubic := func(s float64, v, a []float64) { v[0], v[1], a[0], a[1] = 1, 3*s*s, 0, 6*s }
	r, err := GaussLength(cubic, 2, -1, 1, nil, 1e-10)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * math.Atan(3); math.Abs(r.Value-want) > 1e-9 {
		t.Errorf("(α, α³) on [−1, 1]: G = %.15g, want 2·atan 3 = %.15g", r.Value, want)
	}
}
