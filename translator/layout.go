package translator

// The P4TC blob layouts (DESIGN.md decision 3).
//
// A P4TC table key travels as `struct p4tc_table_entry_key { u32 keysz;
// u32 maskid; u8 fa_key[] __aligned(8); }` (P4TC include/net/p4tc.h; the p4c
// `tc` backend generates one packed key struct per table). The fields sit in
// table order, each in its native C container (u8, u16, u32, u64, or a byte
// array for wider fields), packed. Fields whose P4TC type is a network type
// (macaddr, ipv4, ipv6, be16, be32, be64) are in network byte order; plain
// bitN fields are in host byte order (p4c backends/ebpf target.h
// getByteOrderFromAnnotation). Action parameters use the same containers,
// packed, in parameter order, after the act_id of
// `struct p4tc_table_entry_act_bpf`.
//
// Without introspection every field is taken to be in network byte order:
// that is P4Runtime's own order and what an LPM trie needs.

// FieldHint carries what the P4TC introspection says about one key field or
// parameter beyond P4Info.
type FieldHint struct {
	// HostOrder: the field is a plain bitN, stored in host byte order.
	HostOrder bool
	// Port: the value is a port (P4TC type "dev"); kernels store an ifindex.
	Port bool
	// Type is the P4TC type name ("bit32", "ipv4", "macaddr", "dev", ...).
	Type string
}

// FieldLayout places one field or parameter in a blob.
type FieldLayout struct {
	Offset int // byte offset in the blob
	Size   int // container size in bytes
	Bits   int // P4 bitwidth
	FieldHint
}

// KeyLayout is the layout of a table's key blob.
type KeyLayout struct {
	// Fields, in table key order.
	Fields []FieldLayout
	// Size is the byte length of the key fields (fa_key without padding).
	Size int
	// Bits is P4TC's keysz: the sum of the fields' bitwidths.
	Bits int
}

// BPFKeySize is the size of the whole p4tc_table_entry_key a P4TC datapath
// passes to bpf_p4tc_tbl_read: the 8-byte header and the fields rounded up to
// 8 bytes (P4TC's key__sz rule).
func (l *KeyLayout) BPFKeySize() int { return 8 + (l.Size+7)&^7 }

// ParamLayout is the layout of an action's parameter blob.
type ParamLayout struct {
	Params []FieldLayout
	Size   int
}

// container is the byte size of the native C container of a bits-wide value.
func container(bits int) int {
	switch {
	case bits <= 8:
		return 1
	case bits <= 16:
		return 2
	case bits <= 32:
		return 4
	case bits <= 64:
		return 8
	}
	return (bits + 7) / 8
}

func newKeyLayout(fields []*MatchField, hints []FieldHint) *KeyLayout {
	l := &KeyLayout{Fields: make([]FieldLayout, len(fields))}
	for i, f := range fields {
		if f.IsString {
			return nil
		}
		fl := newFieldLayout(l.Size, f.Bits, hints, i)
		l.Fields[i] = fl
		l.Size += fl.Size
		l.Bits += f.Bits
	}
	return l
}

func newParamLayout(params []*Param, hints []FieldHint) *ParamLayout {
	l := &ParamLayout{Params: make([]FieldLayout, len(params))}
	for i, p := range params {
		if p.IsString {
			return nil
		}
		fl := newFieldLayout(l.Size, p.Bits, hints, i)
		l.Params[i] = fl
		l.Size += fl.Size
	}
	return l
}

func newFieldLayout(off, bits int, hints []FieldHint, i int) FieldLayout {
	fl := FieldLayout{Offset: off, Size: container(bits), Bits: bits}
	if i < len(hints) {
		fl.FieldHint = hints[i]
		if fl.Type == "macaddr" && bits <= 48 {
			fl.Size = 6 // P4TC_T_MACADDR is six bytes, like a C u8[6]
		}
	}
	return fl
}

// Put writes the canonical big-endian value v into its container in blob.
func (f *FieldLayout) Put(blob, v []byte) {
	dst := blob[f.Offset : f.Offset+f.Size]
	if !f.HostOrder {
		padTo(dst, v)
		return
	}
	// Host order on the little-endian machines BPF runs on here: least
	// significant byte first.
	clear(dst)
	for i := 0; i < len(v) && i < len(dst); i++ {
		dst[i] = v[len(v)-1-i]
	}
}

// Get reads the field from blob as a canonical big-endian value.
func (f *FieldLayout) Get(blob []byte) []byte {
	src := blob[f.Offset : f.Offset+f.Size]
	v := make([]byte, len(src))
	if f.HostOrder {
		for i := range src {
			v[i] = src[len(src)-1-i]
		}
	} else {
		copy(v, src)
	}
	c, _ := canonical(v, 0)
	return c
}

// PutPrefix writes the mask of a prefix of plen bits (of the field's Bits)
// into blob.
func (f *FieldLayout) PutPrefix(blob []byte, plen int) {
	var tmp [64]byte
	var m []byte
	if n := minBytes(f.Bits); n <= len(tmp) {
		m = tmp[:n]
	} else {
		m = make([]byte, n)
	}
	prefixMask(m, f.Bits, plen)
	f.Put(blob, m)
}

// prefixMask fills m (a big-endian value of width bits) with plen leading
// one bits.
func prefixMask(m []byte, width, plen int) {
	clear(m)
	pos := len(m)*8 - width // first bit of the value, from the top
	for plen > 0 {
		if pos%8 == 0 && plen >= 8 {
			m[pos/8] = 0xff
			pos, plen = pos+8, plen-8
			continue
		}
		m[pos/8] |= 0x80 >> (pos % 8)
		pos, plen = pos+1, plen-1
	}
}
