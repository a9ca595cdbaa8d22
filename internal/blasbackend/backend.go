package blasbackend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend is one implementation of the float64 and float32 BLAS.
type Backend struct {
	// Name is "go" or "openblas".
	Name string
	// Impl is the float64 implementation blas64.Use installs.
	Impl blas.Float64
	// Impl32 is the float32 implementation blas32.Use installs (nil: Use
	// leaves blas32 alone).
	Impl32 blas.Float32
	// Kernel is the compute kernel in use: OpenBLAS's openblas_get_corename()
	// (e.g. "Haswell", "SkylakeX", "Zen"), or "gonum (pure Go, GOARCH)".
	Kernel string
	// Config is OpenBLAS's openblas_get_config() (version, threading model,
	// build options), or the Go version for "go".
	Config string
	// threads returns the number of threads one product may use; setThreads
	// changes it (nil for "go", whose Dgemm and Sgemm use up to GOMAXPROCS
	// goroutines).
	threads    func() int
	setThreads func(int)
}

// Threads returns the number of threads one Dgemm or Sgemm call may use:
// OpenBLAS's openblas_get_num_threads(), or runtime.GOMAXPROCS(0) for "go".
func (b *Backend) Threads() int {
	if b.threads != nil {
		return b.threads()
	}
	return runtime.GOMAXPROCS(0)
}

// SetThreads sets the number of threads one Dgemm or Sgemm call may use
// (OpenBLAS's openblas_set_num_threads); for "go" it does nothing (gonum's
// Dgemm and Sgemm split large products over GOMAXPROCS goroutines). n ≤ 0 is
// ignored.
func (b *Backend) SetThreads(n int) {
	if b.setThreads != nil && n > 0 {
		b.setThreads(n)
	}
}

// Use installs b as gonum's blas64 and blas32 implementations for the whole
// process (blas64.Use(b.Impl), blas32.Use(b.Impl32) when Impl32 is not nil);
// every later blas64 and blas32 call, and so every nn product in float64 or
// float32, runs on it.
func (b *Backend) Use() {
	blas64.Use(b.Impl)
	if b.Impl32 != nil {
		blas32.Use(b.Impl32)
	}
}

// String is "name (kernel, N threads)".
func (b *Backend) String() string {
	return fmt.Sprintf("%s (%s, %d threads)", b.Name, b.Kernel, b.Threads())
}

// PureGo returns gonum's pure-Go BLAS, the default backend.
func PureGo() *Backend {
	return &Backend{Name: "go", Impl: gonum.Implementation{}, Impl32: gonum.Implementation{},
		Kernel: "gonum pure Go, " + runtime.GOARCH, Config: runtime.Version()}
}

// ErrNotBuilt is returned by OpenBLAS in binaries built without
// `-tags openblas` (or without cgo).
var ErrNotBuilt = errors.New("OpenBLAS backend not built in (build with -tags openblas and cgo; Debian: apt-get install libopenblas-dev)")

// OpenBLAS returns the OpenBLAS backend (not yet self-tested), or
// ErrNotBuilt.
func OpenBLAS() (*Backend, error) { return openBLAS() }

// Select returns the backend called name ("go", "openblas" or "auto"),
// self-tested against gonum's pure-Go Dgemm (SelfTest) and Sgemm
// (SelfTest32), and a note saying what was chosen and why. "auto" is
// OpenBLAS when it is built in and passes both self-tests, else "go". A
// requested OpenBLAS that fails either self-test falls back to "go" for both
// precisions (the note gives the failure); one that is not built in is an
// error wrapping ErrNotBuilt. Select does not install the backend: call Use.
func Select(name string) (*Backend, string, error) { return choose(name, OpenBLAS) }

// choose is Select with the OpenBLAS constructor as a parameter, so that the
// fallback can be tested with wrong backends.
func choose(name string, openBLAS func() (*Backend, error)) (*Backend, string, error) {
	switch name {
	case "", "go":
		return PureGo(), "pure-Go gonum BLAS", nil
	case "openblas", "auto":
	default:
		return nil, "", fmt.Errorf("unknown BLAS backend %q (want go, openblas or auto)", name)
	}
	ob, err := openBLAS()
	if err != nil {
		if name == "auto" {
			return PureGo(), "pure-Go gonum BLAS (" + err.Error() + ")", nil
		}
		return nil, "", err
	}
	err = SelfTest(ob.Impl, gonum.Implementation{})
	if err == nil {
		err = SelfTest32(ob.Impl32, gonum.Implementation{})
	}
	if err != nil {
		return PureGo(), fmt.Sprintf("pure-Go gonum BLAS: OpenBLAS failed its self-test against gonum (%v); falling back", err), nil
	}
	return ob, "OpenBLAS Dgemm and Sgemm, self-tested against gonum on this machine", nil
}

// SelfTestTol is the largest accepted relative difference of SelfTest.
const SelfTestTol = 1e-12

type gemmCase struct {
	tA, tB      blas.Transpose
	m, n, k     int
	alpha, beta float64
	pad         int // extra columns in every leading dimension
}

// selfTestCases are the products SelfTest compares: every transpose pair,
// small shapes (edge handling of blocked kernels), wide leading dimensions,
// β = 0, 1 and neither, α = 1 and −½, and shapes large enough for OpenBLAS
// to block and thread (≥ 2·256³ flops), in the proportions of the analysis
// ([3n, in]·[out, in]ᵀ).
func selfTestCases() []gemmCase {
	var cs []gemmCase
	ts := []blas.Transpose{blas.NoTrans, blas.Trans}
	small := [][3]int{{1, 1, 1}, {3, 2, 5}, {7, 13, 4}, {17, 9, 33}, {64, 64, 64}, {129, 67, 300}}
	i := 0
	for _, tA := range ts {
		for _, tB := range ts {
			for _, s := range small {
				i++
				cs = append(cs, gemmCase{tA, tB, s[0], s[1], s[2],
					[]float64{1, -0.5}[i%2], []float64{0, 1, 0.7}[i%3], i % 4})
			}
			cs = append(cs, gemmCase{tA, tB, 300, 256, 384, 1, 0, 3})
		}
	}
	cs = append(cs, gemmCase{blas.NoTrans, blas.Trans, 600, 512, 512, 1, 1, 0})
	return cs
}

// SelfTest compares cand's Dgemm with ref's on selfTestCases with seeded
// random data (standard normal), and returns an error describing the first
// disagreement: an element further than SelfTestTol relative (see the
// package doc), a NaN read from C when β = 0, a panic, or a write to the
// padding between rows of C.
func SelfTest(cand, ref blas.Float64) error {
	rng := rand.New(rand.NewPCG(7, 11))
	draw := func() float64 { return rng.NormFloat64() }
	tol := func(int) float64 { return SelfTestTol }
	for _, c := range selfTestCases() {
		if err := checkCase(cand.Dgemm, ref.Dgemm, c, draw, tol); err != nil {
			return fmt.Errorf("Dgemm(%c, %c, m=%d, n=%d, k=%d, α=%g, β=%g, pad=%d): %w",
				c.tA, c.tB, c.m, c.n, c.k, c.alpha, c.beta, c.pad, err)
		}
	}
	return nil
}

// unit32 is float32's unit roundoff, 2⁻²⁴.
const unit32 = 0x1p-24

// SelfTestTol32 returns the largest accepted relative difference of
// SelfTest32 for a product of inner dimension k: 2·γ(k+2), γ(n) = n·u/(1−n·u),
// u = 2⁻²⁴. In any order of summation, with or without fused multiply-adds,
// each of the k terms α·a·b of α·Σ a·b + β·c is rounded at most k+2 times
// (the product a·b, the scaling by α, at most k additions) and β·c at most
// k+1 times, so a float32 Sgemm errs by at most γ(k+2)·(Σ_p |α a_ip b_pj| +
// |β c_ij|) (Higham, Accuracy and Stability of Numerical Algorithms, §3.1);
// candidate and reference each err by that much, hence the factor c = 2.
// This is a worst-case bound, so a correct Sgemm is never rejected (OpenBLAS
// and gonum differ by at most 1/50 of it in SelfTest32); at k = 512 it is
// 6.1e-5 of the sum of magnitudes.
func SelfTestTol32(k int) float64 {
	n := float64(k+2) * unit32
	return 2 * n / (1 - n)
}

// SelfTest32 compares cand's Sgemm with ref's on the cases of SelfTest
// (every transpose pair, α ∈ {1, −½}, β ∈ {0 with NaN in C, 1, 0.7}, leading
// dimensions wider than the matrices, shapes from 1×1×1 to 600×512×512) with
// seeded random data, and returns an error describing the first
// disagreement: an element C[i, j] further than SelfTestTol32(k) of
// Σ_p |α a_ip b_pj| + |β c_ij| (computed in float64) from ref's, a NaN read
// from C when β = 0, a panic, or a write to the padding between rows of C
// (or that cand is nil).
//
// The data are normal with mean 1 and standard deviation 1 (a sixth of the
// entries negative), so that |C[i, j]| is of the order of the sum of
// magnitudes: in the largest product a relative error of about 1e-4 in any
// one element is detected (8.4e-5 on average). With zero-mean data
// cancellation makes the sum of magnitudes ≈ √k·|C[i, j]| and errors up to
// ≈ 1e-2 would pass.
func SelfTest32(cand, ref blas.Float32) error {
	if cand == nil {
		return errors.New("Sgemm: no float32 implementation")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	draw := func() float32 { return float32(1 + rng.NormFloat64()) }
	for _, c := range selfTestCases() {
		if err := checkCase(cand.Sgemm, ref.Sgemm, c, draw, SelfTestTol32); err != nil {
			return fmt.Errorf("Sgemm(%c, %c, m=%d, n=%d, k=%d, α=%g, β=%g, pad=%d): %w",
				c.tA, c.tB, c.m, c.n, c.k, c.alpha, c.beta, c.pad, err)
		}
	}
	return nil
}

// gemm is the signature of Dgemm (T = float64) and Sgemm (T = float32).
type gemm[T float32 | float64] func(tA, tB blas.Transpose, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int)

// sentinel fills the padding of C; it is within float32's range.
const sentinel = -7.25e30

// checkCase runs cand and ref on case c with entries from draw and compares
// every element of C within tol(k) relative to Σ|α a b| + |β c|, and the
// padding of C with sentinel.
func checkCase[T float32 | float64](cand, ref gemm[T], c gemmCase, draw func() T, tol func(k int) float64) (err error) {
	ar, ac := c.m, c.k
	if c.tA == blas.Trans {
		ar, ac = c.k, c.m
	}
	br, bc := c.k, c.n
	if c.tB == blas.Trans {
		br, bc = c.n, c.k
	}
	lda, ldb, ldc := ac+c.pad, bc+c.pad, c.n+c.pad
	a := randSlice(ar*lda, draw)
	b := randSlice(br*ldb, draw)
	c0 := randSlice(c.m*ldc, draw)
	for i := 0; i < c.m; i++ {
		for j := c.n; j < ldc; j++ {
			c0[i*ldc+j] = T(sentinel)
		}
		if c.beta == 0 {
			for j := 0; j < c.n; j++ {
				c0[i*ldc+j] = T(math.NaN()) // BLAS must not read C when β = 0
			}
		}
	}
	alpha, beta := T(c.alpha), T(c.beta)
	want := append([]T(nil), c0...)
	got := append([]T(nil), c0...)
	ref(c.tA, c.tB, c.m, c.n, c.k, alpha, a, lda, b, ldb, beta, want, ldc)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	cand(c.tA, c.tB, c.m, c.n, c.k, alpha, a, lda, b, ldb, beta, got, ldc)
	// mag[i, j] = Σ_p |a_ip|·|b_pj| by gonum's float64 Dgemm on |A| and |B|
	// (named, not blas64's, which may be the candidate): a sum of
	// non-negative terms, exact to k·2⁻⁵³ relative, far below either
	// tolerance.
	absA, absB := make([]float64, len(a)), make([]float64, len(b))
	for i, v := range a {
		absA[i] = math.Abs(float64(v))
	}
	for i, v := range b {
		absB[i] = math.Abs(float64(v))
	}
	mag := make([]float64, c.m*c.n)
	gonum.Implementation{}.Dgemm(c.tA, c.tB, c.m, c.n, c.k, 1, absA, lda, absB, ldb, 0, mag, c.n)
	rel := tol(c.k)
	for i := 0; i < c.m; i++ {
		for j := 0; j < ldc; j++ {
			g, w := float64(got[i*ldc+j]), float64(want[i*ldc+j])
			if j >= c.n {
				if got[i*ldc+j] != T(sentinel) {
					return fmt.Errorf("wrote %v to C[%d, %d], outside the %d×%d result", got[i*ldc+j], i, j, c.m, c.n)
				}
				continue
			}
			scale := math.Abs(c.alpha) * mag[i*c.n+j]
			if c.beta != 0 {
				scale += math.Abs(c.beta * float64(c0[i*ldc+j]))
			}
			if !(math.Abs(g-w) <= rel*scale) { // also catches NaN
				return fmt.Errorf("C[%d, %d] = %v, gonum %v (|diff| %.3g > %.3g × %.3g)", i, j, got[i*ldc+j], want[i*ldc+j], math.Abs(g-w), rel, scale)
			}
		}
	}
	return nil
}

func randSlice[T float32 | float64](n int, draw func() T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = draw()
	}
	return s
}
