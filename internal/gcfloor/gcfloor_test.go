package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name       string
		live, min  uint64
		base, want int
	}{
		{name: "small heap reaches the floor", live: 4 * mib, min: 64 * mib, base: 100, want: 1500},
		{name: "live data at the floor", live: 64 * mib, min: 64 * mib, base: 100, want: 100},
		{name: "live data over the floor", live: 1 << 30, min: 64 * mib, base: 100, want: 100},
		{name: "base already past the floor", live: 30 * mib, min: 64 * mib, base: 400, want: 400},
		{name: "no live data yet", live: 0, min: 64 * mib, base: 100, want: maxPercent},
		{name: "tiny live data is bounded", live: 1, min: 1 << 40, base: 100, want: maxPercent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentFor(tc.live, tc.min, tc.base); got != tc.want {
				t.Errorf("percentFor(%d, %d, %d) = %d, want %d", tc.live, tc.min, tc.base, got, tc.want)
			}
		})
	}
}

// keepPercent puts the process's GC percent back when the test ends.
func keepPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// churn allocates n bytes of garbage in 64 KiB pieces and returns how
// many collections ran meanwhile.
func churn(n int) uint64 {
	c0 := gcCycles()
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	return gcCycles() - c0
}

// TestFloorFewerCollections: with a small live heap, the same garbage
// brings far fewer collections with a floor than with GOGC=100 alone.
func TestFloorFewerCollections(t *testing.T) {
	keepPercent(t)
	runtime.GC()
	without := churn(512 << 20)

	f := Start(64<<20, 100)
	defer f.Stop()
	if f.Percent() <= 100 {
		t.Fatalf("percent with a 64 MiB floor over a small heap = %d, want > 100", f.Percent())
	}
	with := churn(512 << 20)
	t.Logf("collections for 512 MiB of garbage: %d without a floor, %d with a 64 MiB floor", without, with)
	if with == 0 || with*4 > without {
		t.Errorf("collections with the floor = %d, without = %d: want some, and at most a quarter", with, without)
	}
}

// TestFloorGivesWayToLiveData: once the live data is past the floor, the
// base percent applies again.
func TestFloorGivesWayToLiveData(t *testing.T) {
	keepPercent(t)
	f := Start(16<<20, 100)
	defer f.Stop()
	live := make([]byte, 64<<20)
	for i := 0; i < 50 && f.Percent() != 100; i++ {
		runtime.GC() // each one's cleanup re-adjusts, soon after
		runtime.Gosched()
	}
	runtime.KeepAlive(live)
	if got := f.Percent(); got != 100 {
		t.Errorf("percent with 64 MiB live over a 16 MiB floor = %d, want the base 100", got)
	}
}

func TestStopRestoresBase(t *testing.T) {
	keepPercent(t)
	runtime.GC() // measure the live data now, not another test's
	f := Start(64<<20, 150)
	if got := CurrentPercent(); got <= 150 {
		t.Errorf("GC percent under the floor = %d, want > 150", got)
	}
	f.Stop()
	f.Stop() // twice is harmless
	if got := CurrentPercent(); got != 150 {
		t.Errorf("GC percent after Stop = %d, want the base 150", got)
	}
	runtime.GC()
	runtime.GC()
	if got := CurrentPercent(); got != 150 {
		t.Errorf("GC percent after Stop and two collections = %d, want 150 (no adjustment after Stop)", got)
	}
}

func TestStartOffOrZero(t *testing.T) {
	keepPercent(t)
	debug.SetGCPercent(-1)
	Start(64<<20, -1)
	if got := CurrentPercent(); got != -1 {
		t.Errorf("GC percent after Start over GOGC=off = %d, want -1 (untouched)", got)
	}
	debug.SetGCPercent(100)
	Start(0, 100)
	if got := CurrentPercent(); got != 100 {
		t.Errorf("GC percent after Start with no floor = %d, want 100 (untouched)", got)
	}
}
