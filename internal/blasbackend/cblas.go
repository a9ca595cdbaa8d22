package blasbackend

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// cblasImpl is gonum's pure-Go BLAS with Dgemm and Sgemm replaced by a
// CBLAS library's cblas_dgemm and cblas_sgemm (row-major), whether linked
// at build time (cgo) or loaded at run time. Only the matrix product is hot
// in an analysis, in either precision. Arguments are checked as gonum checks
// them before any address reaches the library; products of fewer than
// minWork multiply-adds (m·n·k) run on gonum, because a call into the
// library costs more than such a product (about 1.5 µs through the run-time
// loader).
type cblasImpl struct {
	gonum.Implementation
	// dgemm and sgemm call the library with checked arguments, m, n, k ≥ 1
	// and non-empty A, B, C.
	dgemm   gemm[float64]
	sgemm   gemm[float32]
	minWork int
}

// exact returns the implementation without the small-product shortcut: the
// library computes every product (what the self-tests check).
func (c cblasImpl) exact() *cblasImpl { c.minWork = 0; return &c }

const (
	badTranspose = "blas: illegal transpose"
	badDims      = "blas: negative dimension"
	badLd        = "blas: bad leading dimension"
	shortBuf     = "blas: insufficient buffer length"
)

// gemmArgs checks the arguments of a row-major Dgemm or Sgemm as gonum does
// (panicking with the same messages' meaning) before any address reaches C,
// and says what to do: gemmNone (C is empty), gemmGonum (k = 0 or α = 0: C =
// βC without reading A or B, left to gonum), or gemmCBLAS.
func gemmArgs(tA, tB blas.Transpose, m, n, k, lenA, lda, lenB, ldb, lenC, ldc int, alphaZero bool) int {
	for _, t := range []blas.Transpose{tA, tB} {
		if t != blas.NoTrans && t != blas.Trans && t != blas.ConjTrans {
			panic(badTranspose)
		}
	}
	if m < 0 || n < 0 || k < 0 {
		panic(badDims)
	}
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	if lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n) {
		panic(badLd)
	}
	if m == 0 || n == 0 {
		return gemmNone
	}
	if lenC < ldc*(m-1)+n {
		panic(shortBuf)
	}
	if k == 0 || alphaZero {
		return gemmGonum
	}
	if lenA < lda*(ar-1)+ac || lenB < ldb*(br-1)+bc {
		panic(shortBuf)
	}
	return gemmCBLAS
}

const (
	gemmNone = iota
	gemmGonum
	gemmCBLAS
)

// CBLAS enumerations (cblas.h).
const (
	cblasRowMajor = 101
	cblasNoTrans  = 111
	cblasTrans    = 112
)

// cblasTranspose is op's CBLAS_TRANSPOSE (real matrices: ConjTrans is Trans).
func cblasTranspose(t blas.Transpose) int {
	if t == blas.NoTrans {
		return cblasNoTrans
	}
	return cblasTrans
}

// Dgemm computes C = α op(A) op(B) + β C for row-major A, B, C with gonum's
// argument checks (panics with the same messages' meaning), then calls the
// library's cblas_dgemm (gonum's Dgemm below minWork multiply-adds).
func (c cblasImpl) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, cc []float64, ldc int) {
	switch gemmArgs(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(cc), ldc, alpha == 0) {
	case gemmNone:
		return
	case gemmGonum:
		c.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
		return
	}
	if m*n*k < c.minWork {
		c.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
		return
	}
	c.dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

// Sgemm computes C = α op(A) op(B) + β C in float32 for row-major A, B, C
// with gonum's argument checks (panics with the same messages' meaning),
// then calls the library's cblas_sgemm (gonum's Sgemm below minWork
// multiply-adds).
func (c cblasImpl) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	switch gemmArgs(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(cc), ldc, alpha == 0) {
	case gemmNone:
		return
	case gemmGonum:
		c.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
		return
	}
	if m*n*k < c.minWork {
		c.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
		return
	}
	c.sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}
