package main

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestBoundHeap checks the soft memory limit boundHeap sets: with a live
// 200 MB array (far below heapFloor) the floor itself, and left alone when
// $GOMEMLIMIT is set.
func TestBoundHeap(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	live := make([]float64, 25<<20) // 200 MiB
	t.Setenv("GOMEMLIMIT", "")
	limit := boundHeap()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Fatalf("limit in force %d, returned %d", got, limit)
	}
	if limit != heapFloor {
		t.Errorf("limit %d MiB, want the floor %d MiB (200 MiB live)", limit>>20, heapFloor>>20)
	}
	runtime.KeepAlive(live)

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "3GiB")
	if got := boundHeap(); got != math.MaxInt64 {
		t.Errorf("with $GOMEMLIMIT set: limit %d, want it untouched", got)
	}
}

// TestHeapLimit checks heapLimit on both sides of the floor: a small data
// set gets the floor, a large one (60,000 examples of the benchmark
// network: ≈ 1.6 GB, 3 GB) its own size plus the headroom.
func TestHeapLimit(t *testing.T) {
	for _, c := range []struct{ inUse, want int64 }{
		{0, heapFloor},
		{200 << 20, heapFloor},
		{heapFloor - heapHeadroom, heapFloor},
		{heapFloor - heapHeadroom + 1, heapFloor + 1},
		{3 << 30, 3<<30 + heapHeadroom},
	} {
		if got := heapLimit(c.inUse); got != c.want {
			t.Errorf("heapLimit(%d) = %d, want %d", c.inUse, got, c.want)
		}
	}
}
