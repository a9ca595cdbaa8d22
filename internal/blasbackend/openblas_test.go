//go:build openblas && cgo

package blasbackend

import (
	"testing"

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
	n := ob.Threads()
	ob.SetThreads(1)
	if got := ob.Threads(); got != 1 {
		t.Errorf("after SetThreads(1): %d threads", got)
	}
	ob.SetThreads(n)
}

func TestOpenBLASPanicsOnShortSlice(t *testing.T) {
	ob, _ := OpenBLAS()
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a C slice shorter than m×n")
		}
	}()
	a := make([]float64, 4)
	ob.Impl.Dgemm('N', 'N', 2, 2, 2, 1, a, 2, a, 2, 0, make([]float64, 3), 2)
}
