package blasbackend

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
	"pgregory.net/rapid"
)

// naive32 is an independent Sgemm: the textbook triple loop in float32,
// summing in order (k roundings of the running sum, the worst order for the
// error bound).
type naive32 struct{ gonum.Implementation }

func (naive32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				s += opA(tA, a, lda, i, p) * opB(tB, b, ldb, p, j)
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// opA is op(A)[i, p] for row-major A: A[p, i] when transposed.
func opA(tA blas.Transpose, a []float32, lda, i, p int) float32 {
	if tA == blas.Trans {
		return a[p*lda+i]
	}
	return a[i*lda+p]
}

// opB is op(B)[p, j] for row-major B: B[j, p] when transposed.
func opB(tB blas.Transpose, b []float32, ldb, p, j int) float32 {
	if tB == blas.Trans {
		return b[j*ldb+p]
	}
	return b[p*ldb+j]
}

// wide32 is an Sgemm more accurate than float32: it sums in float64 and
// rounds once. A correct BLAS may be this accurate, so it must pass.
type wide32 struct{ gonum.Implementation }

func (wide32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(opA(tA, a, lda, i, p)) * float64(opB(tB, b, ldb, p, j))
			}
			s *= float64(alpha)
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(s)
		}
	}
}

type sgemmFunc = func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

// fake32 wraps naive32 and then damages its result in one way.
type fake32 struct {
	naive32
	damage sgemmFunc
}

func (f fake32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	f.damage(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// round11 rounds x to 11 significant bits (float16's precision, unit
// roundoff 2⁻¹¹), ties away from zero; the exponent range is float32's.
func round11(x float32) float32 {
	fr, e := math.Frexp(float64(x)) // x = fr·2^e, 0.5 ≤ |fr| < 1
	return float32(math.Ldexp(math.Round(math.Ldexp(fr, 11)), e-11))
}

func TestRound11(t *testing.T) {
	for _, tc := range []struct{ x, want float32 }{
		{1, 1}, {-3, -3}, {0, 0},
		{1 + 0x1p-10, 1 + 0x1p-10},                                   // 11 bits: kept
		{1 + 0x1p-11, 1 + 0x1p-10},                                   // a tie, away from zero
		{1 + 0x1p-12, 1},                                             // below half an ulp
		{2047, 2047}, {4095, 4096}, {-4093.5, -4094}, {4092.9, 4092}, // ulp 2 above 2048
	} {
		if got := round11(tc.x); got != tc.want {
			t.Errorf("round11(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}

func TestSelfTest32AcceptsIndependentSgemm(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cand, ref blas.Float32
	}{
		{"textbook loop against gonum", naive32{}, gonum.Implementation{}},
		{"gonum against textbook loop", gonum.Implementation{}, naive32{}},
		{"float64-accumulated against gonum", wide32{}, gonum.Implementation{}},
	} {
		if err := SelfTest32(tc.cand, tc.ref); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestSelfTest32RejectsWrongSgemm(t *testing.T) {
	nv := naive32{}
	// largest: the tolerance grows with k, so damage confined to the product
	// with the largest k (600×512×512) shows it is tight where it is loosest.
	largest := func(k int) bool { return k >= 512 }
	for _, tc := range []struct {
		name   string
		damage sgemmFunc
		want   string
	}{
		{"one element off by 1e-3 relative in the largest product", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			if largest(k) {
				c[(m-1)*ldc+n-1] *= 1 + 1e-3
			}
		}, "k=512"},
		{"ignores Trans of B (on square shapes only)", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			if n == k && ldb >= n {
				tB = blas.NoTrans
			}
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}, "C["},
		{"ignores Trans of A (on square shapes only)", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			if m == k && lda >= m {
				tA = blas.NoTrans
			}
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}, "C["},
		{"reads C when β = 0", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					c[i*ldc+j] *= beta
				}
			}
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, 1, c, ldc)
		}, "NaN"},
		{"writes the padding of C", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			for i := 0; i < m; i++ {
				for j := n; j < ldc; j++ {
					c[i*ldc+j] = 0
				}
			}
		}, "outside"},
		{"computes in float16-like precision in the largest product", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			nv.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
			if largest(k) {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						c[i*ldc+j] = round11(c[i*ldc+j])
					}
				}
			}
		}, "k=512"},
		{"ignores α", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			nv.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		}, "α=-0.5"},
		{"panics", func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			panic("kernel crashed")
		}, "panic: kernel crashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SelfTest32(fake32{damage: tc.damage}, gonum.Implementation{})
			if err == nil {
				t.Fatal("self-test accepted a wrong Sgemm")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "Sgemm(") {
				t.Errorf("error %q does not start with Sgemm( and mention %q", err, tc.want)
			}
		})
	}
}

// TestSelfTestTol32 checks the closed form 2γ(k+2), γ(n) = n·2⁻²⁴/(1 − n·2⁻²⁴).
func TestSelfTestTol32(t *testing.T) {
	for _, tc := range []struct {
		k    int
		want float64
	}{
		{0, 4 * 0x1p-24 / (1 - 2*0x1p-24)},
		{1, 6 * 0x1p-24 / (1 - 3*0x1p-24)},
		{512, 1028 * 0x1p-24 / (1 - 514*0x1p-24)},
	} {
		if got := SelfTestTol32(tc.k); math.Abs(got-tc.want) > 1e-15*tc.want {
			t.Errorf("SelfTestTol32(%d) = %g, want %g", tc.k, got, tc.want)
		}
	}
}

// TestSgemmErrorBound checks, as a property over random shapes, transposes,
// α, β and data without underflow, the bound SelfTestTol32 rests on: a
// float32 Sgemm (gonum's, the textbook loop, the float64-accumulated one)
// differs from the exact product by at most γ(k+2)·(Σ|α a b| + |β c|), half
// the tolerance. The exact product is computed in float64, whose own error
// (at most k·2⁻⁵³ of the same sum) is added to the bound.
func TestSgemmErrorBound(t *testing.T) {
	impls := []blas.Float32{gonum.Implementation{}, naive32{}, wide32{}}
	rapid.Check(t, func(t *rapid.T) {
		m, n, k := rapid.IntRange(1, 9).Draw(t, "m"), rapid.IntRange(1, 9).Draw(t, "n"), rapid.IntRange(1, 200).Draw(t, "k")
		tA := rapid.SampledFrom([]blas.Transpose{blas.NoTrans, blas.Trans}).Draw(t, "tA")
		tB := rapid.SampledFrom([]blas.Transpose{blas.NoTrans, blas.Trans}).Draw(t, "tB")
		alpha := rapid.SampledFrom([]float32{1, -0.5, 0.1, 3}).Draw(t, "alpha")
		beta := rapid.SampledFrom([]float32{0, 1, 0.7, -2}).Draw(t, "beta")
		// Entries j·2⁻²⁰, |j| ≤ 2²⁴: 24-bit values in [−16, 16], no underflow.
		entry := rapid.Custom(func(t *rapid.T) float32 {
			return float32(rapid.IntRange(-1<<24, 1<<24).Draw(t, "j")) * 0x1p-20
		})
		a := rapid.SliceOfN(entry, m*k, m*k).Draw(t, "a")
		b := rapid.SliceOfN(entry, k*n, k*n).Draw(t, "b")
		c0 := rapid.SliceOfN(entry, m*n, m*n).Draw(t, "c")
		lda, ldb := k, n
		if tA == blas.Trans {
			lda = m
		}
		if tB == blas.Trans {
			ldb = k
		}
		for _, impl := range impls {
			c := append([]float32(nil), c0...)
			impl.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var exact, scale float64
					for p := 0; p < k; p++ {
						ab := float64(alpha) * float64(opA(tA, a, lda, i, p)) * float64(opB(tB, b, ldb, p, j))
						exact += ab
						scale += math.Abs(ab)
					}
					if beta != 0 {
						exact += float64(beta) * float64(c0[i*n+j])
						scale += math.Abs(float64(beta) * float64(c0[i*n+j]))
					}
					bound := (SelfTestTol32(k)/2 + float64(k+2)*0x1p-53) * scale
					if d := math.Abs(float64(c[i*n+j]) - exact); d > bound {
						t.Fatalf("%T: C[%d, %d] = %v, exact %v: error %.3g > bound %.3g", impl, i, j, c[i*n+j], exact, d, bound)
					}
				}
			}
		}
	})
}

// okOpenBLAS builds a stand-in for OpenBLAS linked at build time whose Dgemm
// and Sgemm are the given ones.
func okOpenBLAS(d blas.Float64, s blas.Float32) sources {
	return sources{linked: func() (*Backend, error) {
		return &Backend{Name: "openblas", Impl: d, Impl32: s, Kernel: "fake", Config: "fake", Source: "linked (fake)"}, nil
	}, load: func(lib string) (*Backend, error) { return nil, ErrNotFound }}
}

// okLibrary builds a stand-in for the run-time loader that finds OpenBLAS
// with the given Dgemm and Sgemm under the name lib and nothing else.
func okLibrary(lib string, d blas.Float64, s blas.Float32) sources {
	return sources{linked: func() (*Backend, error) { return nil, ErrNotBuilt },
		load: func(name string) (*Backend, error) {
			if name != lib {
				return nil, fmt.Errorf("%w: %s: cannot open shared object file", ErrNotFound, name)
			}
			return &Backend{Name: "openblas", Impl: d, Impl32: s, Kernel: "fake", Config: "fake",
				Library: "/fake/" + lib, Source: lib + " loaded at run time (fake)"}, nil
		}, libs: []string{"libmissing.so.1", lib}}
}

// TestSelectFallsBackOnEitherSelfTest: a backend whose Dgemm or whose Sgemm
// is wrong, linked or loaded, is replaced by pure Go for both precisions,
// with the reason in the note and in SelfTestFailures.
func TestSelectFallsBackOnEitherSelfTest(t *testing.T) {
	badS := fake32{damage: func(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		naive32{}.Sgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc) // ignores α
	}}
	badD := fake{damage: func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
		panic("kernel crashed")
	}}
	g := gonum.Implementation{}
	for _, tc := range []struct {
		request string // openblas, auto or a library
		src     sources
		want    string // in the note; "" means the candidate is kept
	}{
		{"auto", okOpenBLAS(g, g), ""},
		{"openblas", okOpenBLAS(g, badS), "Sgemm("},
		{"auto", okOpenBLAS(g, badS), "Sgemm("},
		{"openblas", okOpenBLAS(badD, g), "Dgemm("},
		{"auto", okLibrary("libopenblas.so.0", g, g), ""},
		{"", okLibrary("libopenblas.so.0", g, g), ""},
		{"openblas", okLibrary("libopenblas.so.0", g, g), ""},
		{"auto", okLibrary("libopenblas.so.0", g, badS), "Sgemm("},
		{"auto", okLibrary("libopenblas.so.0", badD, g), "Dgemm("},
		{"/opt/libopenblas.so.0", okLibrary("/opt/libopenblas.so.0", badD, g), "Dgemm("},
	} {
		b, note, err := choose(tc.request, tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.request, err)
		}
		if tc.want == "" {
			if b.Name != "openblas" || !strings.Contains(note, "Sgemm") || !strings.Contains(note, "self-tested") || len(b.SelfTestFailures) != 0 {
				t.Errorf("%s with right Dgemm and Sgemm: %v, %q; want the candidate kept", tc.request, b, note)
			}
			continue
		}
		_, g64 := b.Impl.(gonum.Implementation)
		_, g32 := b.Impl32.(gonum.Implementation)
		if b.Name != "go" || !g64 || !g32 || !strings.Contains(note, "falling back") || !strings.Contains(note, tc.want) ||
			len(b.SelfTestFailures) != 1 || !strings.Contains(b.SelfTestFailures[0], tc.want) {
			t.Errorf("%s with a wrong %s: %v (Impl %T, Impl32 %T), %q, failures %q; want pure Go for both, the note naming it",
				tc.request, tc.want, b, b.Impl, b.Impl32, note, b.SelfTestFailures)
		}
	}
}

// counting counts the Dgemm and Sgemm calls that reach it.
type counting struct {
	gonum.Implementation
	d, s *int
}

func (c counting) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, cc []float64, ldc int) {
	*c.d++
	c.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

func (c counting) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int) {
	*c.s++
	c.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, cc, ldc)
}

// TestUseInstallsBothPrecisions: after Use, blas64.Gemm and blas32.Gemm reach
// the backend's Dgemm and Sgemm (and give [1 2; 3 4]·[1 2; 3 4]ᵀ = [5 11;
// 11 25]); a backend without Impl32 leaves blas32 alone.
func TestUseInstallsBothPrecisions(t *testing.T) {
	defer PureGo().Use()
	var d, s int
	cnt := counting{d: &d, s: &s}
	(&Backend{Name: "counting", Impl: cnt, Impl32: cnt}).Use()
	a64 := blas64.General{Rows: 2, Cols: 2, Stride: 2, Data: []float64{1, 2, 3, 4}}
	c64 := blas64.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float64, 4)}
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, a64, a64, 0, c64)
	a32 := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: []float32{1, 2, 3, 4}}
	c32 := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float32, 4)}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a32, a32, 0, c32)
	if d != 1 || s != 1 {
		t.Fatalf("after Use: %d Dgemm and %d Sgemm calls reached the backend, want 1 and 1", d, s)
	}
	for i, w := range []float64{5, 11, 11, 25} {
		if c64.Data[i] != w || float64(c32.Data[i]) != w {
			t.Fatalf("C = %v (float64), %v (float32)", c64.Data, c32.Data)
		}
	}
	(&Backend{Name: "float64 only", Impl: gonum.Implementation{}}).Use()
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a32, a32, 0, c32)
	blas64.Gemm(blas.NoTrans, blas.Trans, 1, a64, a64, 0, c64)
	if d != 1 || s != 2 {
		t.Errorf("after Use of a float64-only backend: %d Dgemm, %d Sgemm calls, want 1 and 2", d, s)
	}
	if p := PureGo(); p.Impl32 == nil {
		t.Error("PureGo has no float32 implementation")
	}
}

// sleepy records the arguments of its product and takes at least 20 ms.
type sleepy struct {
	gonum.Implementation
	args *[]int
}

func (s sleepy) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	*s.args = []int{int(tA), int(tB), m, n, k, lda, ldb, ldc, len(a), len(b), len(c)}
	time.Sleep(20 * time.Millisecond)
}

func (s sleepy) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	*s.args = []int{int(tA), int(tB), m, n, k, lda, ldb, ldc, len(a), len(b), len(c)}
	time.Sleep(20 * time.Millisecond)
}

// TestGemmRate checks the measurement's product (A·Bᵀ, [m, k]·[n, k]ᵀ) and
// its unit: a product that takes 20 ms (sleep; up to 100 ms on a loaded
// machine) for 2·m·n·k = 6·10⁶ operations runs at 0.3 GFLOP/s at most and
// 0.06 at least.
func TestGemmRate(t *testing.T) {
	m, n, k := 300, 100, 100
	want := []int{int(blas.NoTrans), int(blas.Trans), m, n, k, k, k, n, m * k, n * k, m * n}
	var args []int
	for _, tc := range []struct {
		name string
		rate func() float64
	}{
		{"SgemmRate", func() float64 { return SgemmRate(sleepy{args: &args}, m, n, k) }},
		{"DgemmRate", func() float64 { return DgemmRate(sleepy{args: &args}, m, n, k) }},
	} {
		args = nil
		r := tc.rate()
		if !(r <= 0.3 && r >= 0.06) {
			t.Errorf("%s = %g GFLOP/s for 6e6 operations in ≥ 20 ms", tc.name, r)
		}
		if len(args) != len(want) {
			t.Fatalf("%s: product not called", tc.name)
		}
		for i := range want {
			if args[i] != want[i] {
				t.Errorf("%s called (tA, tB, m, n, k, lda, ldb, ldc, len a, b, c) = %v, want %v", tc.name, args, want)
				break
			}
		}
	}
}

func TestSelfTest32RejectsNil(t *testing.T) {
	if err := SelfTest32(nil, gonum.Implementation{}); err == nil || !strings.HasPrefix(err.Error(), "Sgemm") {
		t.Errorf("SelfTest32(nil) = %v", err)
	}
}
