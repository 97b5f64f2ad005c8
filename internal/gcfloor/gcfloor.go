// Package gcfloor keeps the Go garbage collector from collecting a small
// heap over and over: it gives the heap a floor below which no collection
// is due.
//
// Go starts a collection when the heap has grown by GOGC percent over the
// data the last one found live. A switch daemon's live data is small until
// its tables fill (a few MiB), so with GOGC=100 a Write of a thousand
// entries, which leaves a few hundred KiB behind, brings a collection every
// few Writes, and the collector's marking, its write barriers and the
// assists it charges to allocations become a sixth of the write path's CPU.
// A floor makes a collection due only once the heap reaches the floor, or
// GOGC percent over the live data when that is more: memory use stays
// bounded by max(floor, live × (1 + GOGC/100)), as with Go's own pacing,
// and a memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still wins over
// both.
//
// Go has no such setting; Floor emulates it by raising the GC percent after
// every collection to what puts the next goal at the floor.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultMin is p4tcd's floor (--gc-min-heap): at most a few tens of MiB
// more than a small switch would use without one, and on the write path
// of the benchmarks (integration.BenchmarkPrivilegedWritePath) about as
// fast as no collection at all.
const DefaultMin = 64 << 20

// A Floor adjusts the GC percent after each collection so that the heap
// goal is at least its minimum. Only one Floor should run in a process: the
// GC percent is process-wide.
type Floor struct {
	min  uint64
	base int

	// mu protects stopped and percent, and orders the SetGCPercent calls
	// of Stop and of the cleanup that runs after each collection.
	mu      sync.Mutex
	stopped bool
	percent int
}

// cycleMark is allocated unreachable for each collection to come: its
// cleanup runs after the collection that frees it. It is not empty and
// holds a pointer, so it is neither a zero-size allocation nor batched
// with others in a tiny block, either of which could outlive a cycle.
type cycleMark struct{ _ *byte }

// Start keeps the heap goal at or above min bytes, over a GC percent of
// base (the percent that applies once the live data is large; negative
// turns the collector off, as GOGC=off, and Start then does nothing). It
// applies now and after every collection until Stop.
func Start(min uint64, base int) *Floor {
	f := &Floor{min: min, base: base}
	if base < 0 || min == 0 {
		f.stopped = true
		return f
	}
	f.adjust()
	return f
}

// Percent is the GC percent the floor set last.
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent
}

// Stop ends the adjustments and puts the GC percent back to the base.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(f.base)
}

// adjust sets the percent for the live data the last collection found and
// arms itself for the end of the next one.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.percent = percentFor(liveHeap(), f.min, f.base)
	debug.SetGCPercent(f.percent)
	runtime.AddCleanup(&cycleMark{}, func(f *Floor) { f.adjust() }, f)
}

// maxPercent bounds the percent a floor sets: with almost no live data
// the percent that reaches the floor is huge, and the goal an overflow
// would wrap to is not.
const maxPercent = 1 << 20

// percentFor is the GC percent that puts the goal, live × (1 + p/100), at
// min, and never below base.
func percentFor(live, min uint64, base int) int {
	if live == 0 {
		live = 1
	}
	if live >= min {
		return base
	}
	p := (min - live) * 100 / live
	if p > maxPercent {
		p = maxPercent
	}
	return max(base, int(p))
}

// CurrentPercent is the process's GC percent now: what GOGC or
// debug.SetGCPercent set, 100 by default, -1 when the collector is off.
func CurrentPercent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	v := s[0].Value.Uint64()
	if v > math.MaxInt32 {
		return -1 // off: the metric reads as uint64(-1)
	}
	return int(v)
}

// liveHeap is the heap memory the last collection found live, in bytes.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
