package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// heapHeadroom is how far above the memory in use once a run's data and its
// first-layer cache are loaded boundHeap lets the Go runtime grow: room for
// the per-worker jet workspaces (≈ 115 MB per worker for 1024-unit layers in
// chunks of 1000) and a few α of garbage.
const heapHeadroom = 512 << 20

// heapFloor is the lowest soft memory limit boundHeap sets: below it the Go
// runtime collects as it does by default (GOGC=100). The leaf phases (the
// certificate's and the accuracy bounds' carried coefficients, interval
// rows per worker) need far more than heapHeadroom above the loaded data:
// on the benchmark network at 2000 examples × 50 α, a limit of "in use +
// 512 MiB" (1.17 GB peak RSS) made the full analysis take 484 s of CPU
// (147 s of it system time: the collector and the scavenger returning and
// re-faulting pages) against 192 s with the limit out of the way (1.97 GB
// peak); at 5000 examples the phases took 3.3-4.3 times their CPU at 500
// per example (bench/results/20261204T2125Z-full-1024-5000x50-quiet.log).
// 3 GiB keeps issue 12's 4 GiB budget at 60,000 examples (the live heap
// there is ≈ 1.6 GB, so the limit is then in use + heapHeadroom).
const heapFloor = 3 << 30

// heapLimit is the soft memory limit for inUse bytes of long-lived memory:
// inUse + heapHeadroom, and never below heapFloor.
func heapLimit(inUse int64) int64 {
	return max(inUse+heapHeadroom, heapFloor)
}

// boundHeap sets the Go runtime's soft memory limit (runtime/debug
// SetMemoryLimit) to the memory it uses now plus heapHeadroom, but at least
// heapFloor (heapLimit), unless the user set $GOMEMLIMIT, and returns the
// limit in force in bytes. Call it once
// the long-lived data (inputs, first-layer cache) is in memory.
//
// Why (issue 7: all 60,000 MNIST examples under 2 GiB): with the default
// GOGC=100 the heap may grow to twice the live heap before a collection, and
// the live heap of the benchmark network at 60,000 examples is ≈ 1.6 GB
// (inputs 376 MB, first-layer cache 983 MB, workspaces). The analysis's
// arrays hold no pointers, so collecting more often costs little.
func boundHeap() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1)
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	limit := heapLimit(int64(ms.Sys - ms.HeapReleased))
	debug.SetMemoryLimit(limit)
	return limit
}
