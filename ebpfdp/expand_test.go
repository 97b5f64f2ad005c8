package ebpfdp

import (
	"testing"
)

// checkExpansion verifies that the prefixes cover exactly [lo, hi], in
// order, without overlap, and that there are at most 2w-2 of them (the
// bound for prefix expansion) when w > 1.
func checkExpansion(t *testing.T, lo, hi uint64, w int) {
	t.Helper()
	ps := expandRange(lo, hi, w)
	next := lo
	for i, p := range ps {
		if p.plen < 0 || p.plen > w {
			t.Fatalf("[%d,%d]/%d: prefix %d has plen %d", lo, hi, w, i, p.plen)
		}
		size := w - p.plen
		if p.value != next {
			t.Fatalf("[%d,%d]/%d: prefix %d starts at %d, want %d", lo, hi, w, i, p.value, next)
		}
		if size < 64 && p.value&(uint64(1)<<size-1) != 0 {
			t.Fatalf("[%d,%d]/%d: prefix %d (%d/%d) is not aligned", lo, hi, w, i, p.value, p.plen)
		}
		end := blockEnd(p.value, size)
		if end > hi {
			t.Fatalf("[%d,%d]/%d: prefix %d ends at %d, past hi", lo, hi, w, i, end)
		}
		if prefixMask64(p.plen, w)&p.value != p.value {
			t.Fatalf("[%d,%d]/%d: prefix %d has bits outside its mask", lo, hi, w, i)
		}
		if end == hi {
			if i != len(ps)-1 {
				t.Fatalf("[%d,%d]/%d: %d prefixes after the range ends", lo, hi, w, len(ps)-1-i)
			}
			if w > 1 && len(ps) > 2*w-2 {
				t.Fatalf("[%d,%d]/%d: %d prefixes, more than 2w-2", lo, hi, w, len(ps))
			}
			return
		}
		next = end + 1
	}
	t.Fatalf("[%d,%d]/%d: prefixes stop at %d", lo, hi, w, next)
}

func TestExpandRange(t *testing.T) {
	for _, tc := range []struct {
		lo, hi uint64
		w      int
		n      int
	}{
		{0, 0, 16, 1},
		{80, 80, 16, 1},
		{0, 65535, 16, 1},
		{1, 65534, 16, 30}, // the worst case: 2w-2
		{1000, 2000, 16, 0},
		{1024, 2047, 16, 1},
		{0, 1023, 16, 1},
		{5, 5, 3, 1},
		{0, ^uint64(0), 64, 1},
		{1, ^uint64(0) - 1, 64, 126},
		{1 << 63, ^uint64(0), 64, 1},
	} {
		checkExpansion(t, tc.lo, tc.hi, tc.w)
		if n := len(expandRange(tc.lo, tc.hi, tc.w)); tc.n != 0 && n != tc.n {
			t.Errorf("[%d,%d]/%d: %d prefixes, want %d", tc.lo, tc.hi, tc.w, n, tc.n)
		}
	}
}

func FuzzExpandRange(f *testing.F) {
	f.Add(uint64(1000), uint64(2000), uint8(16))
	f.Add(uint64(1), uint64(6), uint8(3))
	f.Add(uint64(0), ^uint64(0), uint8(64))
	f.Fuzz(func(t *testing.T, a, b uint64, w uint8) {
		width := int(w%64) + 1
		if width < 64 {
			a &= uint64(1)<<width - 1
			b &= uint64(1)<<width - 1
		}
		if a > b {
			a, b = b, a
		}
		checkExpansion(t, a, b, width)
	})
}

func TestPrefixMask64(t *testing.T) {
	for _, tc := range []struct {
		plen, w int
		want    uint64
	}{
		{0, 16, 0}, {16, 16, 0xffff}, {4, 16, 0xf000}, {1, 3, 4}, {64, 64, ^uint64(0)}, {1, 64, 1 << 63},
	} {
		if got := prefixMask64(tc.plen, tc.w); got != tc.want {
			t.Errorf("prefixMask64(%d, %d) = %#x, want %#x", tc.plen, tc.w, got, tc.want)
		}
	}
}
