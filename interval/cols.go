package interval

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// Cols is an interval matrix X [K, N] in midpoint–radius form, laid out for
// the products W·X of MulCols (a convolution's im2col patches, one column
// per output position): Mid [K, N] and Abs [2K, N], row-major with leading
// dimension N; rows 0…K−1 of Abs hold |Mid| and rows K…2K−1 radii Rad ≥ 0,
// and X ⊆ Mid ± Rad entrywise. MidRad fills such rows from intervals; the
// rows of a patch matrix are then copies (im2col) of those of the
// activations, so the conversion runs once per activation entry instead of
// once per patch entry (issue 13: ~9 times fewer for a 3×3 kernel).
type Cols struct {
	K, N     int
	Mid, Abs []float64
}

// MidRad writes, for every interval [lo[t], hi[t]], a midpoint mid[t], its
// magnitude abs[t] = |mid[t]| and a radius rad[t] with [lo, hi] ⊆ mid ± rad
// (Rump's conversion, as MulNT's: mid = lo/2 + hi/2, rad = max(hi − mid,
// mid − lo) rounded up). A finite point lo = hi gets mid = lo and rad = 0
// exactly, so an exact 0 stays an exact 0 (MulCols keeps a column of exact
// zeros exactly 0).
func MidRad(lo, hi, mid, abs, rad []float64) {
	for t, l := range lo {
		h := hi[t]
		if l == h && l-l == 0 {
			mid[t], abs[t], rad[t] = l, math.Abs(l), 0
			continue
		}
		c := 0.5*l + 0.5*h
		mid[t], abs[t], rad[t] = c, math.Abs(c), Up(max(h-c, c-l))
	}
}

// scratchPool holds MulCols's float64 scratch buffers (contents garbage).
var scratchPool sync.Pool

// Scratch returns a float64 buffer of length n from a pool shared with
// MulCols (issue 12, cert-5000: the certificate's per-(leaf, chunk)
// products allocated and zeroed tens of MB per leaf); its contents are
// garbage, so the caller must write every entry it reads. Give it back
// with PutScratch once nothing refers to it.
func Scratch(n int) *[]float64 { return getScratch(n) }

// PutScratch returns a buffer from Scratch to the pool.
func PutScratch(p *[]float64) {
	if p != nil {
		scratchPool.Put(p)
	}
}

func getScratch(n int) *[]float64 {
	if v, ok := scratchPool.Get().(*[]float64); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]float64, n)
	return &b
}

// MulCols writes into lo and hi [w.Rows, x.N] (leading dimension x.N) an
// enclosure of {scale·W·X : W ∈ w, X ∈ x}: MulNT's midpoint–radius product
// (package doc) with the second factor laid out as columns, W·X ∈
// fl(Wm·Xm) ± [U V]·[|Xm|; Xr] (U = Wr + γ|Wm|, V = |Wm| + Wr, the Weights'
// [U V]), through two BLAS products and the same rounding and underflow
// terms as MulNT's (finishNT). scale must be ±2^j with j ≥ 0 (MulCols
// panics otherwise): a BLAS may apply it to a factor before the product
// (OpenBLAS does), where 2^j·a is exact for every float64 a barring
// overflow, which gives ±Inf (the enclosure then fails, NaN or infinite,
// never wrong), but 2^−j·a may round a subnormal a. A column of x whose every entry is an
// exact 0 (Mid = Rad = 0) gives exactly 0, as does an all-zero w.
//
// Cheaper forms where a factor is a point (radius 0 everywhere): for a
// point x (finite) the radius is U·|Xm| (one product of K columns instead
// of 2K, U = Rad + γ|Wm| as in Weights); for a point w (NewWeights with
// rad nil: ΔW in a layer's velocity terms) the radius is
// |Wm|·(γ|Xm| + Xr), one product of K columns after an elementwise sum
// rounded up: |W·X − fl(Wm·Xm)| ≤ |Wm|·Xr + γ_K·|Wm|·|Xm| (Higham §3.5;
// γ = Gamma(K+2) ≥ γ_K), the same bound as the 2K-column form.
func MulCols(w *Weights, x Cols, scale float64, lo, hi []float64) {
	m, k, n := w.Rows, x.K, x.N
	lo, hi = lo[:m*n], hi[:m*n]
	if zeroProduct("MulCols", w, k, scale, lo, hi) {
		return
	}
	ax, xr := x.Abs[:k*n], x.Abs[k*n:2*k*n]
	// nz[j]: column j holds an entry that is not an exact 0 (nz[j] != 0);
	// point: every radius is 0 and every midpoint finite. nz[j] is the sum
	// of the column's |Xm| and Xr, all ≥ 0 (or NaN): a sum of non-negative
	// floats is 0 exactly when every term is +0 (a positive term makes it
	// positive, NaN stays NaN), so the branch-free sum decides the same
	// columns as testing every entry (the test's branches on data-dependent
	// zeros were ~5 % of a resnet-8 leaf, issue 13). The point scan stops
	// at the first radius that is not 0 (the leaf's passes: at once).
	nzp := getScratch(n)
	defer scratchPool.Put(nzp)
	nz := *nzp
	point := scanColumns(ax, xr, nz, k, n)
	gen := func(tb blas.Transpose, kk int, a []float64, lda int, b []float64, alpha float64, c []float64) {
		blas64.Implementation().Dgemm(blas.NoTrans, tb, m, n, kk, alpha, a, lda, b, n, 0, c, n)
	}
	gen(blas.NoTrans, k, w.Mid, k, x.Mid[:k*n], scale, lo)
	as := math.Abs(scale)
	pointW := w.Rad == nil
	switch {
	case point: // U·|Xm|: the first K columns of [U V]
		gen(blas.NoTrans, k, w.uv, 2*k, ax, as, hi)
	case pointW: // V·(γ|Xm| + Xr), V = |Wm| rounded up
		g := Gamma(k + 2)
		zp := getScratch(k * n)
		defer scratchPool.Put(zp)
		z := *zp
		for t, a := range ax {
			if a == 0 { // γ|Xm| = 0 exactly: an exact 0 keeps radius 0
				z[t] = xr[t]
				continue
			}
			z[t] = Up(Up(g*a) + xr[t])
		}
		gen(blas.NoTrans, k, w.uv[k:], 2*k, z, as, hi)
	default: // [U V]·[|Xm|; Xr]
		gen(blas.NoTrans, 2*k, w.uv, 2*k, x.Abs[:2*k*n], as, hi)
	}
	// The radius product's own rounding (a sum of at most 2K non-negative
	// products) and underflow, as finishNT.
	f := Up(1 + 2*Gamma(2*k+2))
	tiny := float64(2*k+2) * 0x1p-1020
	for i := 0; i < m; i++ {
		l, h := lo[i*n:(i+1)*n], hi[i*n:(i+1)*n]
		for j, c := range l {
			if nz[j] == 0 {
				l[j], h[j] = 0, 0
				continue
			}
			r := Up(Up(h[j]*f) + tiny)
			l[j] = Down(c - r)
			h[j] = Up(c + r)
		}
	}
}

// Cols32 is Cols with the magnitude and radius rows in float32, each
// entry rounded up from its float64 value (MidRad32), for MulCols32's
// radius product in single precision: Mid [K, N] (float64, the midpoint
// product stays double) and Abs [2K, N] (float32, rows 0…K−1 ≥ |Mid|,
// rows K…2K−1 ≥ the radii), row-major with leading dimension N. Every
// Abs entry is +0, a normal float32, +Inf or NaN (never subnormal: up32).
type Cols32 struct {
	K, N int
	Mid  []float64
	Abs  []float32
}

// up32 returns a float32 ≥ x for x ≥ 0 (or NaN for NaN): x itself where
// it is a float32, else the next float32 above it; a positive x below the
// smallest normal float32 2⁻¹²⁶ gives 2⁻¹²⁶ (MulCols32's products never
// read a subnormal, so a BLAS that treats subnormal inputs as 0 loses
// nothing there), an x above the largest float32 gives +Inf.
func up32(x float64) float32 {
	if x < 0x1p-126 {
		if x > 0 {
			return 0x1p-126
		}
		return float32(x) // +0 (x ≥ 0 by contract), NaN
	}
	f := float32(x) // nearest: ≥ 2⁻¹²⁶ here, or +Inf
	if float64(f) < x {
		// the next float32 above a positive finite f (MaxFloat32's is +Inf)
		f = math.Float32frombits(math.Float32bits(f) + 1)
	}
	return f
}

// MidRad32 is MidRad with the magnitude and radius rounded up to float32
// (up32): [lo, hi] ⊆ mid ± rad with mid float64 and rad ≥ the float64
// radius MidRad gives; a finite point lo = hi keeps radius 0 and an exact
// 0 stays an exact 0.
func MidRad32(lo, hi, mid []float64, abs, rad []float32) {
	for t, l := range lo {
		h := hi[t]
		if l == h && l-l == 0 {
			mid[t], abs[t], rad[t] = l, up32(math.Abs(l)), 0
			continue
		}
		c := 0.5*l + 0.5*h
		mid[t], abs[t], rad[t] = c, up32(math.Abs(c)), up32(Up(max(h-c, c-l)))
	}
}

// gamma32 is γ_n of float32 arithmetic, n·u/(1 − n·u) with u = 2⁻²⁴,
// rounded up (+Inf when n·u ≥ 1/2).
func gamma32(n int) float64 {
	nu := float64(n) * 0x1p-24
	if nu >= 0.5 {
		return math.Inf(1)
	}
	return Up(nu / Down(1-nu))
}

// uv32 returns the Weights' [U V] rounded up to float32 (up32), built on
// the first call.
func (w *Weights) uv32s() []float32 {
	w.once32.Do(func() {
		w.uv32 = make([]float32, len(w.uv))
		for t, v := range w.uv {
			w.uv32[t] = up32(v)
		}
	})
	return w.uv32
}

// MulCols32 is MulCols with the radius product in float32 (issue 13: the
// radius products were ~10 % of a resnet-8 leaf's CPU, and a float32 GEMM
// does twice the work per instruction on half the memory): the midpoint
// product fl(Wm·Xm) is the same float64 GEMM, bit for bit MulCols's
// midpoint, and the radius R = [U V]·[|Xm|; Xr] (every factor ≥ 0) is
// bounded by Ŝ, the float32 GEMM of the factors rounded up to float32
// (up32: R ≤ R′, the exact product of the rounded-up factors), finished
// as R′ ≤ (Ŝ + (4K+8)·2⁻¹²⁶)·(1 + 2γ³²_{2K+2}), rounded up in float64
// (docs/soundness.md, "leafcost round"). The radius of the float64
// midpoint product's rounding is inside U (γ_{K+2}|Wm|, as MulCols). The
// cheaper forms for a point x or a point w are MulCols's, in float32. A
// column of x whose every entry is an exact 0 gives exactly 0. scale must
// be ±2^j, j ≥ 0 (panics otherwise).
func MulCols32(w *Weights, x Cols32, scale float64, lo, hi []float64) {
	m, k, n := w.Rows, x.K, x.N
	lo, hi = lo[:m*n], hi[:m*n]
	if zeroProduct("MulCols32", w, k, scale, lo, hi) {
		return
	}
	ax, xr := x.Abs[:k*n], x.Abs[k*n:2*k*n]
	// nz[j] != 0: column j holds an entry that is not an exact 0 (a sum of
	// float32 ≥ 0 or NaN, as MulCols's); point: every radius 0, every
	// magnitude finite.
	nzp := getScratch32(n)
	defer scratch32Pool.Put(nzp)
	nz := *nzp
	point := scanColumns(ax, xr, nz, k, n)
	blas64.Implementation().Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, scale, w.Mid, k, x.Mid[:k*n], n, 0, lo, n)
	as := float32(math.Abs(scale)) // 2^j, exact in float32 for the scales used (1, 2)
	hp := getScratch32(m * n)
	defer scratch32Pool.Put(hp)
	h32 := *hp
	uv := w.uv32s()
	gen := func(kk int, a []float32, b []float32) {
		blas32.Implementation().Sgemm(blas.NoTrans, blas.NoTrans, m, n, kk, as, a, 2*k, b, n, 0, h32, n)
	}
	switch {
	case point: // U·|Xm|
		gen(k, uv, ax)
	case w.Rad == nil: // V·(γ|Xm| + Xr), V = |Wm| rounded up
		g := Gamma(k + 2)
		zp := getScratch32(k * n)
		defer scratch32Pool.Put(zp)
		z := *zp
		for t, a := range ax {
			if a == 0 {
				z[t] = xr[t]
				continue
			}
			z[t] = up32(Up(Up(g*float64(a)) + float64(xr[t])))
		}
		gen(k, uv[k:], z)
	default: // [U V]·[|Xm|; Xr]
		gen(2*k, uv, x.Abs[:2*k*n])
	}
	// R′ ≤ (Ŝ + E)·(1 + 2γ) with E the underflow (or flush-to-zero) of at
	// most 2K+2 products and as many sums, 2⁻¹²⁶ each, and γ = γ³²_{2K+2}
	// the relative rounding of a sum of 2K non-negative products (any
	// order, FMA or not; Higham §3.1), then MulCols's finish in float64.
	f := Up(1 + 2*gamma32(2*k+2))
	tiny := float64(4*k+8) * 0x1p-126
	for i := 0; i < m; i++ {
		l, h, hs := lo[i*n:(i+1)*n], hi[i*n:(i+1)*n], h32[i*n:(i+1)*n]
		for j, c := range l {
			if nz[j] == 0 {
				l[j], h[j] = 0, 0
				continue
			}
			r := Up(Up(float64(hs[j])+tiny) * f)
			if r != r { // Inf·0 in the float32 product (a factor beyond float32's range): no bound
				r = math.Inf(1)
			}
			l[j] = Down(c - r)
			h[j] = Up(c + r)
		}
	}
}

// scratch32Pool holds MulCols32's float32 scratch buffers (contents garbage).
var scratch32Pool sync.Pool

// Scratch32 returns a float32 buffer of length n from MulCols32's pool
// (contents garbage: write every entry read); give it back with
// PutScratch32.
func Scratch32(n int) *[]float32 { return getScratch32(n) }

// PutScratch32 returns a buffer from Scratch32 to the pool.
func PutScratch32(p *[]float32) {
	if p != nil {
		scratch32Pool.Put(p)
	}
}

func getScratch32(n int) *[]float32 {
	if v, ok := scratch32Pool.Get().(*[]float32); ok && cap(*v) >= n {
		*v = (*v)[:n]
		return v
	}
	b := make([]float32, n)
	return &b
}

// scanColumns writes into nz[j] (length n) the sum of column j's |Xm| and
// Xr (ax and xr [K, N] row-major, every entry ≥ 0 or NaN), non-zero
// exactly when the column holds an entry that is not an exact 0; and
// reports whether x is a point: every radius 0 and every magnitude finite
// (the scan stops at the first radius that is not). MulCols and MulCols32
// share it, in float64 and float32.
func scanColumns[F float32 | float64](ax, xr, nz []F, k, n int) (point bool) {
	clear(nz)
	for r := 0; r < k; r++ {
		a, rr := ax[r*n:(r+1)*n], xr[r*n:(r+1)*n]
		rr = rr[:len(a)]
		for j, v := range a {
			nz[j] += v + rr[j]
		}
	}
	for t, rr := range xr {
		if rr != 0 || ax[t]-ax[t] != 0 {
			return false
		}
	}
	return true
}

// zeroProduct checks MulCols's and MulCols32's arguments (panics naming fn
// when w's columns are not x's K rows or scale is not ±2^j, j ≥ 0) and
// reports whether the product is exactly 0 (w is zero or a dimension is
// empty), with lo and hi then cleared.
func zeroProduct(fn string, w *Weights, k int, scale float64, lo, hi []float64) bool {
	if w.Cols != k {
		panic("interval: " + fn + ": inner dimensions differ")
	}
	if fr, _ := math.Frexp(math.Abs(scale)); fr != 0.5 || math.Abs(scale) < 1 {
		panic("interval: " + fn + ": scale must be ±2^j with j ≥ 0")
	}
	if w.zero || len(lo) == 0 || k == 0 {
		clear(lo)
		clear(hi)
		return true
	}
	return false
}
