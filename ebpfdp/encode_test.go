package ebpfdp

import (
	"testing"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/translator"
)

// FuzzKeyRoundTrip builds LPM keys of the kinds pipeline's vrf_lpm6 table
// (exact vrf, lpm ipv6 dst) and reads them back.
func FuzzKeyRoundTrip(f *testing.F) {
	c, err := p4test.Compile(kindsP4Info, kindsJSON, nil)
	if err != nil {
		f.Fatal(err)
	}
	plans, err := plan(c)
	if err != nil {
		f.Fatal(err)
	}
	p := plans[2]
	f.Add(uint16(5), []byte{0x20, 0x01, 0x0d, 0xb8}, uint8(32))
	f.Add(uint16(0), []byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, vrf uint16, dst []byte, plen uint8) {
		pl := int(plen % 129)
		v := make([]byte, 16)
		copy(v, dst)
		// Clear the bits beyond the prefix, as the translator demands.
		for i := range v {
			for b := 0; b < 8; b++ {
				if i*8+b >= pl {
					v[i] &^= 0x80 >> b
				}
			}
		}
		match := []translator.FieldMatch{{Set: true, Value: canonicalBytes(u16(vrf))}, {}}
		if pl > 0 {
			match[1] = translator.FieldMatch{Set: true, Value: canonicalBytes(v), PrefixLen: pl}
		}
		key := make([]byte, p.keySize)
		if err := p.encodeKey(key, match, newPortMap(nil)); err != nil {
			t.Fatal(err)
		}
		if got := int(ne.Uint32(key)); got != 32+16+pl {
			t.Fatalf("prefixlen %d, want %d", got, 32+16+pl)
		}
		back, err := p.decodeKey(key, newPortMap(nil))
		if err != nil {
			t.Fatal(err)
		}
		for i := range match {
			if back[i].Set != match[i].Set || string(back[i].Value) != string(match[i].Value) || back[i].PrefixLen != match[i].PrefixLen {
				t.Fatalf("field %d: %+v, want %+v", i, back[i], match[i])
			}
		}
	})
}
