package gcfloor

import (
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
)

func TestBallastFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		min  uint64
		base int
		want uint64
	}{
		{64 * mib, 100, 32 * mib},
		{64 * mib, 300, 16 * mib},
		{64 * mib, 0, 64 * mib},
	} {
		if got := ballastFor(tc.min, tc.base); got != tc.want {
			t.Errorf("ballastFor(%d, %d) = %d, want %d", tc.min, tc.base, got, tc.want)
		}
	}
}

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

var sink []byte

// churn allocates n bytes of garbage in 64 KiB pieces, each written to
// (a Write's garbage is written too, and that paces the allocation), and
// returns how many collections ran meanwhile.
func churn(n int) uint64 {
	c0 := readUint("/gc/cycles/total:gc-cycles")
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
		for i := 0; i < len(sink); i += 256 {
			sink[i] = 1
		}
	}
	sink = nil
	return readUint("/gc/cycles/total:gc-cycles") - c0
}

// TestFloorFewerCollections: with a small live heap, the same garbage
// brings far fewer collections with a floor than with GOGC=100 alone, and
// the heap goal is the floor.
func TestFloorFewerCollections(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	// A memory limit from the environment (GOMEMLIMIT) would make both
	// runs collect often: none for this test.
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(oldLimit)
	runtime.GC()
	goal0 := readUint("/gc/heap/goal:bytes")
	without := churn(512 << 20)

	f := Start(64<<20, 100)
	runtime.GC()
	goal := readUint("/gc/heap/goal:bytes")
	with := churn(512 << 20)
	f.Stop()
	t.Logf("512 MiB of garbage: %d collections without a floor (goal %d MiB), %d with a 64 MiB floor (goal %d MiB)", without, goal0>>20, with, goal>>20)
	if with == 0 || with*4 > without {
		t.Errorf("collections with the floor = %d, without = %d: want some, and at most a quarter", with, without)
	}
	// The goal after a collection nothing ran beside: twice what is
	// live, the ballast (32 MiB) included.
	if want := 64<<20 + goal0; goal < 64<<20 || goal > want {
		t.Errorf("heap goal with a 64 MiB floor = %d MiB, want 64 to %d MiB", goal>>20, want>>20)
	}
}

// TestBallastNotResident: the ballast costs address space, not memory. It
// runs in a fresh process: a heap that grew and shrank (other tests) hands
// a new allocation memory it must zero first.
func TestBallastNotResident(t *testing.T) {
	if os.Getenv("GCFLOOR_FRESH") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBallastNotResident$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GCFLOOR_FRESH=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	before := rssKiB(t)
	f := Start(1<<30, 100)
	after := rssKiB(t)
	if f.Size() != 512<<20 {
		t.Fatalf("ballast of a 1 GiB floor at GOGC=100 = %d bytes, want 512 MiB", f.Size())
	}
	// KiB: a 64 MiB bound catches a ballast the runtime zeroed (512
	// MiB) and allows the heap's own metadata for it (under 1 MiB).
	if after-before > 64<<10 {
		t.Errorf("RSS grew by %d KiB with a 512 MiB ballast, want it untouched", after-before)
	}
	f.Stop()
	if f.Size() != 0 {
		t.Errorf("ballast after Stop = %d bytes, want 0", f.Size())
	}
}

func rssKiB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err) // not Linux
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func TestStartOffOrZero(t *testing.T) {
	if f := Start(64<<20, -1); f.Size() != 0 {
		t.Errorf("ballast with the collector off = %d bytes, want none", f.Size())
	}
	if f := Start(0, 100); f.Size() != 0 {
		t.Errorf("ballast with no floor = %d bytes, want none", f.Size())
	}
}

func TestCurrentPercent(t *testing.T) {
	old := debug.SetGCPercent(250)
	defer debug.SetGCPercent(old)
	if got := CurrentPercent(); got != 250 {
		t.Errorf("CurrentPercent() = %d after SetGCPercent(250)", got)
	}
	debug.SetGCPercent(-1)
	if got := CurrentPercent(); got != -1 {
		t.Errorf("CurrentPercent() = %d with the collector off, want -1", got)
	}
}
