package tcbackend

import (
	"fmt"
	"strconv"
	"strings"
)

// p4tcType is a P4TC data type as an action parameter carries it: the
// container (P4TC_T_*), the bit width the template declares (bitend+1), and
// how a value travels in P4TC_ACT_PARAMS_VALUE_RAW.
type p4tcType struct {
	// name is the type as the template and the introspection JSON spell
	// it ("bit9", "macaddr", "dev", ...).
	name string
	// container is the P4TC_T_* id.
	container uint32
	// bits is the declared width: P4TC_ACT_PARAMS_TYPE_BITEND is bits-1.
	bits int
	// size is the byte length of a value: BITS_TO_BYTES of the kernel
	// type's bitsz (net/sched/p4tc/p4tc_types.c: u16 is 2, macaddr 6,
	// dev 4).
	size int
	// hostOrder: the value is a host-order (little-endian) integer;
	// otherwise it is in network order (macaddr, ipv4, ipv6, beN).
	hostOrder bool
	// dev: the value is an ifindex.
	dev bool
}

// parseType resolves a P4TC type name the way iproute2-p4tc does
// (tc/p4_types.c get_p4type_byarg): bitN and intN pick the smallest
// container of 8, 16, 32, 64 or 128 bits and keep N as the width; named types
// have fixed widths. bool is refused: the kernel sizes it as 32 bits while
// iproute2 sends no bytes, so its wire form is not settled.
func parseType(a *abiTable, name string) (p4tcType, error) {
	t := p4tcType{name: name}
	intType := func(prefix string, signed bool) (bool, error) {
		if !strings.HasPrefix(name, prefix) {
			return false, nil
		}
		n, err := strconv.Atoi(name[len(prefix):])
		if err != nil || n <= 0 || n > 128 {
			return true, fmt.Errorf("parse P4TC type %q: width must be 1..128", name)
		}
		t.bits, t.hostOrder = n, true
		var cs = [...]uint32{a.typeU8, a.typeU16, a.typeU32, a.typeU64, a.typeU128}
		if signed {
			cs = [...]uint32{a.typeS8, a.typeS16, a.typeS32, a.typeS64, a.typeS128}
		}
		switch {
		case n <= 8:
			t.container, t.size = cs[0], 1
		case n <= 16:
			t.container, t.size = cs[1], 2
		case n <= 32:
			t.container, t.size = cs[2], 4
		case n <= 64:
			t.container, t.size = cs[3], 8
		default:
			t.container, t.size = cs[4], 16
		}
		return true, nil
	}
	if ok, err := intType("bit", false); ok {
		return t, err
	}
	if ok, err := intType("int", true); ok {
		return t, err
	}
	switch name {
	case "macaddr":
		t.container, t.bits, t.size = a.typeMAC, 48, 6
	case "ipv4":
		t.container, t.bits, t.size = a.typeIPv4, 32, 4
	case "ipv6":
		// iproute2 has no IPv6 P4TC type: an ipv6 address is a u128
		// container holding the address in network order.
		t.container, t.bits, t.size = a.typeU128, 128, 16
	case "be16":
		t.container, t.bits, t.size = a.typeBE16, 16, 2
	case "be32":
		t.container, t.bits, t.size = a.typeBE32, 32, 4
	case "be64":
		t.container, t.bits, t.size = a.typeBE64, 64, 8
	case "dev":
		t.container, t.bits, t.size, t.hostOrder, t.dev = a.typeDev, 32, 4, true, true
	case "bool":
		return t, fmt.Errorf("parse P4TC type %q: bool parameters are not supported (kernel and iproute2 disagree on their size)", name)
	default:
		return t, fmt.Errorf("parse P4TC type %q: unknown type", name)
	}
	return t, nil
}

// encode lays out a canonical big-endian value (P4Runtime's bytestring) in
// the type's wire form. It fails when the value needs more than t.bits bits.
func (t p4tcType) encode(v []byte) ([]byte, error) {
	v = trimLeadingZeros(v)
	if bitLen(v) > t.bits {
		return nil, fmt.Errorf("encode %s value 0x%x: more than %d bits", t.name, v, t.bits)
	}
	out := make([]byte, t.size)
	if t.hostOrder {
		for i := 0; i < len(v); i++ {
			out[i] = v[len(v)-1-i]
		}
		return out, nil
	}
	copy(out[t.size-len(v):], v)
	return out, nil
}

// decode reads a wire value back to canonical big-endian form. Kernels dump
// the whole container (a macaddr comes back as 8 bytes, its 6 first), so
// only the first t.size bytes count.
func (t p4tcType) decode(raw []byte) ([]byte, error) {
	if len(raw) < t.size {
		return nil, fmt.Errorf("decode %s value: %w: %d bytes, want %d", t.name, ErrProtocol, len(raw), t.size)
	}
	raw = raw[:t.size]
	v := make([]byte, t.size)
	if t.hostOrder {
		for i := range raw {
			v[i] = raw[len(raw)-1-i]
		}
	} else {
		copy(v, raw)
	}
	v = trimLeadingZeros(v)
	if bitLen(v) > t.bits {
		return nil, fmt.Errorf("decode %s value: %w: more than %d bits", t.name, ErrProtocol, t.bits)
	}
	return v, nil
}

// trimLeadingZeros returns the canonical form: no leading zero bytes, at
// least one byte.
func trimLeadingZeros(v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 {
		return []byte{0}
	}
	return v
}

// bitLen is the number of significant bits of a big-endian value.
func bitLen(v []byte) int {
	for i, b := range v {
		if b != 0 {
			n := 8
			for b&0x80 == 0 {
				b <<= 1
				n--
			}
			return (len(v)-i-1)*8 + n
		}
	}
	return 0
}
