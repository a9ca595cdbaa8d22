//go:build openblas && cgo

package blasbackend

// Debian's libopenblas-dev puts cblas.h for the pthread flavour here; the
// generic path is tried too.

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu/openblas-pthread -I/usr/include/openblas
#cgo LDFLAGS: -lopenblas
#include <cblas.h>

static char *corename(void) { return openblas_get_corename(); }
static char *config(void) { return openblas_get_config(); }
*/
import "C"

import (
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// openblasImpl is gonum's pure-Go BLAS with Dgemm and Sgemm replaced by
// OpenBLAS's cblas_dgemm and cblas_sgemm (row-major). Only the matrix
// product is hot in an analysis, in either precision.
type openblasImpl struct{ gonum.Implementation }

func openBLAS() (*Backend, error) {
	return &Backend{Name: "openblas", Impl: openblasImpl{}, Impl32: openblasImpl{},
		Kernel:     C.GoString(C.corename()),
		Config:     C.GoString(C.config()),
		threads:    func() int { return int(C.openblas_get_num_threads()) },
		setThreads: func(n int) { C.openblas_set_num_threads(C.int(n)) },
	}, nil
}

func trans(t blas.Transpose) C.enum_CBLAS_TRANSPOSE {
	switch t {
	case blas.NoTrans:
		return C.CblasNoTrans
	case blas.Trans, blas.ConjTrans:
		return C.CblasTrans
	}
	panic(badTranspose)
}

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

// Dgemm computes C = α op(A) op(B) + β C for row-major A, B, C with gonum's
// argument checks (panics with the same messages' meaning), then calls
// cblas_dgemm. Slices are checked before their addresses reach C.
func (openblasImpl) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	ta, tb := trans(tA), trans(tB)
	switch gemmArgs(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc, alpha == 0) {
	case gemmNone:
		return
	case gemmGonum:
		gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.double)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// Sgemm computes C = α op(A) op(B) + β C in float32 for row-major A, B, C
// with gonum's argument checks (panics with the same messages' meaning),
// then calls cblas_sgemm. Slices are checked before their addresses reach C.
func (openblasImpl) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := trans(tA), trans(tB)
	switch gemmArgs(tA, tB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc, alpha == 0) {
	case gemmNone:
		return
	case gemmGonum:
		gonum.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
