package blasbackend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend is one implementation of the float64 BLAS.
type Backend struct {
	// Name is "go" or "openblas".
	Name string
	// Impl is the implementation blas64.Use installs.
	Impl blas.Float64
	// Kernel is the compute kernel in use: OpenBLAS's openblas_get_corename()
	// (e.g. "Haswell", "SkylakeX", "Zen"), or "gonum (pure Go, GOARCH)".
	Kernel string
	// Config is OpenBLAS's openblas_get_config() (version, threading model,
	// build options), or the Go version for "go".
	Config string
	// threads returns the number of threads one product may use; setThreads
	// changes it (nil for "go", whose Dgemm uses up to GOMAXPROCS goroutines).
	threads    func() int
	setThreads func(int)
}

// Threads returns the number of threads one Dgemm call may use: OpenBLAS's
// openblas_get_num_threads(), or runtime.GOMAXPROCS(0) for "go".
func (b *Backend) Threads() int {
	if b.threads != nil {
		return b.threads()
	}
	return runtime.GOMAXPROCS(0)
}

// SetThreads sets the number of threads one Dgemm call may use (OpenBLAS's
// openblas_set_num_threads); for "go" it does nothing (gonum's Dgemm splits
// large products over GOMAXPROCS goroutines). n ≤ 0 is ignored.
func (b *Backend) SetThreads(n int) {
	if b.setThreads != nil && n > 0 {
		b.setThreads(n)
	}
}

// Use installs b as gonum's blas64 implementation for the whole process
// (blas64.Use); every later blas64 call, and so every nn product, runs on it.
func (b *Backend) Use() { blas64.Use(b.Impl) }

// String is "name (kernel, N threads)".
func (b *Backend) String() string {
	return fmt.Sprintf("%s (%s, %d threads)", b.Name, b.Kernel, b.Threads())
}

// PureGo returns gonum's pure-Go BLAS, the default backend.
func PureGo() *Backend {
	return &Backend{Name: "go", Impl: gonum.Implementation{},
		Kernel: "gonum pure Go, " + runtime.GOARCH, Config: runtime.Version()}
}

// ErrNotBuilt is returned by OpenBLAS in binaries built without
// `-tags openblas` (or without cgo).
var ErrNotBuilt = errors.New("OpenBLAS backend not built in (build with -tags openblas and cgo; Debian: apt-get install libopenblas-dev)")

// OpenBLAS returns the OpenBLAS backend (not yet self-tested), or
// ErrNotBuilt.
func OpenBLAS() (*Backend, error) { return openBLAS() }

// Select returns the backend called name ("go", "openblas" or "auto"),
// self-tested against gonum's pure-Go Dgemm, and a note saying what was
// chosen and why. "auto" is OpenBLAS when it is built in and passes
// SelfTest, else "go". A requested OpenBLAS that fails the self-test falls
// back to "go" (the note says so); one that is not built in is an error
// wrapping ErrNotBuilt. Select does not install the backend: call Use.
func Select(name string) (*Backend, string, error) {
	switch name {
	case "", "go":
		return PureGo(), "pure-Go gonum BLAS", nil
	case "openblas", "auto":
	default:
		return nil, "", fmt.Errorf("unknown BLAS backend %q (want go, openblas or auto)", name)
	}
	ob, err := OpenBLAS()
	if err != nil {
		if name == "auto" {
			return PureGo(), "pure-Go gonum BLAS (" + err.Error() + ")", nil
		}
		return nil, "", err
	}
	if err := SelfTest(ob.Impl, gonum.Implementation{}); err != nil {
		return PureGo(), fmt.Sprintf("pure-Go gonum BLAS: OpenBLAS failed its self-test against gonum (%v); falling back", err), nil
	}
	return ob, "OpenBLAS Dgemm, self-tested against gonum on this machine", nil
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
// random data, and returns an error describing the first disagreement: an
// element further than SelfTestTol relative (see the package doc), a NaN
// read from C when β = 0, a panic, or a write to the padding between rows
// of C.
func SelfTest(cand, ref blas.Float64) (err error) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, c := range selfTestCases() {
		if err := checkCase(cand, ref, c, rng); err != nil {
			return fmt.Errorf("Dgemm(%c, %c, m=%d, n=%d, k=%d, α=%g, β=%g, pad=%d): %w",
				c.tA, c.tB, c.m, c.n, c.k, c.alpha, c.beta, c.pad, err)
		}
	}
	return nil
}

const sentinel = -7.25e300

func checkCase(cand, ref blas.Float64, c gemmCase, rng *rand.Rand) (err error) {
	ar, ac := c.m, c.k
	if c.tA == blas.Trans {
		ar, ac = c.k, c.m
	}
	br, bc := c.k, c.n
	if c.tB == blas.Trans {
		br, bc = c.n, c.k
	}
	lda, ldb, ldc := ac+c.pad, bc+c.pad, c.n+c.pad
	a := randSlice(rng, ar*lda)
	b := randSlice(rng, br*ldb)
	c0 := randSlice(rng, c.m*ldc)
	for i := 0; i < c.m; i++ {
		for j := c.n; j < ldc; j++ {
			c0[i*ldc+j] = sentinel
		}
		if c.beta == 0 {
			for j := 0; j < c.n; j++ {
				c0[i*ldc+j] = math.NaN() // BLAS must not read C when β = 0
			}
		}
	}
	want := append([]float64(nil), c0...)
	got := append([]float64(nil), c0...)
	ref.Dgemm(c.tA, c.tB, c.m, c.n, c.k, c.alpha, a, lda, b, ldb, c.beta, want, ldc)
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	cand.Dgemm(c.tA, c.tB, c.m, c.n, c.k, c.alpha, a, lda, b, ldb, c.beta, got, ldc)
	at := func(i, p int) float64 {
		if c.tA == blas.Trans {
			return a[p*lda+i]
		}
		return a[i*lda+p]
	}
	bt := func(p, j int) float64 {
		if c.tB == blas.Trans {
			return b[j*ldb+p]
		}
		return b[p*ldb+j]
	}
	for i := 0; i < c.m; i++ {
		for j := 0; j < ldc; j++ {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if j >= c.n {
				if g != sentinel {
					return fmt.Errorf("wrote %g to C[%d, %d], outside the %d×%d result", g, i, j, c.m, c.n)
				}
				continue
			}
			scale := 0.0
			for p := 0; p < c.k; p++ {
				scale += math.Abs(c.alpha * at(i, p) * bt(p, j))
			}
			if c.beta != 0 {
				scale += math.Abs(c.beta * c0[i*ldc+j])
			}
			if !(math.Abs(g-w) <= SelfTestTol*scale) { // also catches NaN
				return fmt.Errorf("C[%d, %d] = %.17g, gonum %.17g (|diff| %.3g > %g × %.3g)", i, j, g, w, math.Abs(g-w), SelfTestTol, scale)
			}
		}
	}
	return nil
}

func randSlice(rng *rand.Rand, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = rng.NormFloat64()
	}
	return s
}
