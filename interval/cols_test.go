package interval

import (
	"math"
	"math/big"
	"testing"

	"pgregory.net/rapid"
)

// exactWide is exact at any float64 products' sum (4400 bits cover the
// range 2⁻²¹⁴⁸ … 2²⁰⁴⁸ of a product of two float64 and its sums).
func exactWide(v float64) *big.Float { return new(big.Float).SetPrec(4400).SetFloat64(v) }

// drawMag draws a magnitude for the entries of one case: ordinary,
// tiny (products underflow), subnormal or huge.
func drawMag(t *rapid.T, name string) float64 {
	return rapid.SampledFrom([]float64{1, 1e-3, 1e-160, 1e-310, 1e150}).Draw(t, name)
}

// TestMulColsEnclosesExactProducts: MulCols's enclosure of scale·W·X
// contains the exact product (math/big) of point matrices drawn inside the
// boxes, at their corners (the values most likely to fall outside) and
// inside; a column of x that is exactly 0 gives exactly 0; and the
// enclosure is not wider than MulNT's on the same data (up to a relative
// 1e-9, MulNT being the product it replaces; 4 times when factors or
// products are subnormal). Point x, point w (rad nil),
// zero w, exact zeros, underflowing and huge magnitudes and scales 2,
// −1, −4 are drawn.
func TestMulColsEnclosesExactProducts(t *testing.T) { checkMulCols(t, false) }

// TestMulCols32EnclosesExactProducts is TestMulColsEnclosesExactProducts
// for MulCols32 (the radius product in float32, factors rounded up by
// up32): the enclosure contains the exact product, exact zero columns
// stay exactly 0, and it is at most 1e-4 relative (plus (64K+16)·2⁻¹²⁶
// absolute: the flush-to-zero term and factors below 2⁻¹²⁶ counted as
// 2⁻¹²⁶, and two float64 steps of each bound; 4 times where factors or products are subnormal in float64) wider than MulNT's, except where a radius factor
// or product exceeds float32's range (magnitudes 1e150: the radius is
// then +Inf, the enclosure the whole line, never wrong nor NaN).
func TestMulCols32EnclosesExactProducts(t *testing.T) { checkMulCols(t, true) }

func checkMulCols(t *testing.T, f32 bool) {
	rapid.Check(t, func(t *rapid.T) {
		m := rapid.IntRange(1, 4).Draw(t, "m")
		k := rapid.IntRange(1, 6).Draw(t, "k")
		n := rapid.IntRange(1, 5).Draw(t, "n")
		xmag, wmag := drawMag(t, "xmag"), drawMag(t, "wmag")
		xKind := rapid.SampledFrom([]string{"interval", "point", "mixed"}).Draw(t, "xKind")
		wKind := rapid.SampledFrom([]string{"interval", "point", "zero"}).Draw(t, "wKind")
		scale := rapid.SampledFrom([]float64{1, 2, -1, -4}).Draw(t, "scale")
		zeroCol := rapid.IntRange(-1, n-1).Draw(t, "zeroCol")
		// x [k, n] as intervals, and the point drawn in each
		xlo, xhi, xp := make([]float64, k*n), make([]float64, k*n), make([]float64, k*n)
		for r := 0; r < k; r++ {
			for j := 0; j < n; j++ {
				q := r*n + j
				if j == zeroCol || rapid.IntRange(0, 5).Draw(t, "xzero") == 0 {
					continue // an exact 0
				}
				c := xmag * rapid.Float64Range(-10, 10).Draw(t, "xm")
				rad := 0.0
				if xKind == "interval" || (xKind == "mixed" && rapid.Bool().Draw(t, "xrad")) {
					rad = xmag * rapid.Float64Range(0, 0.5).Draw(t, "xr")
				}
				xlo[q], xhi[q] = Down(c-rad), Up(c+rad)
				if rad == 0 {
					xlo[q], xhi[q] = c, c
				}
				switch rapid.IntRange(0, 2).Draw(t, "xcorner") {
				case 0:
					xp[q] = xlo[q]
				case 1:
					xp[q] = xhi[q]
				default:
					xp[q] = xlo[q] + (xhi[q]-xlo[q])*rapid.Float64Range(0, 1).Draw(t, "xs")
				}
			}
		}
		wm, wp := make([]float64, m*k), make([]float64, m*k)
		var wr []float64
		if wKind == "interval" {
			wr = make([]float64, m*k)
		}
		if wKind != "zero" {
			for q := range wm {
				if rapid.IntRange(0, 5).Draw(t, "wzero") == 0 {
					continue
				}
				wm[q] = wmag * rapid.Float64Range(-10, 10).Draw(t, "wm")
				wp[q] = wm[q]
				if wr != nil {
					wr[q] = wmag * rapid.Float64Range(0, 0.5).Draw(t, "wr")
					wp[q] = wm[q] + wr[q]*rapid.SampledFrom([]float64{-1, 1, 0.3}).Draw(t, "ws")
				}
			}
		}
		w := NewWeights(m, k, wm, wr)
		lo, hi := make([]float64, m*n), make([]float64, m*n)
		if f32 {
			x := Cols32{K: k, N: n, Mid: make([]float64, k*n), Abs: make([]float32, 2*k*n)}
			MidRad32(xlo, xhi, x.Mid, x.Abs[:k*n], x.Abs[k*n:])
			MulCols32(w, x, scale, lo, hi)
		} else {
			x := Cols{K: k, N: n, Mid: make([]float64, k*n), Abs: make([]float64, 2*k*n)}
			MidRad(xlo, xhi, x.Mid, x.Abs[:k*n], x.Abs[k*n:])
			MulCols(w, x, scale, lo, hi)
		}
		// MulNT on the transposes: X [n, k] · Wᵀ
		xt := NewMatrix(n, k)
		for r := 0; r < k; r++ {
			for j := 0; j < n; j++ {
				xt.Set(j, r, I{xlo[r*n+j], xhi[r*n+j]})
			}
		}
		ref := MulNT(xt, w, scale)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := exactWide(0)
				for r := 0; r < k; r++ {
					s.Add(s, new(big.Float).SetPrec(4400).Mul(exactWide(wp[i*k+r]), exactWide(xp[r*n+j])))
				}
				s.Mul(s, exactWide(scale))
				got := I{lo[i*n+j], hi[i*n+j]}
				if !got.Valid() || exactWide(got.Lo).Cmp(s) > 0 {
					t.Fatalf("(W·X)[%d,%d] = %v does not contain the exact %s", i, j, got, s.Text('g', 20))
				}
				if s.Cmp(exactWide(got.Hi)) > 0 {
					t.Fatalf("(W·X)[%d,%d] = %v does not contain the exact %s", i, j, got, s.Text('g', 20))
				}
				if j == zeroCol && (got.Lo != 0 || got.Hi != 0) {
					t.Fatalf("zero column %d: %v, want exactly 0", j, got)
				}
				r := ref.At(j, i)
				rel := 1 + 1e-9
				if min(xmag, wmag, xmag*wmag) < 1e-300 { // subnormal factors or products: the two forms round them differently
					rel = 4
				}
				abs := 1e-300
				if f32 {
					rel = max(rel, 1+1e-4)
					// factors below 2⁻¹²⁶ count as 2⁻¹²⁶ (up32), |entries| ≤ 10
					abs = float64(64*k+16) * 0x1p-126 * math.Abs(scale)
					// a slightly larger radius may cross to the next float64 of
					// the bounds on either side: two steps each
					big := max(math.Abs(r.Lo), math.Abs(r.Hi))
					abs += 4 * (math.Nextafter(big, math.Inf(1)) - big)
					if max(xmag, wmag) > 1e30 { // beyond float32: an infinite radius is allowed
						continue
					}
				}
				if wd, rw := got.Hi-got.Lo, r.Hi-r.Lo; !math.IsInf(rw, 0) && wd > rw*rel+abs {
					t.Fatalf("(W·X)[%d,%d] = %v: width %g, MulNT's %v is %g", i, j, got, wd, r, rw)
				}
			}
		}
	})
}

// TestUp32: up32(x) is the smallest float32 ≥ max(x, 2⁻¹²⁶) for x > 0
// (+Inf beyond float32's range), +0 for +0 and NaN for NaN, over every
// binade of float64 including subnormals.
func TestUp32(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := math.Ldexp(rapid.Float64Range(0.5, 1).Draw(t, "m"), rapid.IntRange(-1074, 1024).Draw(t, "e"))
		if rapid.IntRange(0, 9).Draw(t, "float32") == 0 { // a float32 itself
			x = float64(float32(x))
		}
		f := up32(x)
		switch {
		case x == 0:
			if f != 0 {
				t.Fatalf("up32(0) = %v", f)
			}
		case float64(f) < max(x, 0x1p-126):
			t.Fatalf("up32(%v) = %v is below max(x, 2⁻¹²⁶)", x, f)
		case !math.IsInf(float64(f), 1) && float64(math.Nextafter32(f, 0)) >= max(x, 0x1p-126):
			t.Fatalf("up32(%v) = %v: the float32 below it is already ≥ max(x, 2⁻¹²⁶)", x, f)
		case math.IsInf(float64(f), 1) && x <= math.MaxFloat32:
			t.Fatalf("up32(%v) = +Inf within float32's range", x)
		}
	})
	if f := up32(math.NaN()); f == f {
		t.Fatalf("up32(NaN) = %v", f)
	}
}
