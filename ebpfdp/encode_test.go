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

// TestPortMapDense: the slice of small ports answers what the map does,
// for ports in it, ports between, large ports and values too wide.
func TestPortMapDense(t *testing.T) {
	ifindex := map[uint32]uint32{1: 7, 2: 0, 5: 1<<32 - 1, 1000: 9, 1 << 31: 3}
	pm := newPortMap(ifindex)
	if len(pm.dense) == 0 || len(pm.dense) > 4*len(ifindex)+16 {
		t.Fatalf("dense slice of %d", len(pm.dense))
	}
	for _, v := range [][]byte{{0}, {1}, {2}, {3}, {5}, {0x03, 0xe8}, {0x80, 0, 0, 0}, {0, 0, 0, 0, 1}, {1, 0, 0, 0, 1}, {0xff, 0xff, 0xff, 0xff}} {
		got, gerr := pm.toIfindex(v)
		want, ok := ifindex[uint32(beUint64(v))]
		if ok && len(v) <= 4 {
			if gerr != nil || got != want {
				t.Errorf("port %x: %d, %v; want %d", v, got, gerr, want)
			}
		} else if gerr == nil {
			t.Errorf("port %x: %d, want an error", v, got)
		}
	}
}
