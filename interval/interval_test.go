package interval

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// drawI draws an interval [lo, lo+w] and a point inside it.
func drawI(t *rapid.T, name string, lo, hi float64) (I, float64) {
	a := rapid.Float64Range(lo, hi).Draw(t, name+".lo")
	w := rapid.Float64Range(0, 2).Draw(t, name+".width")
	if rapid.Bool().Draw(t, name+".point") {
		w = 0
	}
	x := I{a, a + w}
	s := rapid.Float64Range(0, 1).Draw(t, name+".at")
	p := math.Min(a+s*w, x.Hi)
	return x, p
}

func exact(v float64) *big.Float { return new(big.Float).SetPrec(2000).SetFloat64(v) }

func containsExact(x I, v *big.Float) bool {
	return exact(x.Lo).Cmp(v) <= 0 && v.Cmp(exact(x.Hi)) <= 0
}

// TestArithmeticEnclosesExactResults: for points inside the operands, the
// exact real result (computed with math/big at 2000 bits) lies inside the
// outward-rounded interval result (THEORY.md §7: soundness first).
func TestArithmeticEnclosesExactResults(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x, p := drawI(t, "x", -1e3, 1e3)
		y, q := drawI(t, "y", -1e3, 1e3)
		P, Q := exact(p), exact(q)
		for _, c := range []struct {
			name string
			got  I
			want *big.Float
		}{
			{"Add", Add(x, y), new(big.Float).SetPrec(2000).Add(P, Q)},
			{"Sub", Sub(x, y), new(big.Float).SetPrec(2000).Sub(P, Q)},
			{"Mul", Mul(x, y), new(big.Float).SetPrec(2000).Mul(P, Q)},
			{"Sqr", Sqr(x), new(big.Float).SetPrec(2000).Mul(P, P)},
			{"Cube", Cube(x), new(big.Float).SetPrec(2000).Mul(P, new(big.Float).SetPrec(2000).Mul(P, P))},
			{"Neg", Neg(x), new(big.Float).SetPrec(2000).Neg(P)},
			{"Scale", Scale(q, x), new(big.Float).SetPrec(2000).Mul(Q, P)},
			{"AddF", AddF(x, q), new(big.Float).SetPrec(2000).Add(P, Q)},
		} {
			if !containsExact(c.got, c.want) {
				t.Fatalf("%s(%v, %v) at (%v, %v) = %v, exact %s", c.name, x, y, p, q, c.got, c.want.Text('g', 20))
			}
		}
		if !y.StraddlesZero() && y.Lo != 0 && y.Hi != 0 {
			want := new(big.Float).SetPrec(2000).Quo(P, Q)
			if got := Div(x, y); !containsExact(got, want) {
				t.Fatalf("Div(%v, %v) at (%v, %v) = %v, exact %s", x, y, p, q, got, want.Text('g', 20))
			}
			if got := Recip(y); !containsExact(got, new(big.Float).SetPrec(2000).Quo(exact(1), Q)) {
				t.Fatalf("Recip(%v) at %v = %v", y, q, got)
			}
		}
	})
}

// TestElementaryFunctionsEnclosePoints: the enclosures of the elementary
// functions contain their float64 values at points inside (which are within
// a few ulps of the true values, inside the 2⁻⁵⁰ widening), and are
// monotone where the function is.
func TestElementaryFunctionsEnclosePoints(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x, p := drawI(t, "x", -30, 30)
		for _, c := range []struct {
			name string
			got  I
			want float64
		}{
			{"Exp", Exp(x), math.Exp(p)},
			{"Tanh", Tanh(x), math.Tanh(p)},
			{"Sigmoid", Sigmoid(x), 1 / (1 + math.Exp(-p))},
			{"Softplus", Softplus(x), math.Log1p(math.Exp(p))},
			{"NormCDF", NormCDF(x), 0.5 * math.Erfc(-p/math.Sqrt2)},
			{"NormPDF", NormPDF(x), math.Exp(-p*p/2) / math.Sqrt(2*math.Pi)},
		} {
			if !c.got.Contains(c.want) || !c.got.Valid() {
				t.Fatalf("%s(%v) = %v does not contain %v (at %v)", c.name, x, c.got, c.want, p)
			}
		}
		if x.Lo > -1 {
			if got := Log1p(x); !got.Contains(math.Log1p(p)) {
				t.Fatalf("Log1p(%v) = %v does not contain %v", x, got, math.Log1p(p))
			}
		}
	})
}

// TestMulNTPointInput: for a point x (every entry one finite float64, as
// the network input), MulNT takes the one-radius-gemm path (mulPointNT);
// its enclosure contains the exact product X·Wᵀ for every W in the box
// (drawn, with entries of either sign, exact zeros, x all ≥ 0 or mixed,
// and a scale of ±2), is no wider than 1e-12 relative to |X|·(|Wm| + Wr)
// plus 2·Wr-sized terms, and a zero row of x gives exactly 0 (issue 12).
func TestMulNTPointInput(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rapid.IntRange(1, 4).Draw(t, "r")
		k := rapid.IntRange(1, 6).Draw(t, "k")
		c := rapid.IntRange(1, 4).Draw(t, "c")
		nonneg := rapid.Bool().Draw(t, "nonneg")
		scale := rapid.SampledFrom([]float64{1, 2, -2}).Draw(t, "scale")
		xs := make([]float64, r*k)
		for i := range xs {
			lo := -10.0
			if nonneg {
				lo = 0
			}
			xs[i] = rapid.Float64Range(lo, 10).Draw(t, "x")
			if rapid.IntRange(0, 4).Draw(t, "zero") == 0 {
				xs[i] = 0
			}
		}
		zeroRow := rapid.IntRange(-1, r-1).Draw(t, "zero row")
		if zeroRow >= 0 {
			clear(xs[zeroRow*k : (zeroRow+1)*k])
		}
		wm, wr, wp := make([]float64, c*k), make([]float64, c*k), make([]float64, c*k)
		point := rapid.Bool().Draw(t, "point w")
		for i := range wm {
			wm[i] = rapid.Float64Range(-10, 10).Draw(t, "wm")
			if !point {
				wr[i] = rapid.Float64Range(0, 0.5).Draw(t, "wr")
			}
			wp[i] = wm[i] + wr[i]*rapid.Float64Range(-1, 1).Draw(t, "ws")
		}
		var rad []float64
		if !point {
			rad = wr
		}
		x := PointMatrix(r, k, xs)
		if _, ok := finitePoint(x); !ok {
			t.Fatalf("finitePoint: a point matrix not recognised")
		}
		got := MulNT(x, NewWeights(c, k, wm, rad), scale)
		for i := 0; i < r; i++ {
			for o := 0; o < c; o++ {
				s, mag := exact(0), 0.0
				for j := 0; j < k; j++ {
					s.Add(s, new(big.Float).SetPrec(2000).Mul(exact(xs[i*k+j]), exact(wp[o*k+j])))
					mag += math.Abs(xs[i*k+j]) * (math.Abs(wm[o*k+j]) + wr[o*k+j])
				}
				s.Mul(s, exact(scale))
				v := got.At(i, o)
				if !containsExact(v, s) {
					t.Fatalf("(X·Wᵀ)[%d,%d] = %v does not contain the exact %s", i, o, v, s.Text('g', 20))
				}
				slack := 0.0
				for j := 0; j < k; j++ {
					slack += math.Abs(xs[i*k+j]) * wr[o*k+j]
				}
				if w := v.Hi - v.Lo; w > 2*math.Abs(scale)*(1.01*slack+1e-12*mag)+1e-300 {
					t.Fatalf("(X·Wᵀ)[%d,%d] = %v: width %g, want at most about 2·|X|·Wr = %g", i, o, v, w, 2*math.Abs(scale)*slack)
				}
				if i == zeroRow && (v.Lo != 0 || v.Hi != 0) {
					t.Fatalf("zero row %d: %v, want exactly 0", i, v)
				}
			}
		}
	})
}

// TestMulNTEnclosesExactProducts: the interval matrix product X·Wᵀ with
// X, W given by midpoints and radii contains the exact product of any
// point matrices inside them.
func TestMulNTEnclosesExactProducts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rapid.IntRange(1, 4).Draw(t, "r")
		k := rapid.IntRange(1, 5).Draw(t, "k")
		c := rapid.IntRange(1, 4).Draw(t, "c")
		xm := make([]float64, r*k)
		xr := make([]float64, r*k)
		xp := make([]float64, r*k)
		for i := range xm {
			xm[i] = rapid.Float64Range(-10, 10).Draw(t, "xm")
			xr[i] = rapid.Float64Range(0, 0.5).Draw(t, "xr")
			xp[i] = xm[i] + xr[i]*rapid.Float64Range(-1, 1).Draw(t, "xs")
		}
		wm := make([]float64, c*k)
		wr := make([]float64, c*k)
		wp := make([]float64, c*k)
		for i := range wm {
			wm[i] = rapid.Float64Range(-10, 10).Draw(t, "wm")
			wr[i] = rapid.Float64Range(0, 0.5).Draw(t, "wr")
			wp[i] = wm[i] + wr[i]*rapid.Float64Range(-1, 1).Draw(t, "ws")
		}
		x := NewMatrix(r, k)
		for i := 0; i < r; i++ {
			for j := 0; j < k; j++ {
				x.Set(i, j, I{Down(xm[i*k+j] - xr[i*k+j]), Up(xm[i*k+j] + xr[i*k+j])})
			}
		}
		w := NewWeights(c, k, wm, wr)
		got := MulNT(x, w, 1)
		for i := 0; i < r; i++ {
			for o := 0; o < c; o++ {
				s := exact(0)
				for j := 0; j < k; j++ {
					s.Add(s, new(big.Float).SetPrec(2000).Mul(exact(xp[i*k+j]), exact(wp[o*k+j])))
				}
				if !containsExact(got.At(i, o), s) {
					t.Fatalf("(X·Wᵀ)[%d,%d] = %v does not contain the exact %s", i, o, got.At(i, o), s.Text('g', 20))
				}
			}
		}
	})
}

// TestMulNTScaleRefused: MulNT takes only scales ±2^j with j ≥ 0 (a BLAS
// may apply gemm's α to a factor first, where 2^−j may round a subnormal),
// and refuses others by a panic naming the rule.
func TestMulNTScaleRefused(t *testing.T) {
	x := PointMatrix(1, 2, []float64{1, 2})
	w := NewWeights(1, 2, []float64{3, 4}, nil)
	for _, s := range []float64{0.5, 3, 0, -0.25, math.NaN()} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("MulNT with scale %v did not panic", s)
				}
			}()
			MulNT(x, w, s)
		}()
	}
	for _, s := range []float64{1, -1, 2, -4} {
		if got := MulNT(x, w, s).At(0, 0); !(got.Lo <= 11*s && 11*s <= got.Hi) {
			t.Errorf("MulNT with scale %v: %v does not contain %v", s, got, 11*s)
		}
	}
}

// TestMulLeftShared: one prepared left factor used for several products
// (interval.MulLeft, the dense layer's rule) gives bit for bit the products
// of a fresh preparation each time, in either order, with interval, point
// and zero rows.
func TestMulLeftShared(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := rapid.IntRange(1, 4).Draw(t, "r")
		k := rapid.IntRange(1, 5).Draw(t, "k")
		x := NewMatrix(r, k)
		point := rapid.Bool().Draw(t, "point")
		for i := range x.Lo {
			x.Lo[i] = rapid.Float64Range(-3, 3).Draw(t, "lo")
			x.Hi[i] = x.Lo[i]
			if !point {
				x.Hi[i] += rapid.Float64Range(0, 1).Draw(t, "w")
			}
		}
		if z := rapid.IntRange(-1, r-1).Draw(t, "zero row"); z >= 0 {
			clear(x.Lo[z*k : (z+1)*k])
			clear(x.Hi[z*k : (z+1)*k])
		}
		ws := make([]*Weights, 3)
		for q := range ws {
			m := rapid.IntRange(1, 3).Draw(t, "m")
			mid, rad := make([]float64, m*k), make([]float64, m*k)
			for i := range mid {
				mid[i] = rapid.Float64Range(-2, 2).Draw(t, "wm")
				rad[i] = rapid.Float64Range(0, 0.1).Draw(t, "wr")
			}
			if q == 0 {
				rad = nil
			}
			ws[q] = NewWeights(m, k, mid, rad)
		}
		l := NewMulLeft(x)
		for _, q := range rapid.Permutation([]int{0, 1, 2}).Draw(t, "order") {
			s := rapid.SampledFrom([]float64{1, 2, -2}).Draw(t, "scale")
			a, b := l.MulNT(ws[q], s), NewMulLeft(x).MulNT(ws[q], s)
			for i := range a.Lo {
				if math.Float64bits(a.Lo[i]) != math.Float64bits(b.Lo[i]) || math.Float64bits(a.Hi[i]) != math.Float64bits(b.Hi[i]) {
					t.Fatalf("product %d entry %d: shared [%v, %v], fresh [%v, %v]", q, i, a.Lo[i], a.Hi[i], b.Lo[i], b.Hi[i])
				}
			}
		}
	})
}
