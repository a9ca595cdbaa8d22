//go:build linux && (amd64 || arm64) && !nodlopen

package blasbackend

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"pgregory.net/rapid"
)

// loadedOpenBLAS loads Debian's libopenblas0 (scripts/test.sh installs it
// with libopenblas-dev), skipping when it is not installed.
func loadedOpenBLAS(t *testing.T) *Backend {
	t.Helper()
	b, err := Load("libopenblas.so.0")
	if errors.Is(err, ErrNotFound) {
		t.Skipf("libopenblas.so.0 not installed (Debian: apt-get install libopenblas0): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLoadOpenBLAS: the library loaded at run time is OpenBLAS, names the
// real file it came from, passes both self-tests against gonum and against
// the textbook triple loops, and its thread count can be read and set.
func TestLoadOpenBLAS(t *testing.T) {
	b := loadedOpenBLAS(t)
	if b.Name != "openblas" || b.Kernel == "" || b.Kernel == "unknown" || !strings.Contains(b.Config, "OpenBLAS") {
		t.Errorf("loaded %v, config %q", b, b.Config)
	}
	if real, err := filepath.EvalSymlinks(b.Library); err != nil || real != b.Library || !strings.Contains(b.Library, "openblas") {
		t.Errorf("Library %q (resolves to %q, %v): want the real OpenBLAS file", b.Library, real, err)
	}
	if !strings.Contains(b.Source, "libopenblas.so.0 loaded at run time ("+b.Library+")") {
		t.Errorf("Source %q", b.Source)
	}
	if err := selfTests(b); err != nil {
		t.Fatal(err)
	}
	if err := SelfTest(b.exact, naive{}); err != nil {
		t.Fatalf("Dgemm against the textbook triple loop: %v", err)
	}
	if err := SelfTest32(b.exact, naive32{}); err != nil {
		t.Fatalf("Sgemm against the textbook triple loop: %v", err)
	}
	n := b.Threads()
	b.SetThreads(1)
	if got := b.Threads(); got != 1 {
		t.Errorf("after SetThreads(1): %d threads", got)
	}
	b.SetThreads(n)
	if got := b.Threads(); got != n {
		t.Errorf("after SetThreads(%d): %d threads", n, got)
	}
}

// genCase draws a product: any transposes, m, n, k from 1 to 90 (odd sizes
// and sizes on both sides of the small-product shortcut dlMinWork), padded
// leading dimensions, α ∈ {1, −½, 3}, β ∈ {0, 1, 0.7}.
func genCase(t *rapid.T) gemmCase {
	ts := []blas.Transpose{blas.NoTrans, blas.Trans}
	return gemmCase{
		tA: rapid.SampledFrom(ts).Draw(t, "tA"), tB: rapid.SampledFrom(ts).Draw(t, "tB"),
		m: rapid.IntRange(1, 90).Draw(t, "m"), n: rapid.IntRange(1, 90).Draw(t, "n"), k: rapid.IntRange(1, 90).Draw(t, "k"),
		alpha: rapid.SampledFrom([]float64{1, -0.5, 3}).Draw(t, "alpha"),
		beta:  rapid.SampledFrom([]float64{0, 1, 0.7}).Draw(t, "beta"),
		pad:   rapid.IntRange(0, 3).Draw(t, "pad"),
	}
}

// TestLoadedGemmAgreesWithGonum: the loaded Dgemm and Sgemm, as installed
// (gonum below the shortcut) and without the shortcut, agree with gonum's
// on random shapes, transposes and leading dimensions, within the
// self-tests' bounds (and never read C when β = 0 nor write its padding).
func TestLoadedGemmAgreesWithGonum(t *testing.T) {
	b := loadedOpenBLAS(t)
	g := gonum.Implementation{}
	rapid.Check(t, func(rt *rapid.T) {
		c := genCase(rt)
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(rt, "seed"), 3))
		d64 := func() float64 { return rng.NormFloat64() }
		d32 := func() float32 { return float32(1 + rng.NormFloat64()) }
		tol := func(int) float64 { return SelfTestTol }
		for _, impl := range []cblasImpl{b.Impl.(cblasImpl), *b.exact} {
			if err := checkCase(impl.Dgemm, g.Dgemm, c, d64, tol); err != nil {
				rt.Fatalf("Dgemm (minWork %d): %v", impl.minWork, err)
			}
			if err := checkCase(impl.Sgemm, g.Sgemm, c, d32, SelfTestTol32); err != nil {
				rt.Fatalf("Sgemm (minWork %d): %v", impl.minWork, err)
			}
		}
	})
}

// TestSmallProductsStayInGo: products below dlMinWork multiply-adds never
// reach the library; larger ones always do.
func TestSmallProductsStayInGo(t *testing.T) {
	calls := 0
	impl := cblasImpl{minWork: dlMinWork,
		dgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			calls++
			gonum.Implementation{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}}
	for _, s := range [][3]int{{1, 1, 1}, {15, 16, 17}, {16, 16, 15}, {16, 16, 16}, {3000, 1024, 1024}} {
		m, n, k := s[0], s[1], s[2]
		calls = 0
		impl.Dgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, make([]float64, m*k), k, make([]float64, k*n), n, 0, make([]float64, m*n), n)
		if want := m*n*k >= dlMinWork; (calls == 1) != want {
			t.Errorf("%d×%d×%d: %d library calls, want %v", m, n, k, calls, want)
		}
	}
}

// wrongBinding loads libopenblas.so.0's cblas_dgemm and cblas_sgemm with a
// binding mistake: column-major order for row-major matrices (what a
// binding that forgot CblasRowMajor computes: the product of the
// transposes, right only for symmetric data).
func wrongBinding(t *testing.T) *Backend {
	t.Helper()
	loadedOpenBLAS(t)
	h, err := purego.Dlopen("libopenblas.so.0", purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		t.Fatal(err)
	}
	var dgemm func(order, tA, tB, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
	var sgemm func(order, tA, tB, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	purego.RegisterLibFunc(&dgemm, h, "cblas_dgemm")
	purego.RegisterLibFunc(&sgemm, h, "cblas_sgemm")
	const colMajor = 102
	impl := cblasImpl{
		dgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			if lda >= m && ldb >= k && ldc >= m { // what column-major needs, or OpenBLAS refuses the call
				dgemm(colMajor, cblasTranspose(tA), cblasTranspose(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			}
		},
		sgemm: func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			if lda >= m && ldb >= k && ldc >= m {
				sgemm(colMajor, cblasTranspose(tA), cblasTranspose(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			}
		}}
	return &Backend{Name: "openblas", Impl: impl, Impl32: impl, exact: impl.exact(), Source: "wrong binding", Library: "libopenblas.so.0"}
}

// TestSelectRejectsWrongLoadedKernel: the real library behind a wrong
// binding fails the self-test and Select falls back to pure Go, naming it.
func TestSelectRejectsWrongLoadedKernel(t *testing.T) {
	wrong := wrongBinding(t)
	if err := selfTests(wrong); err == nil || !strings.Contains(err.Error(), "Dgemm(") {
		t.Fatalf("self-test of a column-major binding: %v", err)
	}
	if err := SelfTest32(wrong.exact, gonum.Implementation{}); err == nil {
		t.Fatal("Sgemm self-test accepted a column-major binding")
	}
	src := sources{linked: func() (*Backend, error) { return nil, ErrNotBuilt },
		load: func(string) (*Backend, error) { return wrong, nil }, libs: []string{"libopenblas.so.0"}}
	b, note, err := choose("auto", src)
	if err != nil || b.Name != "go" || !strings.Contains(note, "failed its self-test") || len(b.SelfTestFailures) != 1 {
		t.Errorf("choose(auto) with a wrong binding: %v, %q, %v", b, note, err)
	}
}

// TestFallbackWhenLibraryMissing: with the real loader, libraries that do
// not exist leave pure Go in place for "auto" (the note naming them), are an
// error for "openblas" and for a named file.
func TestFallbackWhenLibraryMissing(t *testing.T) {
	const missing = "libcertify-no-such-blas.so.0"
	if _, err := Load(missing); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(%q): %v, want ErrNotFound naming it", missing, err)
	}
	src := sources{linked: func() (*Backend, error) { return nil, ErrNotBuilt }, load: loadCBLAS,
		libs: []string{missing, "/nonexistent/libopenblas.so.0"}}
	b, note, err := choose("auto", src)
	if err != nil || b.Name != "go" || !strings.Contains(note, "no OpenBLAS") || !strings.Contains(note, missing) || !strings.Contains(note, "/nonexistent/libopenblas.so.0") {
		t.Errorf("auto: %v, %q, %v", b, note, err)
	}
	if _, _, err := choose("openblas", src); !errors.Is(err, ErrNotFound) {
		t.Errorf("openblas: %v, want ErrNotFound", err)
	}
	if _, _, err := choose("/nonexistent/libopenblas.so.0", src); !errors.Is(err, ErrNotFound) {
		t.Errorf("a named missing file: %v, want ErrNotFound", err)
	}
	// A shared library without CBLAS is refused, naming the symbol.
	if _, err := Load("libm.so.6"); err == nil || !strings.Contains(err.Error(), "cblas_dgemm") {
		t.Errorf("Load(libm.so.6): %v, want no cblas_dgemm", err)
	}
}

// TestReferenceBLASIsNotTheDefault: Debian's reference BLAS (libblas3) is a
// correct CBLAS but slower than gonum: "auto" does not take it, naming it
// gets it.
func TestReferenceBLASIsNotTheDefault(t *testing.T) {
	const ref = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"
	if _, err := os.Stat(ref); err != nil {
		t.Skipf("Debian's reference BLAS is not installed (libblas3): %v", err)
	}
	src := sources{linked: func() (*Backend, error) { return nil, ErrNotBuilt }, load: loadCBLAS, libs: []string{ref}}
	b, note, err := choose("auto", src)
	if err != nil || b.Name != "go" || !strings.Contains(note, "is not OpenBLAS") {
		t.Errorf("auto with only the reference BLAS: %v, %q, %v", b, note, err)
	}
	b, note, err = choose(ref, src)
	if err != nil || b.Name != "cblas" || b.Kernel != "unknown" || !strings.Contains(note, "self-tested") {
		t.Errorf("the reference BLAS named: %v, %q, %v", b, note, err)
	}
}
