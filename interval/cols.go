package interval

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
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
	if w.Cols != k {
		panic("interval: MulCols: inner dimensions differ")
	}
	if fr, _ := math.Frexp(math.Abs(scale)); fr != 0.5 || math.Abs(scale) < 1 {
		panic("interval: MulCols: scale must be ±2^j with j ≥ 0")
	}
	lo, hi = lo[:m*n], hi[:m*n]
	if w.zero || m == 0 || n == 0 || k == 0 {
		clear(lo)
		clear(hi)
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
	clear(nz)
	for r := 0; r < k; r++ {
		a, rr := ax[r*n:(r+1)*n], xr[r*n:(r+1)*n]
		rr = rr[:len(a)]
		for j, v := range a {
			nz[j] += v + rr[j]
		}
	}
	point := true
	for t, rr := range xr {
		if rr != 0 || ax[t]-ax[t] != 0 {
			point = false
			break
		}
	}
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
