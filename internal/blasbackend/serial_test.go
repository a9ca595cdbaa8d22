package blasbackend

import (
	"runtime"
	"testing"
)

// TestSerialProducts: with a backend whose products have a thread count
// in use, SerialProducts sets it to 1 until the outermost restore, nested
// calls included, and restores the count it found; a second call of the
// same restore does nothing.
func TestSerialProducts(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("GOMAXPROCS 1: SerialProducts does nothing")
	}
	prev := inUse
	defer func() { inUseMu.Lock(); inUse = prev; inUseMu.Unlock() }()
	n := 3
	b := &Backend{Name: "fake", threads: func() int { return n }, setThreads: func(k int) { n = k }}
	inUseMu.Lock()
	inUse = b
	inUseMu.Unlock()
	r1 := SerialProducts()
	if n != 1 {
		t.Fatalf("threads %d inside SerialProducts, want 1", n)
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
