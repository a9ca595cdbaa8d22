package blasbackend

import (
	"math"
	"time"

	"gonum.org/v1/gonum/blas"
)

// DgemmRate returns the GFLOP/s (10⁹ floating-point operations per second of
// wall time) of impl's Dgemm on C = A·Bᵀ, A [m, k], B [n, k], C [m, n]
// row-major, β = 0: 2·m·n·k operations over the fastest of three calls, with
// A[i] = sin(i) and B[i] = cos(i) (flat indices). With m = 3·chunk, n = k = 1024
// it is the hot product of an analysis of a 1024-wide layer (THEORY.md §2:
// W·[h ḣ ḧ]), as `certify bench` measures it. It allocates the three
// matrices (8·(mk + nk + mn) bytes); m, n, k must be positive.
func DgemmRate(impl blas.Float64, m, n, k int) float64 {
	a, b, c := make([]float64, m*k), make([]float64, n*k), make([]float64, m*n)
	for i := range a {
		a[i] = math.Sin(float64(i))
	}
	for i := range b {
		b[i] = math.Cos(float64(i))
	}
	return bestRate(m, n, k, func() {
		impl.Dgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, 0, c, n)
	})
}

// SgemmRate is DgemmRate for impl's Sgemm: the GFLOP/s of the float32
// product C = A·Bᵀ, A [m, k], B [n, k], C [m, n] row-major, β = 0, with the
// same data rounded to float32, over the fastest of three calls. It
// allocates 4·(mk + nk + mn) bytes; m, n, k must be positive.
func SgemmRate(impl blas.Float32, m, n, k int) float64 {
	a, b, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	for i := range a {
		a[i] = float32(math.Sin(float64(i)))
	}
	for i := range b {
		b[i] = float32(math.Cos(float64(i)))
	}
	return bestRate(m, n, k, func() {
		impl.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, b, k, 0, c, n)
	})
}

// bestRate times product three times and returns 2·m·n·k / fastest / 10⁹.
func bestRate(m, n, k int, product func()) float64 {
	best := math.Inf(1)
	for range 3 {
		t := time.Now()
		product()
		best = min(best, time.Since(t).Seconds())
	}
	return 2 * float64(m) * float64(n) * float64(k) / best / 1e9
}
