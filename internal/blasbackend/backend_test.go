package blasbackend

import (
	"errors"
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// naive is an independent Dgemm: the textbook triple loop, summing in order.
type naive struct{ gonum.Implementation }

func (naive) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if tA == blas.Trans {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB == blas.Trans {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// fake wraps naive and then damages its result in one way.
type fake struct {
	naive
	damage func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

func (f fake) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	f.damage(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func TestSelfTestAcceptsIndependentDgemm(t *testing.T) {
	if err := SelfTest(naive{}, gonum.Implementation{}); err != nil {
		t.Fatalf("the textbook triple loop fails the self-test against gonum: %v", err)
	}
	if err := SelfTest(gonum.Implementation{}, naive{}); err != nil {
		t.Fatalf("gonum fails the self-test against the textbook triple loop: %v", err)
	}
}

func TestSelfTestRejectsWrongDgemm(t *testing.T) {
	nv := naive{}
	for _, tc := range []struct {
		name   string
		damage func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
		want   string
	}{
		{"one element off by 1e-9 relative in big products", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			if m*n*k > 1<<20 {
				c[(m-1)*ldc+n-1] *= 1 + 1e-9
			}
		}, "C["},
		{"ignores Trans of B (NT computed as NN on square shapes only)", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			if n == k && ldb >= n {
				tB = blas.NoTrans
			}
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}, "C["},
		{"ignores Trans of A", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			if m == k && lda >= m {
				tA = blas.NoTrans
			}
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}, "C["},
		{"reads C when β = 0", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					c[i*ldc+j] *= beta
				}
			}
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, 1, c, ldc)
		}, "NaN"},
		{"writes the padding of C", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			for i := 0; i < m; i++ {
				for j := n; j < ldc; j++ {
					c[i*ldc+j] = 0
				}
			}
		}, "outside"},
		{"computes in float32", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			nv.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			for i := range c {
				c[i] = float64(float32(c[i]))
			}
		}, "C["},
		{"ignores α", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			nv.Dgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		}, "α=-0.5"},
		{"panics", func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
			panic("kernel crashed")
		}, "panic: kernel crashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SelfTest(fake{damage: tc.damage}, gonum.Implementation{})
			if err == nil {
				t.Fatal("self-test accepted a wrong Dgemm")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestSelfTestCoversEveryTranspose(t *testing.T) {
	seen := map[[2]blas.Transpose]bool{}
	big := false
	for _, c := range selfTestCases() {
		seen[[2]blas.Transpose{c.tA, c.tB}] = true
		if 2*c.m*c.n*c.k >= 2*256*256*256 {
			big = true
		}
	}
	if len(seen) != 4 || !big {
		t.Fatalf("cases cover %d transpose pairs (want 4), a product ≥ 2·256³ flops: %v", len(seen), big)
	}
}

func TestSelect(t *testing.T) {
	for _, name := range []string{"go", "gonum", "purego"} {
		b, note, err := Select(name)
		if err != nil || b.Name != "go" || note == "" {
			t.Fatalf("Select(%q) = %v, %q, %v", name, b, note, err)
		}
	}
	for _, name := range []string{"mkl", "blas", "OpenBLAS"} {
		if _, _, err := Select(name); err == nil || !strings.Contains(err.Error(), "unknown") {
			t.Errorf("Select(%q): %v, want unknown", name, err)
		}
	}
	b, note, err := Select("auto")
	if err != nil {
		t.Fatal(err)
	}
	_, linkErr := OpenBLAS()
	_, loadErr := Load("libopenblas.so.0")
	switch {
	case linkErr == nil || loadErr == nil:
		if b.Name != "openblas" || !strings.Contains(note, "self-tested") {
			t.Errorf(`Select("auto") with OpenBLAS available = %v, %q`, b, note)
		}
	default:
		if b.Name != "go" || !strings.Contains(note, "no OpenBLAS") {
			t.Errorf(`Select("auto") without OpenBLAS = %v, %q`, b, note)
		}
		if _, _, err := Select("openblas"); !errors.Is(err, ErrNotFound) {
			t.Errorf(`Select("openblas") without OpenBLAS: %v, want ErrNotFound`, err)
		}
	}
}

// TestUse checks that Use redirects blas64 (and so nn's products): a product
// through blas64 after Use(naive-backed backend) equals the closed form.
func TestUse(t *testing.T) {
	b := PureGo()
	b.Use()
	defer PureGo().Use()
	// [1 2; 3 4]·[1 2; 3 4]ᵀ = [5 11; 11 25].
	a := []float64{1, 2, 3, 4}
	c := make([]float64, 4)
	b.Impl.Dgemm(blas.NoTrans, blas.Trans, 2, 2, 2, 1, a, 2, a, 2, 0, c, 2)
	for i, w := range []float64{5, 11, 11, 25} {
		if math.Abs(c[i]-w) > 0 {
			t.Fatalf("C = %v", c)
		}
	}
	if b.Threads() < 1 || !strings.Contains(b.String(), "go") {
		t.Errorf("Threads %d, String %q", b.Threads(), b.String())
	}
}
