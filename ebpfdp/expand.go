package ebpfdp

import "math/bits"

// prefix is a value with its leading plen bits significant, of a field
// width bits wide: the ternary form of one block of a range.
type prefix struct {
	value uint64
	plen  int
}

// maxRangeBits bounds the width of a range field: ranges are expanded with
// 64-bit arithmetic.
const maxRangeBits = 64

// expandRange splits the range [lo, hi] of a width-bit field into the
// fewest prefixes that cover exactly that range (at most 2*width-2), in
// increasing order: the classic prefix expansion that turns a range match
// into ternary matches. lo <= hi < 2^width must hold.
func expandRange(lo, hi uint64, width int) []prefix {
	var out []prefix
	for {
		// The largest block 2^k that starts at lo, is aligned to its size
		// and ends at or before hi.
		k := 0
		if lo == 0 {
			k = width
		} else {
			k = min(bits.TrailingZeros64(lo), width)
		}
		for k > 0 && blockEnd(lo, k) > hi {
			k--
		}
		out = append(out, prefix{value: lo, plen: width - k})
		end := blockEnd(lo, k)
		if end >= hi {
			return out
		}
		lo = end + 1
	}
}

// blockEnd is the last value of the block of 2^k values starting at lo,
// saturating at the top of the 64-bit space.
func blockEnd(lo uint64, k int) uint64 {
	if k >= 64 {
		return ^uint64(0)
	}
	end := lo + (uint64(1)<<k - 1)
	if end < lo {
		return ^uint64(0)
	}
	return end
}

// prefixMask64 is the mask of the leading plen bits of a width-bit value.
func prefixMask64(plen, width int) uint64 {
	if plen == 0 {
		return 0
	}
	all := ^uint64(0) >> (64 - width)
	return all &^ (all >> plen)
}

// beUint64 reads a canonical big-endian value of at most 8 bytes.
func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// beBytes writes v as n big-endian bytes (n <= 8).
func beBytes(v uint64, n int) []byte {
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}
