package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestBoundHeap checks the soft memory limit boundHeap sets: above the memory
// a live 200 MB array occupies, by at most the headroom plus the runtime's
// own overhead, and left alone when $GOMEMLIMIT is set.
func TestBoundHeap(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	live := make([]float64, 25<<20) // 200 MiB
	t.Setenv("GOMEMLIMIT", "")
	limit := boundHeap()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("limit in force %d, returned %d", got, limit)
	}
	lo := int64(8*len(live)) + heapHeadroom
	if limit < lo || limit > lo+256<<20 {
		t.Errorf("limit %d MiB, want between %d and %d MiB", limit>>20, lo>>20, (lo+256<<20)>>20)
	}
	runtime.KeepAlive(live)

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "3GiB")
	if got := boundHeap(); got != math.MaxInt64 {
		t.Errorf("with $GOMEMLIMIT set: limit %d, want it untouched", got)
	}
}
