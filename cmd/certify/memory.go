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

// boundHeap sets the Go runtime's soft memory limit (runtime/debug
// SetMemoryLimit) to the memory it uses now plus heapHeadroom, unless the
// user set $GOMEMLIMIT, and returns the limit in force in bytes. Call it once
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
	limit := int64(ms.Sys-ms.HeapReleased) + heapHeadroom
	debug.SetMemoryLimit(limit)
	return limit
}
