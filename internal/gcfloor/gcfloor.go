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
//
// Go has no setting for a floor. Tuning GOGC after each collection was
// tried and rejected: it lags a cycle behind, so when the live data grows
// fast the percent sized for a small heap applies to a large one and the
// heap overshoots many times over before the next collection corrects it.
// A Floor instead holds a ballast: one pointer-free allocation the process
// never touches, which the collector counts as live data but never scans
// and the kernel never backs with memory. The heap goal is then
// (live + ballast) × (1 + GOGC/100): at least the floor for a small heap,
// and the floor more than without one for a large heap (of which the
// ballast is address space only: the heap's memory may grow by floor −
// ballast, the garbage collected later), with no feedback to go wrong.
//
// The ballast is untouched memory only when it comes from address space the
// heap never used: start the floor early, before the heap has grown and
// shrunk (the daemon does so first thing).
//
// The ballast does count towards a memory limit (GOMEMLIMIT,
// debug.SetMemoryLimit), which is about address space the heap holds, not
// RSS: raise such a limit by the ballast's size.
package gcfloor

import (
	"math"
	"runtime"
	"runtime/metrics"
)

// DefaultMin is p4tcd's floor (--gc-min-heap): a few tens of MiB more than
// a small switch would use without one, and on the write path of the
// benchmarks (integration.BenchmarkPrivilegedWritePath) most of what no
// collection at all would save.
const DefaultMin = 64 << 20

// A Floor keeps the heap goal at or above its size while the process holds
// it. Stop it to let the ballast go.
type Floor struct {
	// ballast is never read or written; a nil slice once stopped.
	ballast []byte
}

// Start gives the heap a floor of min bytes over a GC percent of base
// (what GOGC is; CurrentPercent reads it). With min 0 or the collector off
// (base < 0) it does nothing.
func Start(min uint64, base int) *Floor {
	if min == 0 || base < 0 {
		return &Floor{}
	}
	return &Floor{ballast: make([]byte, ballastFor(min, base))}
}

// ballastFor is the ballast that puts the goal of an empty heap,
// ballast × (1 + base/100), at min.
func ballastFor(min uint64, base int) uint64 {
	return min * 100 / (100 + uint64(base))
}

// Size is the ballast's size in bytes: 0 once stopped.
func (f *Floor) Size() int { return len(f.ballast) }

// Stop lets the ballast go: the next collection frees it. Until Stop, the
// caller must keep f reachable (a deferred Stop does).
func (f *Floor) Stop() {
	// A read, so that the ballast is live until here even when f is a
	// stack variable nothing else reads.
	runtime.KeepAlive(f.ballast)
	f.ballast = nil
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
