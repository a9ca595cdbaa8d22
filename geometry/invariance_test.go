package geometry

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"pgregory.net/rapid"
)

// polyCurve is γ(α) = Σ_k c[k] α^k in R^d (c[k] is [d]), with its
// derivatives.
type polyCurve struct {
	c [][]float64
	d int
}

func (p polyCurve) pos(t float64, x []float64) {
	for i := range x {
		x[i] = 0
	}
	for k := len(p.c) - 1; k >= 0; k-- {
		for i := range x {
			x[i] = x[i]*t + p.c[k][i]
		}
	}
}

func (p polyCurve) curve(t float64, v, a []float64) {
	for i := 0; i < p.d; i++ {
		v[i], a[i] = 0, 0
	}
	for k := len(p.c) - 1; k >= 1; k-- {
		for i := 0; i < p.d; i++ {
			v[i] = v[i]*t + float64(k)*p.c[k][i]
			if k >= 2 {
				a[i] = a[i]*t + float64(k*(k-1))*p.c[k][i]
			}
		}
	}
}

// drawPoly draws a polynomial curve of degree 2..4 in R³ or R⁵ whose speed on
// [0, 1] stays above a tenth of its maximum (checked on a fine grid; draws
// that fail are skipped).
func drawPoly(t *rapid.T) polyCurve {
	d := rapid.SampledFrom([]int{3, 5}).Draw(t, "d")
	deg := rapid.IntRange(2, 4).Draw(t, "deg")
	p := polyCurve{d: d}
	for k := 0; k <= deg; k++ {
		c := make([]float64, d)
		for i := range c {
			c[i] = rapid.Float64Range(-2, 2).Draw(t, "c")
		}
		p.c = append(p.c, c)
	}
	v, a := make([]float64, d), make([]float64, d)
	lo, hi := math.Inf(1), 0.0
	for j := 0; j <= 400; j++ {
		p.curve(float64(j)/400, v, a)
		s := Speed(v)
		lo, hi = math.Min(lo, s), math.Max(hi, s)
	}
	if lo < 0.1*hi || hi < 1e-3 {
		t.Skip("speed nearly vanishes")
	}
	return p
}

// randomOrthogonal returns the Q factor of the QR decomposition of a random
// d×d matrix.
func randomOrthogonal(t *rapid.T, d int) *mat.Dense {
	m := mat.NewDense(d, d, nil)
	for i := 0; i < d; i++ {
		for j := 0; j < d; j++ {
			m.Set(i, j, rapid.Float64Range(-1, 1).Draw(t, "m"))
		}
	}
	var qr mat.QR
	qr.Factorize(m)
	var q mat.Dense
	qr.QTo(&q)
	return &q
}

const invTol = 1e-10

func gauss(t *rapid.T, c Curve, n int) Result {
	r, err := GaussLength(c, n, 0, 1, nil, invTol)
	if err != nil {
		t.Fatalf("GaussLength: %v", err)
	}
	return r
}

func sameG(t *rapid.T, name string, r0, r1 Result) {
	if d := math.Abs(r0.Value - r1.Value); d > 1e-9+r0.ErrorEstimate+r1.ErrorEstimate {
		t.Fatalf("%s: G = %.14g vs %.14g (diff %g)", name, r0.Value, r1.Value, d)
	}
}

// G is invariant under rotation, scaling by c ≠ 0, reversal and
// reparametrisation (THEORY.md §3). (Translation leaves v and a unchanged, so a
// Curve cannot express it; ChordDeviation's translation invariance is tested
// below.)
func TestGaussLengthInvariance(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := drawPoly(t)
		d := p.d
		r0 := gauss(t, p.curve, d)

		Q := randomOrthogonal(t, d)
		sameG(t, "rotation", r0, gauss(t, func(s float64, v, a []float64) {
			p.curve(s, v, a)
			vv, aa := mat.NewVecDense(d, append([]float64(nil), v...)), mat.NewVecDense(d, append([]float64(nil), a...))
			mat.NewVecDense(d, v).MulVec(Q, vv)
			mat.NewVecDense(d, a).MulVec(Q, aa)
		}, d))

		c := rapid.Float64Range(0.2, 5).Draw(t, "scale")
		if rapid.Bool().Draw(t, "negative") {
			c = -c
		}
		sameG(t, "scaling", r0, gauss(t, func(s float64, v, a []float64) {
			p.curve(s, v, a)
			for i := range v {
				v[i] *= c
				a[i] *= c
			}
		}, d))

		sameG(t, "reversal", r0, gauss(t, func(s float64, v, a []float64) {
			p.curve(1-s, v, a)
			for i := range v {
				v[i] = -v[i]
			}
		}, d))

		// α = φ(t) = t + k sin(2πt)/(2π), φ′ = 1 + k cos 2πt > 0.
		k := rapid.Float64Range(-0.9, 0.9).Draw(t, "k")
		reparam := func(phi, dphi, ddphi func(float64) float64) Curve {
			return func(s float64, v, a []float64) {
				p.curve(phi(s), v, a)
				f1, f2 := dphi(s), ddphi(s)
				for i := range v {
					a[i] = f2*v[i] + f1*f1*a[i]
					v[i] *= f1
				}
			}
		}
		w := 2 * math.Pi
		sameG(t, "reparametrisation t + k sin", r0, gauss(t, reparam(
			func(s float64) float64 { return s + k*math.Sin(w*s)/w },
			func(s float64) float64 { return 1 + k*math.Cos(w*s) },
			func(s float64) float64 { return -k * w * math.Sin(w*s) },
		), d))
		// α = t²: zero speed at t = 0 = lo, allowed there.
		sameG(t, "reparametrisation t²", r0, gauss(t, reparam(
			func(s float64) float64 { return s * s },
			func(s float64) float64 { return 2 * s },
			func(s float64) float64 { return 2 },
		), d))

		// The chord angle is at most G (geodesic ≤ path length on the sphere).
		v0, v1, tmp := make([]float64, d), make([]float64, d), make([]float64, d)
		p.curve(0, v0, tmp)
		p.curve(1, v1, tmp)
		if ang, _ := CornerAngle(v0, v1); ang > r0.Value+1e-9 {
			t.Fatalf("angle(T(0), T(1)) = %v > G = %v", ang, r0.Value)
		}
	})
}

// ChordDeviation is invariant under translation, rotation and reversal and
// scales by c² under scaling by c.
func TestChordDeviationInvariance(t *testing.T) {
	alphas, w := LegendrePanels([]float64{0, 0.5, 1}, 10)
	rapid.Check(t, func(t *rapid.T) {
		p := drawPoly(t)
		d := p.d
		sample := func(f func([]float64) []float64, reverse bool) float64 {
			pt := func(a float64) []float64 {
				if reverse {
					a = 1 - a
				}
				x := make([]float64, d)
				p.pos(a, x)
				return f(x)
			}
			g := make([][]float64, len(alphas))
			for j, a := range alphas {
				g[j] = pt(a)
			}
			dev, err := ChordDeviation(pt(0), pt(1), g, w)
			if err != nil {
				t.Skip("chord vanishes")
			}
			return dev
		}
		id := func(x []float64) []float64 { return x }
		d0 := sample(id, false)
		check := func(name string, got, want float64) {
			if math.Abs(got-want) > 1e-12*(1+want) {
				t.Fatalf("%s: %v, want %v", name, got, want)
			}
		}
		shift := make([]float64, d)
		for i := range shift {
			shift[i] = rapid.Float64Range(-10, 10).Draw(t, "shift")
		}
		check("translation", sample(func(x []float64) []float64 {
			for i := range x {
				x[i] += shift[i]
			}
			return x
		}, false), d0)
		Q := randomOrthogonal(t, d)
		check("rotation", sample(func(x []float64) []float64 {
			y := mat.NewVecDense(d, nil)
			y.MulVec(Q, mat.NewVecDense(d, x))
			return y.RawVector().Data
		}, false), d0)
		c := rapid.Float64Range(-5, 5).Filter(func(c float64) bool { return math.Abs(c) > 0.1 }).Draw(t, "c")
		check("scaling", sample(func(x []float64) []float64 {
			for i := range x {
				x[i] *= c
			}
			return x
		}, false), c*c*d0)
		check("reversal", sample(id, true), d0)
	})
}
