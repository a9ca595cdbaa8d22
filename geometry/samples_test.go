package geometry

import (
	"math"
	"testing"
)

func uniform(m int) []float64 {
	x := make([]float64, m)
	for j := range x {
		x[j] = float64(j) / float64(m-1)
	}
	return x
}

func TestTrapezoidAndPaperGaussLength(t *testing.T) {
	// Trapezoid of x² on a uniform grid of step h: 1/3 + h²/6 exactly
	// (Euler–Maclaurin terminates).
	for _, m := range []int{2, 5, 50} {
		x := uniform(m)
		f := make([]float64, m)
		for j := range f {
			f[j] = x[j] * x[j]
		}
		h := 1 / float64(m-1)
		if got := Trapezoid(x, f); math.Abs(got-(1.0/3+h*h/6)) > 1e-15 {
			t.Errorf("m=%d: %v", m, got)
		}
		w := TrapezoidWeights(x)
		var s float64
		for j := range w {
			s += w[j] * f[j]
		}
		if math.Abs(s-Trapezoid(x, f)) > 1e-15 {
			t.Errorf("weights: %v", s)
		}
	}
	// The paper's 50-point rule: exact for a circular arc (constant turning
	// rate), within the trapezoid error bound h²/12·max|f″| for the
	// parabola: ‖T′‖ = 2/(1+4t²), |f″| ≤ 16.
	alphas := uniform(50)
	for _, tc := range []struct {
		c     Curve
		want  float64
		bound float64
	}{
		{arc(2, 1.1*math.Pi), 1.1 * math.Pi, 1e-14},
		{parabola, math.Atan(2), 16.0 / 12 / 49 / 49},
	} {
		rates := make([]float64, len(alphas))
		v, a := make([]float64, 2), make([]float64, 2)
		for j, al := range alphas {
			tc.c(al, v, a)
			rates[j], _ = TurningRate(v, a)
		}
		if got := GaussLengthTrapezoid(alphas, rates); math.Abs(got-tc.want) > tc.bound {
			t.Errorf("paper G = %v, want %v ± %v", got, tc.want, tc.bound)
		}
	}
}

func TestRemainingArc(t *testing.T) {
	// Linear speed: trapezoid exact. Cubic speed 1 + α³ on a non-uniform
	// grid: Hermite exact, S(α) = (1 − α) + (1 − α⁴)/4.
	x := []float64{0, 0.1, 0.35, 0.5, 0.9, 1}
	lin, cub, dcub := make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	for j, a := range x {
		lin[j] = 2 + 3*a
		cub[j] = 1 + a*a*a
		dcub[j] = 3 * a * a
	}
	S := RemainingArc(x, lin)
	H := RemainingArcHermite(x, cub, dcub)
	T := RemainingArc(x, cub)
	for j, a := range x {
		if want := 2*(1-a) + 1.5*(1-a*a); math.Abs(S[j]-want) > 1e-15 {
			t.Errorf("linear S(%v) = %v, want %v", a, S[j], want)
		}
		want := (1 - a) + (1-a*a*a*a)/4
		if math.Abs(H[j]-want) > 1e-15 {
			t.Errorf("Hermite S(%v) = %v, want %v", a, H[j], want)
		}
		if j < len(x)-2 && math.Abs(T[j]-want) < 1e-6 {
			t.Errorf("trapezoid unexpectedly exact for a cubic at %v", a)
		}
	}
}

func TestLegendreAndKronrodPanels(t *testing.T) {
	breaks := []float64{-1, 0.2, 0.5, 2}
	x, w := LegendrePanels(breaks, 5)
	if len(x) != 15 || len(w) != 15 {
		t.Fatalf("lengths %d %d", len(x), len(w))
	}
	for i := 1; i < len(x); i++ {
		if !(x[i-1] < x[i]) {
			t.Fatalf("nodes not increasing: %v", x)
		}
	}
	// Degree 9 is exact on each panel, so on the union.
	var s float64
	for i := range x {
		s += w[i] * math.Pow(x[i], 9)
	}
	if want := (math.Pow(2, 10) - 1) / 10; math.Abs(s-want) > 1e-13*want {
		t.Errorf("∫x⁹ = %v, want %v", s, want)
	}
	// Composite K15 on exp and on √x (derivative singular at 0): the error
	// estimate bounds the true error.
	for _, tc := range []struct {
		f      func(float64) float64
		breaks []float64
		want   float64
		maxEst float64 // the estimate is small where the rule is accurate
	}{
		{math.Exp, []float64{0, 1, 2}, math.Exp(2) - 1, 1e-12},
		{math.Sqrt, []float64{0, 0.5, 1}, 2.0 / 3, 1e-1},
		{func(x float64) float64 { return math.Abs(x - 0.3) }, []float64{0, 1}, (0.09 + 0.49) / 2, 1},
		{func(x float64) float64 { return math.Abs(x - 0.3) }, []float64{0, 0.3, 1}, (0.09 + 0.49) / 2, 1e-14},
	} {
		nodes, kw, gw := KronrodPanels(tc.breaks)
		f := make([]float64, len(nodes))
		for i, xi := range nodes {
			f[i] = tc.f(xi)
		}
		v, e := KronrodSum(f, kw, gw)
		if d := math.Abs(v - tc.want); d > e || e > tc.maxEst {
			t.Errorf("want %v: got %v, error %g, estimate %g", tc.want, v, d, e)
		}
	}
}

func TestChordDeviationClosedForm(t *testing.T) {
	// γ(α) = (α, h sin πα) has chord along e1 and deviation ∫ h² sin² πα = h²/2.
	x, w := LegendrePanels([]float64{0, 0.25, 0.5, 0.75, 1}, 8)
	h := 0.7
	g := make([][]float64, len(x))
	for j, a := range x {
		g[j] = []float64{a, h * math.Sin(math.Pi*a)}
	}
	got, err := ChordDeviation([]float64{0, 0}, []float64{1, 0}, g, w)
	if err != nil || math.Abs(got-h*h/2) > 1e-14 {
		t.Errorf("chord deviation %v, want %v (%v)", got, h*h/2, err)
	}
	if _, err := ChordDeviation([]float64{1, 2}, []float64{1, 2}, g, w); err != ErrZeroChord {
		t.Errorf("zero chord: %v", err)
	}
	// A straight path (non-uniform speed) deviates by 0.
	for j, a := range x {
		g[j] = []float64{1 + 2*a*a, 3 - a*a}
	}
	if got, _ := ChordDeviation([]float64{1, 3}, []float64{3, 2}, g, w); got > 1e-30 {
		t.Errorf("straight: %v", got)
	}
}
