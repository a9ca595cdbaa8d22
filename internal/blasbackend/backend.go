package blasbackend

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// Backend is one implementation of the float64 and float32 BLAS.
type Backend struct {
	// Name is "go" (gonum's pure Go), "openblas", or "cblas" (a CBLAS
	// library named explicitly that is not OpenBLAS).
	Name string
	// Impl is the float64 implementation blas64.Use installs.
	Impl blas.Float64
	// Impl32 is the float32 implementation blas32.Use installs (nil: Use
	// leaves blas32 alone).
	Impl32 blas.Float32
	// Kernel is the compute kernel in use: OpenBLAS's openblas_get_corename()
	// (e.g. "Haswell", "SkylakeX", "Zen"), "gonum pure Go, GOARCH", or
	// "unknown" for another CBLAS library.
	Kernel string
	// Config is OpenBLAS's openblas_get_config() (version, threading model,
	// build options), the Go version for "go", or the library's file for
	// another CBLAS library.
	Config string
	// Source says where the library's code came from: "linked at build time
	// (cgo, -tags openblas)", or "LIB loaded at run time (FILE)" with the
	// name asked of the dynamic loader and the file it mapped; "" for "go".
	Source string
	// Library is the file of a library loaded at run time ("" otherwise).
	Library string
	// SelfTestFailures are the candidates Select rejected because their
	// self-test failed, with the reason (normally empty). A command should
	// show them: a library that computes wrong products is worth knowing
	// about even though it was not used.
	SelfTestFailures []string
	// exact is Impl without the small-product shortcut (nil: Impl), what
	// the self-tests check.
	exact *cblasImpl
	// threads returns the number of threads one product may use; setThreads
	// changes it (nil for "go", whose Dgemm and Sgemm use up to GOMAXPROCS
	// goroutines).
	threads    func() int
	setThreads func(int)
}

// Threads returns the number of threads one Dgemm or Sgemm call may use:
// OpenBLAS's openblas_get_num_threads(), or runtime.GOMAXPROCS(0) for "go"
// (and for a library that does not say).
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
	inUseMu.Lock()
	inUse = b
	inUseMu.Unlock()
}

var (
	inUseMu sync.Mutex
	inUse   *Backend // the backend Use installed last (nil: gonum's own)
	serial  int      // SerialProducts calls not yet restored
	saved   int      // the thread count before the outermost one
)

// SerialProducts sets the backend installed by Use to one thread per
// product and returns the function that restores the previous count, for
// phases that already run one product per core on their own goroutines
// (the certificate's and the accuracy bounds' leaves, issue 12 acc-share
// round): OpenBLAS's own threads then only contend with them. Nested
// calls keep one thread until the outermost is restored. It does nothing
// (and its restore nothing) when no backend with a thread count is in use.
// It sets one thread whatever GOMAXPROCS is: OpenBLAS's sums depend on its
// thread count in the last bits, and a certificate must not change with the
// cores a process was given (a SLURM task with one CPU, GOMAXPROCS 1, and
// the local pool's, GOMAXPROCS 2, must write the same certificate.json;
// scripts/slurm_test.sh).
func SerialProducts() (restore func()) {
	inUseMu.Lock()
	defer inUseMu.Unlock()
	b := inUse
	if b == nil || b.setThreads == nil {
		return func() {}
	}
	if serial == 0 {
		saved = b.Threads()
		b.SetThreads(1)
	}
	serial++
	var once sync.Once
	return func() {
		once.Do(func() {
			inUseMu.Lock()
			defer inUseMu.Unlock()
			serial--
			if serial == 0 {
				b.SetThreads(saved)
			}
		})
	}
}

// String is "name (kernel, N threads)", N the thread count b has outside
// SerialProducts' phases: a report written while another analysis of the
// same process (a local sweep's concurrent points) is inside one must not
// say 1 where a process of its own (a SLURM task) says 2.
func (b *Backend) String() string {
	return fmt.Sprintf("%s (%s, %d threads)", b.Name, b.Kernel, b.configuredThreads())
}

// configuredThreads is b.Threads(), or the count SerialProducts saved while
// b is in use inside one.
func (b *Backend) configuredThreads() int {
	inUseMu.Lock()
	defer inUseMu.Unlock()
	if b == inUse && serial > 0 {
		return saved
	}
	return b.Threads()
}

// Describe is String followed by Source when there is one: one line saying
// which BLAS runs and where it came from, e.g. "openblas (Haswell, 2
// threads), libopenblas.so.0 loaded at run time
// (/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so)".
func (b *Backend) Describe() string {
	if b.Source == "" {
		return b.String()
	}
	return b.String() + ", " + b.Source
}

// PureGo returns gonum's pure-Go BLAS, the fallback backend.
func PureGo() *Backend {
	return &Backend{Name: "go", Impl: gonum.Implementation{}, Impl32: gonum.Implementation{},
		Kernel: "gonum pure Go, " + runtime.GOARCH, Config: runtime.Version()}
}

var (
	// ErrNotBuilt is returned by OpenBLAS in binaries built without
	// `-tags openblas` (or without cgo).
	ErrNotBuilt = errors.New("OpenBLAS not linked in at build time (build with -tags openblas and cgo; Debian: apt-get install libopenblas-dev)")
	// ErrNotFound wraps the dynamic loader's error when a library cannot be
	// loaded, and Select's when no OpenBLAS library was found.
	ErrNotFound = errors.New("BLAS library not found")
	// ErrNoLoader is returned by Load in binaries that cannot load
	// libraries at run time: built with -tags nodlopen (a fully static
	// binary), or for a platform other than linux/amd64 and linux/arm64.
	ErrNoLoader = errors.New("no run-time library loader in this build")
)

// Libraries are the shared libraries Select("auto") and Select("openblas")
// try, in this order, after OpenBLAS linked in at build time: Debian's
// libopenblas0 (any of its pthread, openmp and serial flavours), the
// development symlink, and the BLAS alternative libblas.so.3, which is
// accepted only when it is OpenBLAS (the reference BLAS is slower than
// gonum's).
var Libraries = []string{"libopenblas.so.0", "libopenblas.so", "libblas.so.3"}

// OpenBLAS returns OpenBLAS linked in at build time (not yet self-tested),
// or ErrNotBuilt.
func OpenBLAS() (*Backend, error) { return linkedOpenBLAS() }

// Load opens the shared library lib (a file name the dynamic loader
// searches for, such as "libopenblas.so.0", or a path) at run time, without
// cgo, and returns a backend whose Dgemm and Sgemm are the library's
// cblas_dgemm and cblas_sgemm, not yet self-tested. It is named "openblas"
// when the library exports OpenBLAS's openblas_get_config (its threads and
// kernel are then known), else "cblas". It returns an error wrapping
// ErrNotFound when the loader cannot open lib, one naming the missing
// symbol when lib is no CBLAS, or one wrapping ErrNoLoader in builds
// without a loader. The library stays loaded for the life of the process.
func Load(lib string) (*Backend, error) { return loadCBLAS(lib) }

// Select returns the backend called name, self-tested against gonum's
// pure-Go Dgemm (SelfTest) and Sgemm (SelfTest32), and a note saying what
// was chosen and why. Select does not install the backend: call Use.
//
//   - "auto" (or ""): OpenBLAS linked in at build time, else the first of
//     Libraries that loads, is OpenBLAS and passes both self-tests, else
//     pure Go (the note says why each candidate was not used).
//   - "openblas": the same, but an error wrapping ErrNotFound when no
//     OpenBLAS is found at all.
//   - "go", "gonum" or "purego": gonum's pure Go.
//   - a library file ("libmkl_rt.so", "/opt/lib/libblis.so.4"; any name
//     containing "/" or ".so"): Load of that library, OpenBLAS or not; an
//     error when it cannot be loaded.
//
// A candidate that fails either self-test is not used, for either
// precision; it is listed in the backend's SelfTestFailures and the note.
// Any other name is an error.
func Select(name string) (*Backend, string, error) {
	return choose(name, sources{linked: linkedOpenBLAS, load: loadCBLAS, libs: Libraries})
}

// sources are where choose finds candidates (tests substitute wrong ones).
type sources struct {
	linked func() (*Backend, error)           // OpenBLAS linked at build time, or ErrNotBuilt
	load   func(lib string) (*Backend, error) // a library loaded at run time
	libs   []string                           // what "auto" and "openblas" load
}

// isLibrary reports whether a backend name names a library file.
func isLibrary(name string) bool {
	return strings.Contains(name, "/") || strings.Contains(name, ".so") || strings.HasSuffix(name, ".dylib")
}

// selfTests runs SelfTest and SelfTest32 on b's products (without the
// small-product shortcut, so that the library computes every case).
func selfTests(b *Backend) error {
	var d blas.Float64 = b.Impl
	var s blas.Float32 = b.Impl32
	if b.exact != nil {
		d, s = b.exact, b.exact
	}
	if err := SelfTest(d, gonum.Implementation{}); err != nil {
		return err
	}
	return SelfTest32(s, gonum.Implementation{})
}

// chosenNote is Select's note for a backend that passed its self-tests.
func chosenNote(b *Backend) string {
	what := "OpenBLAS"
	if b.Name != "openblas" {
		what = b.Library
	}
	return fmt.Sprintf("%s Dgemm and Sgemm, %s, self-tested against gonum on this machine", what, b.Source)
}

func choose(name string, src sources) (*Backend, string, error) {
	switch {
	case name == "go" || name == "gonum" || name == "purego":
		return PureGo(), "pure-Go gonum BLAS (requested)", nil
	case name == "" || name == "auto" || name == "openblas":
	case isLibrary(name):
		b, err := src.load(name)
		if err != nil {
			return nil, "", err
		}
		if err := selfTests(b); err != nil {
			g := PureGo()
			g.SelfTestFailures = []string{fmt.Sprintf("%s (%s) failed its self-test against gonum: %v", name, b.Library, err)}
			return g, "pure-Go gonum BLAS: " + g.SelfTestFailures[0] + "; falling back", nil
		}
		return b, chosenNote(b), nil
	default:
		return nil, "", fmt.Errorf("unknown BLAS backend %q (want auto, openblas, go, or a library file such as libopenblas.so.0)", name)
	}
	var why, failed []string
	if b, err := src.linked(); err == nil {
		if err := selfTests(b); err != nil {
			failed = append(failed, fmt.Sprintf("OpenBLAS %s failed its self-test against gonum: %v", b.Source, err))
		} else {
			return b, chosenNote(b), nil
		}
	}
	for _, lib := range src.libs {
		b, err := src.load(lib)
		if errors.Is(err, ErrNoLoader) {
			why = append(why, err.Error())
			break
		}
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if b.Name != "openblas" {
			why = append(why, fmt.Sprintf("%s (%s) is not OpenBLAS (name it in %s to use it anyway)", lib, b.Library, "CERTIFY_BLAS"))
			continue
		}
		if err := selfTests(b); err != nil {
			failed = append(failed, fmt.Sprintf("%s (%s) failed its self-test against gonum: %v", lib, b.Library, err))
			continue
		}
		b.SelfTestFailures = failed
		note := chosenNote(b)
		if len(failed) > 0 {
			note += " (rejected: " + strings.Join(failed, "; ") + ")"
		}
		return b, note, nil
	}
	g := PureGo()
	g.SelfTestFailures = failed
	if len(failed) > 0 {
		return g, "pure-Go gonum BLAS: " + strings.Join(failed, "; ") + "; falling back", nil
	}
	if name == "openblas" {
		return nil, "", fmt.Errorf("%w: no OpenBLAS: %s", ErrNotFound, strings.Join(why, "; "))
	}
	return g, "pure-Go gonum BLAS (no OpenBLAS: " + strings.Join(why, "; ") + ")", nil
}

// mappedFile returns the file mapped at address addr in this process
// (Linux /proc/self/maps), "" when unknown: the real file behind a library
// name the dynamic loader resolved through symbolic links and alternatives.
func mappedFile(addr uintptr) string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && uint64(addr) >= l && uint64(addr) < h {
			return strings.Join(fields[5:], " ")
		}
	}
	return ""
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
