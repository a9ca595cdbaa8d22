//go:build linux && (amd64 || arm64) && !nodlopen

package blasbackend

import (
	"fmt"

	"github.com/ebitengine/purego"
	"gonum.org/v1/gonum/blas"
)

// dlMinWork is the smallest product (m·n·k multiply-adds) handed to a
// library loaded at run time: a call through purego costs about 1.5 µs,
// which gonum spends on a product of about 16³ (docs/performance.md).
const dlMinWork = 16 * 16 * 16

// loadCBLAS opens the shared library lib with the system's dynamic loader
// (dlopen through github.com/ebitengine/purego, no cgo) and returns a
// backend whose Dgemm and Sgemm are its cblas_dgemm and cblas_sgemm. The
// backend is named "openblas" when the library (or one it depends on)
// exports openblas_get_config, else "cblas". The library stays loaded.
func loadCBLAS(lib string) (*Backend, error) {
	h, err := purego.Dlopen(lib, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var (
		dgemm func(order, tA, tB, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
		sgemm func(order, tA, tB, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	)
	dsym, err := purego.Dlsym(h, "cblas_dgemm")
	if err != nil {
		return nil, fmt.Errorf("%s has no cblas_dgemm: %v", lib, err)
	}
	ssym, err := purego.Dlsym(h, "cblas_sgemm")
	if err != nil {
		return nil, fmt.Errorf("%s has no cblas_sgemm: %v", lib, err)
	}
	purego.RegisterFunc(&dgemm, dsym)
	purego.RegisterFunc(&sgemm, ssym)
	impl := cblasImpl{minWork: dlMinWork,
		dgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			dgemm(cblasRowMajor, cblasTranspose(tA), cblasTranspose(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		},
		sgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			sgemm(cblasRowMajor, cblasTranspose(tA), cblasTranspose(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}}
	file := mappedFile(dsym)
	if file == "" {
		file = lib
	}
	b := &Backend{Name: "cblas", Impl: impl, Impl32: impl, exact: impl.exact(),
		Kernel: "unknown", Config: file, Library: file,
		Source: fmt.Sprintf("%s loaded at run time (%s)", lib, file)}
	if sym, err := purego.Dlsym(h, "openblas_get_config"); err == nil {
		var config, corename func() string
		var getThreads func() int32
		var setThreads func(int32)
		purego.RegisterFunc(&config, sym)
		b.Name, b.Config = "openblas", config()
		if sym, err := purego.Dlsym(h, "openblas_get_corename"); err == nil {
			purego.RegisterFunc(&corename, sym)
			b.Kernel = corename()
		}
		if sym, err := purego.Dlsym(h, "openblas_get_num_threads"); err == nil {
			purego.RegisterFunc(&getThreads, sym)
			b.threads = func() int { return int(getThreads()) }
		}
		if sym, err := purego.Dlsym(h, "openblas_set_num_threads"); err == nil {
			purego.RegisterFunc(&setThreads, sym)
			b.setThreads = func(n int) { setThreads(int32(n)) }
		}
	}
	return b, nil
}
