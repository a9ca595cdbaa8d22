package blasbackend

import (
	"runtime"
	"testing"
)

// TestSerialProducts: with a backend whose products have a thread count
// in use, SerialProducts sets it to 1 until the outermost restore, nested
// calls included, and restores the count it found; a second call of the
// same restore does nothing. It does so under GOMAXPROCS 1 too (a SLURM
// task given one CPU): the certificate's products must run on one thread
// whatever the cores, or its last bits depend on them.
func TestSerialProducts(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		serialProducts(t)
	}
}

func serialProducts(t *testing.T) {
	prev := inUse
	defer func() { inUseMu.Lock(); inUse = prev; inUseMu.Unlock() }()
	n := 3
	b := &Backend{Name: "fake", threads: func() int { return n }, setThreads: func(k int) { n = k }}
	inUseMu.Lock()
	inUse = b
	inUseMu.Unlock()
	r1 := SerialProducts()
	if got, want := b.String(), "fake (, 3 threads)"; got != want {
		t.Fatalf("String() %q inside SerialProducts, want %q: reports name the configured count", got, want)
	}
	if n != 1 {
		t.Fatalf("GOMAXPROCS %d: threads %d inside SerialProducts, want 1", runtime.GOMAXPROCS(0), n)
	}
	r2 := SerialProducts()
	r2()
	r2()
	if n != 1 {
		t.Fatalf("threads %d after the inner restore, want 1 until the outer one", n)
	}
	r1()
	if n != 3 {
		t.Fatalf("threads %d after the outer restore, want the 3 it found", n)
	}
	inUseMu.Lock()
	inUse = &Backend{Name: "go"} // no thread count: nothing to do
	inUseMu.Unlock()
	SerialProducts()()
}
