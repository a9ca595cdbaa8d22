//go:build openblas && cgo

package blasbackend

import (
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestOpenBLASPassesSelfTest(t *testing.T) {
	ob, err := OpenBLAS()
	if err != nil {
		t.Fatal(err)
	}
	if ob.Kernel == "" || ob.Config == "" {
		t.Errorf("kernel %q, config %q", ob.Kernel, ob.Config)
	}
	if err := SelfTest(ob.Impl, gonum.Implementation{}); err != nil {
		t.Fatal(err)
	}
	if err := SelfTest(ob.Impl, naive{}); err != nil {
		t.Fatalf("against the textbook triple loop: %v", err)
	}
	if _, ok := ob.Impl32.(cblasImpl); !ok || !strings.Contains(ob.Source, "cgo") {
		t.Fatalf("Impl32 is %T (source %q), not OpenBLAS's Sgemm through cgo", ob.Impl32, ob.Source)
	}
	if err := SelfTest32(ob.Impl32, gonum.Implementation{}); err != nil {
		t.Fatal(err)
	}
	if err := SelfTest32(ob.Impl32, naive32{}); err != nil {
		t.Fatalf("Sgemm against the textbook triple loop: %v", err)
	}
	n := ob.Threads()
	ob.SetThreads(1)
	if got := ob.Threads(); got != 1 {
		t.Errorf("after SetThreads(1): %d threads", got)
	}
	ob.SetThreads(n)
}

func TestOpenBLASPanicsOnShortSlice(t *testing.T) {
	ob, _ := OpenBLAS()
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"Dgemm, short C", func() {
			a := make([]float64, 4)
			ob.Impl.Dgemm('N', 'N', 2, 2, 2, 1, a, 2, a, 2, 0, make([]float64, 3), 2)
		}},
		{"Sgemm, short C", func() {
			a := make([]float32, 4)
			ob.Impl32.Sgemm('N', 'N', 2, 2, 2, 1, a, 2, a, 2, 0, make([]float32, 3), 2)
		}},
		{"Sgemm, short A", func() {
			a := make([]float32, 4)
			ob.Impl32.Sgemm('N', 'T', 2, 2, 2, 1, a[:3], 2, a, 2, 0, make([]float32, 4), 2)
		}},
		{"Sgemm, lda < k", func() {
			a := make([]float32, 4)
			ob.Impl32.Sgemm('N', 'N', 2, 2, 2, 1, a, 1, a, 2, 0, make([]float32, 4), 2)
		}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.call()
		}()
	}
}

// TestOpenBLASUse: after Use, gonum's blas32 (and blas64) run OpenBLAS, and
// [1 2; 3 4]·[1 2; 3 4]ᵀ = [5 11; 11 25] through blas32.Gemm.
func TestOpenBLASUse(t *testing.T) {
	ob, _ := OpenBLAS()
	ob.Use()
	defer PureGo().Use()
	if _, ok := blas32.Implementation().(cblasImpl); !ok {
		t.Fatalf("blas32 runs %T after Use", blas32.Implementation())
	}
	if _, ok := blas64.Implementation().(cblasImpl); !ok {
		t.Fatalf("blas64 runs %T after Use", blas64.Implementation())
	}
	a := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: []float32{1, 2, 3, 4}}
	c := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float32, 4)}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, a, 0, c)
	for i, w := range []float32{5, 11, 11, 25} {
		if c.Data[i] != w {
			t.Fatalf("C = %v", c.Data)
		}
	}
}
