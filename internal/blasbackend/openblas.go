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
)

// linkedOpenBLAS returns OpenBLAS linked at build time through cgo.
func linkedOpenBLAS() (*Backend, error) {
	impl := cblasImpl{dgemm: cgoDgemm, sgemm: cgoSgemm, minWork: cgoMinWork}
	return &Backend{Name: "openblas", Impl: impl, Impl32: impl, exact: impl.exact(),
		Kernel:     C.GoString(C.corename()),
		Config:     C.GoString(C.config()),
		Source:     "linked at build time (cgo, -tags openblas)",
		threads:    func() int { return int(C.openblas_get_num_threads()) },
		setThreads: func(n int) { C.openblas_set_num_threads(C.int(n)) },
	}, nil
}

// cgoMinWork: a cgo call costs about 0.1 µs, below one 4³ product in gonum.
const cgoMinWork = 0

func cgoTrans(t blas.Transpose) C.enum_CBLAS_TRANSPOSE {
	return C.enum_CBLAS_TRANSPOSE(cblasTranspose(t))
}

// cgoDgemm calls cblas_dgemm with arguments checked by cblasImpl.Dgemm.
func cgoDgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	C.cblas_dgemm(C.CblasRowMajor, cgoTrans(tA), cgoTrans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.double(alpha), (*C.double)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.double)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.double(beta), (*C.double)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// cgoSgemm calls cblas_sgemm with arguments checked by cblasImpl.Sgemm.
func cgoSgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	C.cblas_sgemm(C.CblasRowMajor, cgoTrans(tA), cgoTrans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}
