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

// openblasImpl is gonum's pure-Go BLAS with Dgemm replaced by OpenBLAS's
// cblas_dgemm (row-major). Only Dgemm is hot in an analysis.
type openblasImpl struct{ gonum.Implementation }

func openBLAS() (*Backend, error) {
	return &Backend{Name: "openblas", Impl: openblasImpl{},
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

// Dgemm computes C = α op(A) op(B) + β C for row-major A, B, C with gonum's
// argument checks (panics with the same messages' meaning), then calls
// cblas_dgemm. Slices are checked before their addresses reach C.
func (openblasImpl) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	ta, tb := trans(tA), trans(tB)
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
		return
	}
	if len(c) < ldc*(m-1)+n {
		panic(shortBuf)
	}
	if k == 0 || alpha == 0 {
		gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if len(a) < lda*(ar-1)+ac || len(b) < ldb*(br-1)+bc {
		panic(shortBuf)
	}
	C.cblas_dgemm(C.CblasRowMajor, ta, tb, C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.double)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
