package ebpfdp

import (
	"encoding/binary"
	"fmt"

	"github.com/p4tcd/p4tcd/translator"
)

// ne is the byte order of BPF maps: the host's. The P4TC layouts place
// host-order fields least significant byte first (translator.FieldLayout),
// so p4tcd runs on little-endian hosts only.
var ne = binary.LittleEndian

// portMap translates between P4 ports and the ifindexes the datapath uses
// for them (P4TC type dev; `--port N=IFACE`).
type portMap struct {
	ifindex map[uint32]uint32 // P4 port -> ifindex
	port    map[uint32]uint32 // ifindex -> P4 port
	// dense is ifindex for small ports, indexed by port: 1 + the
	// ifindex, 0 for no such port. Every entry with a port param (most
	// next hops) translates it; a slice saves the map lookup.
	dense []uint64
}

func newPortMap(ifindex map[uint32]uint32) *portMap {
	pm := &portMap{ifindex: ifindex, port: make(map[uint32]uint32, len(ifindex))}
	bound, n := uint32(4*len(ifindex)+16), uint32(0)
	for p, i := range ifindex {
		pm.port[i] = p
		if p < bound {
			n = max(n, p+1)
		}
	}
	if n > 0 {
		pm.dense = make([]uint64, n)
		for p, i := range ifindex {
			if p < n {
				pm.dense[p] = uint64(i) + 1
			}
		}
	}
	return pm
}

// toIfindex translates a canonical P4 port value.
func (pm *portMap) toIfindex(v []byte) (uint32, error) {
	p := beUint64(v)
	var i uint32
	var ok bool
	if p < uint64(len(pm.dense)) {
		// Every port of ifindex below len(dense) is in it (1 + its
		// ifindex); 0 marks no port, so ifindex need not be asked.
		i, ok = uint32(pm.dense[p]-1), pm.dense[p] != 0
	} else {
		i, ok = pm.ifindex[uint32(p)]
	}
	if len(v) > 4 || !ok {
		return 0, translator.Errorf(translator.ErrInvalid, "port %d is not a port of this switch (--port)", p)
	}
	return i, nil
}

// toPort translates an ifindex back to its canonical P4 port value.
func (pm *portMap) toPort(v []byte) ([]byte, error) {
	i := beUint64(v)
	p, ok := pm.port[uint32(i)]
	if !ok {
		return nil, fmt.Errorf("ifindex %d is not the interface of any --port", i)
	}
	return canonicalBytes(beBytes(uint64(p), 4)), nil
}

// canonicalBytes strips leading zero bytes, keeping at least one.
func canonicalBytes(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// putField writes a canonical value into the key fields (fa_key).
func putField(fa []byte, fl *translator.FieldLayout, v []byte, ports *portMap) error {
	if fl.Port {
		i, err := ports.toIfindex(v)
		if err != nil {
			return err
		}
		var b [4]byte // on the stack: ports are in most next-hop values
		binary.BigEndian.PutUint32(b[:], i)
		fl.Put(fa, b[:])
		return nil
	}
	fl.Put(fa, v)
	return nil
}

// getField reads a canonical value from the key fields (fa_key).
func getField(fa []byte, fl *translator.FieldLayout, ports *portMap) ([]byte, error) {
	v := fl.Get(fa)
	if fl.Port {
		return ports.toPort(v)
	}
	return v, nil
}

// putHeader writes the p4tc_table_entry_key header.
func putHeader(key []byte, keysz, maskid uint32) {
	ne.PutUint32(key[0:], keysz)
	ne.PutUint32(key[4:], maskid)
}

// encodeKey writes the map key of an exact or LPM entry into key
// (keySize bytes, zeroed by the caller).
func (p *tablePlan) encodeKey(key []byte, match []translator.FieldMatch, ports *portMap) error {
	fa := key[8:]
	for i, fl := range p.layout.Fields {
		fm := &match[i]
		if !fm.Set {
			continue
		}
		if err := putField(fa, &fl, fm.Value, ports); err != nil {
			return fmt.Errorf("table %s: field %s: %w", p.table.Name, p.table.Fields[i].Name, err)
		}
	}
	switch p.kind {
	case kindLPM:
		plen := 0
		if fm := &match[p.lpmField]; fm.Set {
			plen = fm.PrefixLen
		}
		putHeader(key, uint32(p.lpmBase+plen), 0)
	default:
		putHeader(key, uint32(p.bits()), 0)
	}
	return nil
}

// decodeKey reads the match of an exact or LPM map key.
func (p *tablePlan) decodeKey(key []byte, ports *portMap) ([]translator.FieldMatch, error) {
	fa := key[8:]
	match := make([]translator.FieldMatch, len(p.layout.Fields))
	for i := range p.layout.Fields {
		fl := &p.layout.Fields[i]
		fm := &match[i]
		if p.kind == kindLPM && i == p.lpmField {
			plen := int(ne.Uint32(key)) - p.lpmBase
			if plen < 0 || plen > fl.Bits {
				return nil, fmt.Errorf("table %s: trie key has prefixlen %d, outside the field", p.table.Name, ne.Uint32(key))
			}
			if plen == 0 {
				continue // /0: the field was omitted
			}
			fm.PrefixLen = plen
		}
		v, err := getField(fa, fl, ports)
		if err != nil {
			return nil, fmt.Errorf("table %s: field %s: %w", p.table.Name, p.table.Fields[i].Name, err)
		}
		fm.Value, fm.Set = v, true
	}
	return match, nil
}

// encodeAction writes an action as the head of a map value: act_id, the
// flag byte and the parameter blob (ports translated to ifindexes). dst
// holds at least headSize + the action's parameter size bytes, zeroed.
func encodeAction(dst []byte, ac *translator.ActionCall, flags byte, ports *portMap) error {
	ne.PutUint32(dst[0:], ac.Action.P4TCID)
	dst[4] = flags
	l := ac.Action.Layout
	for i, v := range ac.Params {
		if err := putField(dst[headSize:], &l.Params[i], v, ports); err != nil {
			return fmt.Errorf("action %s: param %s: %w", ac.Action.Name, ac.Action.Params[i].Name, err)
		}
	}
	return nil
}

// decodeAction reads the action at the head of a map value.
func (p *tablePlan) decodeAction(v []byte, ports *portMap) (*translator.Action, [][]byte, error) {
	id := ne.Uint32(v)
	a := p.actions[id]
	if a == nil {
		return nil, nil, fmt.Errorf("table %s: act_id %d is not an action of the table", p.table.Name, id)
	}
	params := make([][]byte, len(a.Params))
	for i := range a.Params {
		pv, err := getField(v[headSize:], &a.Layout.Params[i], ports)
		if err != nil {
			return nil, nil, fmt.Errorf("table %s: action %s: param %s: %w", p.table.Name, a.Name, a.Params[i].Name, err)
		}
		params[i] = pv
	}
	return a, params, nil
}

// ternaryKey is one masked key of a TSS entry: the key fields and their
// mask, both fa_key-sized.
type ternaryKey struct {
	data, mask []byte
}

// maxExpansion bounds how many ternary keys one entry may expand to
// (range fields multiply).
const maxExpansion = 1024

// ternaryKeys expands a TSS entry's match into masked keys: ternary, lpm,
// exact and optional fields as they are, every range field as its prefix
// expansion, the product of all of them.
func (p *tablePlan) ternaryKeys(match []translator.FieldMatch, ports *portMap) ([]ternaryKey, error) {
	n := p.keySize - 8
	base := ternaryKey{data: make([]byte, n), mask: make([]byte, n)}
	var ranges []int
	for i, f := range p.table.Fields {
		fl := &p.layout.Fields[i]
		fm := &match[i]
		if !fm.Set {
			continue
		}
		var err error
		switch f.Kind {
		case translator.MatchExact, translator.MatchOptional:
			err = putField(base.data, fl, fm.Value, ports)
			if fl.Port {
				fl.Put(base.mask, []byte{0xff, 0xff, 0xff, 0xff})
			} else {
				fl.PutPrefix(base.mask, fl.Bits)
			}
		case translator.MatchLPM:
			fl.Put(base.data, fm.Value)
			fl.PutPrefix(base.mask, fm.PrefixLen)
		case translator.MatchTernary:
			fl.Put(base.data, fm.Value)
			fl.Put(base.mask, fm.Mask)
		case translator.MatchRange:
			ranges = append(ranges, i)
		}
		if err != nil {
			return nil, fmt.Errorf("table %s: field %s: %w", p.table.Name, f.Name, err)
		}
	}
	keys := []ternaryKey{base}
	for _, i := range ranges {
		fl := &p.layout.Fields[i]
		fm := &match[i]
		blocks := expandRange(beUint64(fm.Value), beUint64(fm.High), fl.Bits)
		if len(keys)*len(blocks) > maxExpansion {
			return nil, translator.Errorf(translator.ErrFull, "table %s: the ranges of the entry expand to more than %d ternary keys", p.table.Name, maxExpansion)
		}
		next := make([]ternaryKey, 0, len(keys)*len(blocks))
		for _, k := range keys {
			for _, b := range blocks {
				nk := ternaryKey{data: append([]byte(nil), k.data...), mask: append([]byte(nil), k.mask...)}
				fl.Put(nk.data, beBytes(b.value, fl.Size))
				fl.Put(nk.mask, beBytes(prefixMask64(b.plen, fl.Bits), fl.Size))
				next = append(next, nk)
			}
		}
		keys = next
	}
	for _, k := range keys {
		for j := range k.data {
			k.data[j] &= k.mask[j]
		}
	}
	return keys, nil
}

// rank is the priority a TSS entry competes with: the P4Runtime priority,
// or 1 + the total prefix length for a table without priorities (several
// LPM fields: the longest match wins).
func (p *tablePlan) rank(e *translator.Entry) uint32 {
	if !p.rankByPrefix {
		return uint32(e.Priority)
	}
	r := 1
	for i, f := range p.table.Fields {
		fm := &e.Match[i]
		if !fm.Set {
			continue
		}
		switch f.Kind {
		case translator.MatchLPM:
			r += fm.PrefixLen
		default:
			r += f.Bits
		}
	}
	return uint32(r)
}
