package geometry

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/integrate/quad"
)

// TangentDerivative against central differences of UnitTangent along the
// helix and the sine curve; TurningRate = ‖T′‖; closed-form curvatures.
func TestTangentDerivativeFiniteDifference(t *testing.T) {
	for _, tc := range []struct {
		c Curve
		n int
	}{{helix, 3}, {sine, 2}, {parabola, 2}} {
		for _, alpha := range []float64{0.1, 0.37, 0.8} {
			v, a, dT := make([]float64, tc.n), make([]float64, tc.n), make([]float64, tc.n)
			tc.c(alpha, v, a)
			if err := TangentDerivative(dT, v, a); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.n; i++ {
				fdi := fd.Derivative(func(x float64) float64 {
					vv, aa, T := make([]float64, tc.n), make([]float64, tc.n), make([]float64, tc.n)
					tc.c(x, vv, aa)
					UnitTangent(T, vv)
					return T[i]
				}, alpha, &fd.Settings{Formula: fd.Central, Step: 1e-5})
				if math.Abs(fdi-dT[i]) > 1e-7*(1+math.Abs(dT[i])) {
					t.Errorf("α=%v: T′[%d] = %v, finite difference %v", alpha, i, dT[i], fdi)
				}
			}
			r, _ := TurningRate(v, a)
			if math.Abs(r-norm(dT)) > 1e-14*r {
				t.Errorf("TurningRate %v ≠ ‖T′‖ %v", r, norm(dT))
			}
			// The square-root formula of THEORY.md §3, well conditioned here.
			var vv, va, aa float64
			for i := range v {
				vv += v[i] * v[i]
				va += v[i] * a[i]
				aa += a[i] * a[i]
			}
			if f := math.Sqrt(aa*vv-va*va) / vv; math.Abs(r-f) > 1e-12*f {
				t.Errorf("TurningRate %v, formula %v", r, f)
			}
		}
	}
	// Circle of radius R: κ = 1/R; helix of radius 1 and pitch 2π: κ = 1/2;
	// SpeedDerivative of the parabola: d/dt √(1+4t²) = 4t/√(1+4t²).
	v, a := make([]float64, 2), make([]float64, 2)
	arc(2.5, 3)(0.3, v, a)
	if k, _ := Curvature(v, a); math.Abs(k-0.4) > 1e-15 {
		t.Errorf("circle κ = %v", k)
	}
	v3, a3 := make([]float64, 3), make([]float64, 3)
	helix(0.7, v3, a3)
	if k, _ := Curvature(v3, a3); math.Abs(k-0.5) > 1e-15 {
		t.Errorf("helix κ = %v", k)
	}
	parabola(0.6, v, a)
	if d, _ := SpeedDerivative(v, a); math.Abs(d-2.4/math.Sqrt(1+4*0.36)) > 1e-15 {
		t.Errorf("speed derivative %v", d)
	}
	// No overflow or underflow of ‖v‖² for huge or tiny scales.
	for _, s := range []float64{1e200, 1e-200} {
		if k, err := Curvature([]float64{s, 0}, []float64{0, s}); err != nil || math.Abs(k*s-1) > 1e-15 {
			t.Errorf("scale %g: κ = %v, %v", s, k, err)
		}
	}
}

func TestCornerAngle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, beta := range []float64{0, 1e-12, 1e-6, 0.3, math.Pi / 2, 2, math.Pi - 1e-6, math.Pi - 1e-10, math.Pi} {
		s, c := math.Sincos(beta)
		u := []float64{1, 0, 0, 0}
		w := []float64{c, s, 0, 0}
		// A random rotation in the (1,2)-(3,4) planes and random scales.
		th := rng.Float64() * 2 * math.Pi
		rs, rc := math.Sincos(th)
		rot := func(x []float64, scale float64) []float64 {
			return []float64{scale * (rc*x[0] - rs*x[2]), scale * x[1], scale * (rs*x[0] + rc*x[2]), 0}
		}
		got, err := CornerAngle(rot(u, 1e-3+rng.Float64()), rot(w, 1e3*rng.Float64()+1))
		if err != nil || math.Abs(got-beta) > 1e-15*math.Max(beta, 1)+1e-300 && math.Abs(got-beta) > 4e-16*math.Pi {
			t.Errorf("β = %v: got %v (diff %g), %v", beta, got, got-beta, err)
		}
		// arccos of the dot product would give 0 or ≈1.5e-8 here.
		if beta > 0 && beta < 1e-5 && math.Abs(got-beta) > 1e-6*beta {
			t.Errorf("β = %v: small angle lost: %v", beta, got)
		}
	}
}

// The K15 and G7 constants: G7 agrees with gonum's Gauss–Legendre rule, K15
// integrates x^k exactly for k ≤ 22, G7 for k ≤ 13.
func TestKronrodConstants(t *testing.T) {
	x, w := make([]float64, 7), make([]float64, 7)
	quad.Legendre{}.FixedLocations(x, w, -1, 1)
	for i := range x {
		found := false
		for j, xj := range k15Nodes {
			if math.Abs(xj-x[i]) < 1e-15 {
				found = true
				if math.Abs(g7Weights[j]-w[i]) > 1e-15 {
					t.Errorf("G7 weight at %v: %v, gonum %v", x[i], g7Weights[j], w[i])
				}
			}
		}
		if !found {
			t.Errorf("Gauss node %v not among K15 nodes", x[i])
		}
	}
	for k := 0; k <= 24; k++ {
		want := 0.0
		if k%2 == 0 {
			want = 2 / float64(k+1)
		}
		var sk, sg float64
		for i, xi := range k15Nodes {
			p := math.Pow(xi, float64(k))
			sk += k15Weights[i] * p
			sg += g7Weights[i] * p
		}
		if k <= 22 && math.Abs(sk-want) > 1e-15 {
			t.Errorf("K15 x^%d: %v, want %v", k, sk, want)
		}
		if k <= 13 && math.Abs(sg-want) > 1e-15 {
			t.Errorf("G7 x^%d: %v, want %v", k, sg, want)
		}
		if k == 14 && math.Abs(sg-want) < 1e-14 {
			t.Errorf("G7 exact for x^14: constants suspicious")
		}
		if k == 24 && math.Abs(sk-want) < 1e-14 {
			t.Errorf("K15 exact for x^24: constants suspicious")
		}
	}
}
