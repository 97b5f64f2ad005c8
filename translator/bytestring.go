package translator

import (
	"encoding/hex"
	"math/bits"
)

// canonical returns the canonical form of an unsigned P4Runtime bytestring of
// width bits (P4Runtime v1.5 §8.3 "Bytestrings"): leading zero bytes removed,
// at least one byte. It reslices b and does not copy. ok is false when b is
// empty or its value needs more than width bits.
func canonical(b []byte, width int) (c []byte, ok bool) {
	if len(b) == 0 {
		return nil, false
	}
	i := 0
	for i < len(b)-1 && b[i] == 0 {
		i++
	}
	c = b[i:]
	if width <= 0 {
		return c, true
	}
	return c, bitLen(c) <= width
}

// bitLen is the number of significant bits of the big-endian unsigned value b.
func bitLen(b []byte) int {
	for i, x := range b {
		if x != 0 {
			return (len(b)-i-1)*8 + bits.Len8(x)
		}
	}
	return 0
}

// minBytes is the byte length of a value of width bits.
func minBytes(width int) int { return (width + 7) / 8 }

// hexOf renders a bytestring for an error message. Messages never carry raw
// bytes: Go protobuf rejects invalid UTF-8 in string fields.
func hexOf(b []byte) string {
	const max = 32
	if len(b) > max {
		return "0x" + hex.EncodeToString(b[:max]) + "…"
	}
	return "0x" + hex.EncodeToString(b)
}

// isZero reports whether every byte of b is zero.
func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// padTo writes the big-endian value c right-aligned into dst (len(dst) >=
// len(c)), zeroing the rest.
func padTo(dst, c []byte) {
	n := len(dst) - len(c)
	clear(dst[:n])
	copy(dst[n:], c)
}
