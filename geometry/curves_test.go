package geometry

import (
	"errors"
	"math"
	"testing"
)

// Test paths with closed-form Gauss length and arc length (THEORY.md §3).

// arc is the circular arc R(cos φα, sin φα), α ∈ [0,1]: G = φ, S = Rφ.
func arc(R, phi float64) Curve {
	return func(t float64, v, a []float64) {
		s, c := math.Sincos(phi * t)
		v[0], v[1] = -R*phi*s, R*phi*c
		a[0], a[1] = -R*phi*phi*c, -R*phi*phi*s
	}
}

// parabola is (t, t²).
func parabola(t float64, v, a []float64) {
	v[0], v[1] = 1, 2*t
	a[0], a[1] = 0, 2
}

// helix is (cos 2πt, sin 2πt, 2πt).
func helix(t float64, v, a []float64) {
	w := 2 * math.Pi
	s, c := math.Sincos(w * t)
	v[0], v[1], v[2] = -w*s, w*c, w
	a[0], a[1], a[2] = -w*w*c, -w*w*s, 0
}

// sine is (t, sin 2πt).
func sine(t float64, v, a []float64) {
	w := 2 * math.Pi
	s, c := math.Sincos(w * t)
	v[0], v[1] = 1, w*c
	a[0], a[1] = 0, -w*w*s
}

type closedForm struct {
	name   string
	c      Curve
	n      int
	lo, hi float64
	gauss  float64
	arc    float64 // NaN if no closed form
}

var closedForms = []closedForm{
	{"quarter circle", arc(1, math.Pi/2), 2, 0, 1, math.Pi / 2, math.Pi / 2},
	{"full circle R=3", arc(3, 2*math.Pi), 2, 0, 1, 2 * math.Pi, 6 * math.Pi},
	{"arc R=0.01 φ=1.3π", arc(0.01, 1.3*math.Pi), 2, 0, 1, 1.3 * math.Pi, 0.013 * math.Pi},
	{"parabola [0,1]", parabola, 2, 0, 1, math.Atan(2), (2*math.Sqrt(5) + math.Asinh(2)) / 4},
	{"parabola [-1,1]", parabola, 2, -1, 1, 2 * math.Atan(2), (2*math.Sqrt(5) + math.Asinh(2)) / 2},
	{"helix", helix, 3, 0, 1, 2 * math.Pi / math.Sqrt2, 2 * math.Pi * math.Sqrt2},
	{"sine", sine, 2, 0, 1, 4 * math.Atan(2*math.Pi), math.NaN()},
}

func TestGaussLengthClosedForms(t *testing.T) {
	// The brief's quoted decimals, checked against the formulas.
	for _, q := range []struct{ got, want float64 }{
		{math.Atan(2), 1.1071487}, {2 * math.Pi / math.Sqrt2, 4.4428829}, {4 * math.Atan(2*math.Pi), 5.6518605},
	} {
		if math.Abs(q.got-q.want) > 1e-7 {
			t.Fatalf("closed form %v, quoted %v", q.got, q.want)
		}
	}
	for _, cf := range closedForms {
		r, err := GaussLength(cf.c, cf.n, cf.lo, cf.hi, nil, 1e-10)
		if err != nil {
			t.Errorf("%s: %v", cf.name, err)
			continue
		}
		if d := math.Abs(r.Value - cf.gauss); d > 1e-6 {
			t.Errorf("%s: G = %.12g, want %.12g (diff %g)", cf.name, r.Value, cf.gauss, d)
		}
		if r.Corners != 0 || r.Value != r.Integral {
			t.Errorf("%s: corners %v without kinks", cf.name, r.Corners)
		}
		if r.ErrorEstimate > 1e-10 {
			t.Errorf("%s: error estimate %g above tolerance", cf.name, r.ErrorEstimate)
		}
	}
}

func TestArcLengthClosedForms(t *testing.T) {
	for _, cf := range closedForms {
		if math.IsNaN(cf.arc) {
			continue
		}
		r, err := ArcLength(cf.c, cf.n, cf.lo, cf.hi, nil, 1e-10)
		if err != nil {
			t.Errorf("%s: %v", cf.name, err)
			continue
		}
		if d := math.Abs(r.Value - cf.arc); d > 1e-9 || d > r.ErrorEstimate+4e-16*cf.arc {
			t.Errorf("%s: S = %.15g, want %.15g (diff %g, estimate %g)", cf.name, r.Value, cf.arc, d, r.ErrorEstimate)
		}
	}
	// (t², t²) on [−1, 1]: speed 2√2|t| vanishes at 0 (allowed for arc
	// length) and has a kink there; S = 2√2.
	r, err := ArcLength(func(t float64, v, a []float64) {
		v[0], v[1], a[0], a[1] = 2*t, 2*t, 2, 2
	}, 2, -1, 1, nil, 1e-12)
	if err != nil || math.Abs(r.Value-2*math.Sqrt2) > 1e-12 {
		t.Errorf("(t²,t²): S = %v, %v; want 2√2", r.Value, err)
	}
}

// The reported error estimate must bound the true error, at loose tolerances
// too (where the true error is not negligible).
func TestErrorEstimateHonest(t *testing.T) {
	for _, cf := range closedForms {
		for _, tol := range []float64{1e-2, 1e-4, 1e-6, 1e-8, 1e-11} {
			r, err := GaussLength(cf.c, cf.n, cf.lo, cf.hi, nil, tol)
			if err != nil {
				t.Errorf("%s tol %g: %v", cf.name, tol, err)
				continue
			}
			if d := math.Abs(r.Value - cf.gauss); d > r.ErrorEstimate {
				t.Errorf("%s tol %g: G error %g > estimate %g", cf.name, tol, d, r.ErrorEstimate)
			}
			if r.ErrorEstimate > tol {
				t.Errorf("%s tol %g: estimate %g above tolerance", cf.name, tol, r.ErrorEstimate)
			}
			if math.IsNaN(cf.arc) {
				continue
			}
			r, err = ArcLength(cf.c, cf.n, cf.lo, cf.hi, nil, tol)
			if err != nil {
				t.Errorf("%s tol %g: %v", cf.name, tol, err)
				continue
			}
			if d := math.Abs(r.Value - cf.arc); d > r.ErrorEstimate {
				t.Errorf("%s tol %g: S error %g > estimate %g", cf.name, tol, d, r.ErrorEstimate)
			}
		}
	}
}

// polyline is the piecewise-linear path with velocity d1 before α = 0.5 and d2
// from 0.5 on (right derivative at the kink).
func polyline(d1, d2 []float64) Curve {
	return func(t float64, v, a []float64) {
		d := d1
		if t >= 0.5 {
			d = d2
		}
		copy(v, d)
		for i := range a {
			a[i] = 0
		}
	}
}

func TestCornerGaussLength(t *testing.T) {
	for _, beta := range []float64{1e-9, 0.3, math.Pi / 2, 0.55 * math.Pi, 2.5, math.Pi - 1e-8, math.Pi} {
		s, c := math.Sincos(beta)
		d1 := []float64{0.7, 0, 0}
		d2 := []float64{3 * c, 3 * s, 0}
		k := []Kink{{Alpha: 0.5, Left: d1, Right: d2}}
		r, err := GaussLength(polyline(d1, d2), 3, 0, 1, k, 1e-10)
		if err != nil {
			t.Errorf("β = %v: %v", beta, err)
			continue
		}
		if math.Abs(r.Value-beta) > 1e-14*math.Max(beta, 1) || r.Integral != 0 || r.Corners != r.Value {
			t.Errorf("β = %v: %+v", beta, r)
		}
		// A corner just before hi, after the last Kronrod node, is also
		// reported.
		late := func(t float64, v, a []float64) {
			polyline(d1, d2)(t-0.4999, v, a)
		}
		_, err = GaussLength(late, 3, 0, 1, nil, 1e-6)
		var tj *TangentJumpError
		if beta > 1e-6 && (!errors.As(err, &tj) || math.Abs(tj.Alpha-0.9999) > 1e-12) {
			t.Errorf("β = %v, corner at 0.9999 without kink: err = %v", beta, err)
		}
		// Without the kink the corner is found and reported, not missed.
		_, err = GaussLength(polyline(d1, d2), 3, 0, 1, nil, 1e-6)
		if beta > 1e-6 {
			if !errors.As(err, &tj) || math.Abs(tj.Alpha-0.5) > 1e-12 || math.Abs(tj.Angle-beta) > 1e-12 {
				t.Errorf("β = %v without kink: err = %v", beta, err)
			}
		}
	}
	// A straight segment has G = 0, and so does a kink that only changes speed.
	d1, d2 := []float64{1, 2, 3}, []float64{2, 4, 6}
	r, err := GaussLength(polyline(d1, d2), 3, 0, 1, []Kink{{0.5, d1, d2}}, 1e-10)
	if err != nil || r.Value != 0 {
		t.Errorf("straight: %+v, %v", r, err)
	}
}

func TestKinksSplitSmoothPieces(t *testing.T) {
	// A quarter circle (α ∈ [0, 0.4]) followed, after a corner of π/3, by a
	// half circle turning the other way: G = π/2 + π/3 + π.
	q, h := arc(1, math.Pi/2), arc(2, -math.Pi)
	c := func(t float64, v, a []float64) {
		if t < 0.4 {
			q(t/0.4, v, a)
			for i := range v {
				v[i] /= 0.4
				a[i] /= 0.16
			}
			return
		}
		// The second arc starts with direction (0, −1) (angle −π/2);
		// rotate it by 7π/6 to start at angle 2π/3, π/3 away from the
		// first arc's end direction (−1, 0).
		h((t-0.4)/0.6, v, a)
		s, co := math.Sincos(7 * math.Pi / 6)
		for _, x := range [][]float64{v, a} {
			x[0], x[1] = co*x[0]-s*x[1], s*x[0]+co*x[1]
		}
		for i := range v {
			v[i] /= 0.6
			a[i] /= 0.36
		}
	}
	left, right := make([]float64, 2), make([]float64, 2)
	tmp := make([]float64, 2)
	q(1, left, tmp)
	c(0.4, right, tmp)
	beta, _ := CornerAngle(left, right)
	if math.Abs(beta-math.Pi/3) > 1e-14 {
		t.Errorf("corner %v, want π/3", beta)
	}
	r, err := GaussLength(c, 2, 0, 1, []Kink{{0.4, left, right}}, 1e-10)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Pi/2 + math.Pi/3 + math.Pi; math.Abs(r.Value-want) > 1e-9 || math.Abs(r.Corners-math.Pi/3) > 1e-14 {
		t.Errorf("G = %v (corners %v), want %v", r.Value, r.Corners, want)
	}
	// Kinks at the ends add no corner; one at hi supplies T(hi⁻), which
	// must match the path (T(1) = (−sin 1, cos 1) on arc(1, 1)).
	end := []float64{-math.Sin(1), math.Cos(1)}
	r2, err := GaussLength(arc(1, 1), 2, 0, 1, []Kink{{0, []float64{1, 0}, []float64{0, 1}}, {1, end, []float64{0, 1}}}, 1e-10)
	if err != nil || math.Abs(r2.Value-1) > 1e-10 || r2.Corners != 0 {
		t.Errorf("end kinks: %+v %v", r2, err)
	}
	_, err = GaussLength(arc(1, 1), 2, 0, 1, []Kink{{1, []float64{1, 0}, []float64{0, 1}}}, 1e-10)
	var tj *TangentJumpError
	if !errors.As(err, &tj) || tj.Alpha != 1 {
		t.Errorf("kink at hi disagreeing with the path: %v", err)
	}
	_, err = GaussLength(arc(1, 1), 2, 0, 1, []Kink{{1.5, []float64{1, 0}, []float64{0, 1}}}, 1e-10)
	if !errors.Is(err, ErrBadKink) {
		t.Errorf("kink outside: %v", err)
	}
	_, err = GaussLength(arc(1, 1), 2, 0, 1, []Kink{{0.5, []float64{1, 0}, []float64{0, 1}}, {0.5, []float64{1, 0}, []float64{0, 1}}}, 1e-10)
	if !errors.Is(err, ErrBadKink) {
		t.Errorf("repeated kink: %v", err)
	}
	_, err = GaussLength(arc(1, 1), 2, 0, 1, []Kink{{0.5, []float64{0, 0}, []float64{0, 1}}}, 1e-10)
	var zs *ZeroSpeedError
	if !errors.As(err, &zs) || zs.Alpha != 0.5 {
		t.Errorf("zero kink velocity: %v", err)
	}
}

func TestZeroSpeedReported(t *testing.T) {
	// (t², t²) on [−1, 1]: the centre Kronrod node is α = 0.
	c := func(t float64, v, a []float64) { v[0], v[1], a[0], a[1] = 2*t, 2*t, 2, 2 }
	r, err := GaussLength(c, 2, -1, 1, nil, 1e-8)
	var zs *ZeroSpeedError
	if !errors.As(err, &zs) || zs.Alpha != 0 || !errors.Is(err, ErrZeroSpeed) || math.IsNaN(r.Value) {
		t.Errorf("(t²,t²): %+v, %v", r, err)
	}
	// The cusp (t³, t²) at 0 lies between nodes on [−0.3, 1]: the tangent
	// reverses there, so it is found by bisection.
	cusp := func(t float64, v, a []float64) { v[0], v[1], a[0], a[1] = 3*t*t, 2*t, 6*t, 2 }
	r, err = GaussLength(cusp, 2, -0.3, 1, nil, 1e-8)
	if !errors.As(err, &zs) || math.Abs(zs.Alpha) > 1e-6 || math.IsNaN(r.Value) {
		t.Errorf("(t³,t²): %+v, %v", r, err)
	}
	// The same cusp moved to α0, including next to hi, after the last node.
	for _, a0 := range []float64{0.123456789, 0.3137, 0.9999} {
		shifted := func(t float64, v, a []float64) { cusp(t-a0, v, a) }
		_, err = GaussLength(shifted, 2, 0, 1, nil, 1e-8)
		if !errors.As(err, &zs) || math.Abs(zs.Alpha-a0) > 1e-6 {
			t.Errorf("cusp at %v: %v", a0, err)
		}
	}
	// A zero speed at lo itself is allowed: (t², t³) on [0, 1] turns by
	// atan(3/2) (tangent angle atan(3t/2)).
	r, err = GaussLength(func(t float64, v, a []float64) { v[0], v[1], a[0], a[1] = 2*t, 3*t*t, 2, 6*t }, 2, 0, 1, nil, 1e-10)
	if err != nil || math.Abs(r.Value-math.Atan(1.5)) > 1e-9 {
		t.Errorf("(t²,t³): %+v, %v", r, err)
	}
	// Pointwise: no NaN, ErrZeroSpeed.
	z := []float64{0, 0, 0}
	one := []float64{1, 2, 3}
	if _, err := TurningRate(z, one); err != ErrZeroSpeed {
		t.Errorf("TurningRate: %v", err)
	}
	if _, err := Curvature(z, one); err != ErrZeroSpeed {
		t.Errorf("Curvature: %v", err)
	}
	if err := UnitTangent(make([]float64, 3), z); err != ErrZeroSpeed {
		t.Errorf("UnitTangent: %v", err)
	}
	if err := TangentDerivative(make([]float64, 3), z, one); err != ErrZeroSpeed {
		t.Errorf("TangentDerivative: %v", err)
	}
	if _, err := CornerAngle(z, one); err != ErrZeroSpeed {
		t.Errorf("CornerAngle: %v", err)
	}
	if _, err := TurningRateFromSums(0, 0, 1); err != ErrZeroSpeed {
		t.Errorf("TurningRateFromSums: %v", err)
	}
	var s StackedSums
	s.Add(z, one)
	if _, err := s.TurningRate(); err != ErrZeroSpeed {
		t.Errorf("StackedSums: %v", err)
	}
}

func TestNonFiniteAndBudget(t *testing.T) {
	_, err := GaussLength(func(t float64, v, a []float64) {
		v[0], v[1], a[0], a[1] = 1, 0, math.NaN(), 0
	}, 2, 0, 1, nil, 1e-8)
	if !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN acceleration: %v", err)
	}
	r, err := Adaptive{Tol: 1e-14, MaxEvaluations: 100}.GaussLength(sine, 2, 0, 1, nil)
	if !errors.Is(err, ErrNotConverged) || r.Evaluations > 100 || r.ErrorEstimate <= 1e-14 || r.Value == 0 {
		t.Errorf("budget: %+v, %v", r, err)
	}
	if d := math.Abs(r.Value - 4*math.Atan(2*math.Pi)); d > r.ErrorEstimate {
		t.Errorf("budget: error %g above estimate %g", d, r.ErrorEstimate)
	}
}

func TestIntegrate(t *testing.T) {
	// ∫₀¹ √x = 2/3 (singular derivative at 0), split at 0.5 for no reason.
	r, err := Integrate(func(x float64) (float64, error) { return math.Sqrt(x), nil }, []float64{0, 0.5, 1}, 1e-10)
	if err != nil || math.Abs(r.Value-2.0/3) > r.ErrorEstimate || r.ErrorEstimate > 1e-10 {
		t.Errorf("√x: %+v %v", r, err)
	}
	boom := errors.New("boom")
	if _, err := Integrate(func(x float64) (float64, error) { return 0, boom }, []float64{0, 1}, 1e-10); err != boom {
		t.Errorf("integrand error: %v", err)
	}
}
