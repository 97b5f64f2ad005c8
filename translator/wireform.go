package translator

import (
	"unsafe"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// entityTableEntry is the field number of Entity.table_entry: Entry.wire
// is an Entity with just that field.
const entityTableEntry protowire.Number = 2

// own makes e, parsed from a TableEntry the caller will reuse, keep
// nothing of it. wire is the encoding of that TableEntry, canonical and
// readForm: exactly the entry's Read form. e keeps a copy of it instead
// of a proto tree. Match values and action
// params alias the request's bytes until now; they move to the same
// pointer-free bytes, which the garbage collector does not scan: the
// tail of the entry's own block when they fit (ownBytes), else one
// block of their own, in place of the request's whole tree.
func (e *Entry) own(wire []byte) {
	n := 1 + protowire.SizeBytes(len(wire))
	for i := range e.Match {
		fm := &e.Match[i]
		n += len(fm.Value) + len(fm.Mask) + len(fm.High)
	}
	if e.Action != nil {
		for _, v := range e.Action.Params {
			n += len(v)
		}
	}
	// The copy goes in the entry's own block when it fits: one
	// allocation per entry instead of two.
	b := e.ownBytes(n)
	if b == nil {
		b = make([]byte, 0, n)
	}
	b = protowire.AppendTag(b[:0], entityTableEntry, protowire.BytesType)
	b = protowire.AppendBytes(b, wire)
	e.wire = b[:len(b):len(b)]
	for i := range e.Match {
		fm := &e.Match[i]
		fm.Value, b = carve(b, fm.Value)
		fm.Mask, b = carve(b, fm.Mask)
		fm.High, b = carve(b, fm.High)
	}
	if e.Action != nil {
		for i, v := range e.Action.Params {
			e.Action.Params[i], b = carve(b, v)
		}
	}
	e.proto = nil
}

// carve appends v to b, which has room for it, and returns the copy
// (capacity capped so that no append can run into the next one) and the
// grown b. A nil v stays nil: FieldMatch tells unset parts by it.
func carve(b, v []byte) ([]byte, []byte) {
	if v == nil {
		return nil, b
	}
	n := len(b)
	b = append(b, v...)
	return b[n:len(b):len(b)], b
}

// wireEntry returns the TableEntry encoding inside e.wire.
func (e *Entry) wireEntry() []byte {
	_, _, n := protowire.ConsumeTag(e.wire)
	v, _ := protowire.ConsumeBytes(e.wire[n:])
	return v
}

// readProto returns the entry's Read form as a proto. For an entry kept
// as wire it is decoded anew on each call, not cached: caching would
// bring back the tree own got rid of. Callers must not change what it
// returns (it is e.proto for other entries); materialise gives an entry
// a proto of its own to edit.
func (e *Entry) readProto() *p4v1.TableEntry {
	if e.proto != nil || e.wire == nil {
		return e.proto
	}
	te := &p4v1.TableEntry{}
	// wire decoded once already (it is what the entry was parsed
	// from): it cannot fail.
	if err := proto.Unmarshal(e.wireEntry(), te); err != nil {
		return &p4v1.TableEntry{TableId: e.Table.ID, Priority: e.Priority}
	}
	return te
}

// materialise turns an entry kept as wire into one with a proto, and
// returns that proto, for the code that edits the Read form of an entry
// not yet stored (MODIFY without action, const entries, restore).
func (e *Entry) materialise() *p4v1.TableEntry {
	if e.proto == nil && e.wire != nil {
		e.proto, e.wire = e.readProto(), nil
	}
	return e.proto
}

// markBare records that e's Read form, just made by own, has no
// controller_metadata and no metadata (entryAlloc.bare). Only for an
// entry not yet shared.
func (e *Entry) markBare() {
	if a := e.alloc; a != nil && &a.Entry == e && len(e.wire) > 0 {
		if off, ok := memOffset(a, e.wire); ok {
			a.bare = uint8(off + 1)
		}
	}
}

// memOffset returns the offset of b in a's mem, when it starts there.
func memOffset(a *entryAlloc, b []byte) (int, bool) {
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(&a.mem[0])))
	return off, off >= 0 && off < len(a.mem) && &a.mem[off] == unsafe.SliceData(b)
}

// HasMetadata reports whether the entry's Read form has a
// controller_metadata or a metadata: what Saved puts in
// ControllerMetadata and Metadata. Backends ask it for every entry they
// store; for an entry written plain without either it answers without
// walking the Read form.
func (e *Entry) HasMetadata() bool {
	if a := e.alloc; a != nil && a.bare != 0 && len(e.wire) > 0 && unsafe.SliceData(e.wire) == &a.mem[a.bare-1] {
		return false
	}
	cookie, meta := e.metadata()
	return cookie != 0 || len(meta) > 0
}

// metadata returns the entry's controller_metadata and metadata, which
// are only in its Read form. For an entry kept as wire they are read
// from the encoding without decoding the rest (Saved runs for every
// entry a backend stores); metadata then aliases e.wire, which never
// changes.
func (e *Entry) metadata() (cookie uint64, meta []byte) {
	if e.wire == nil {
		return e.proto.GetControllerMetadata(), e.proto.GetMetadata()
	}
	b := e.wireEntry()
	for len(b) > 0 {
		var (
			num protowire.Number
			typ protowire.Type
			n   int
		)
		if b[0] < 0x80 && len(b) >= 2 && b[1] < 0x80 && b[0]&7 == byte(protowire.BytesType) {
			// A one-byte tag and length, as nearly every field of
			// a table entry has: skipped inline (a match, the
			// action).
			num, typ, n = protowire.Number(b[0]>>3), protowire.BytesType, 1
		} else if num, typ, n = protowire.ConsumeTag(b); n < 0 {
			break
		}
		b = b[n:]
		switch {
		case num == 5 && typ == protowire.VarintType:
			cookie, n = protowire.ConsumeVarint(b)
		case num == 11 && typ == protowire.BytesType:
			// The last occurrence wins, as in proto.Unmarshal.
			meta, n = protowire.ConsumeBytes(b)
		case typ == protowire.BytesType && len(b) > 0 && b[0] < 0x80:
			n = 1 + int(b[0])
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 || n > len(b) {
			break
		}
		b = b[n:]
	}
	if len(meta) == 0 {
		meta = nil
	}
	return cookie, meta
}

// appendReadForm appends the encoding of te, a checked table entry of a
// direct table in its Read form (readForm), the way proto.Marshal
// encodes it: fields in number order, defaults omitted. It is for
// entries whose values parsing canonicalised, so that they too are kept
// as wire: proto.Marshal costs several times as much, most of it working
// out sizes generically.
func appendReadForm(b []byte, te *p4v1.TableEntry) []byte {
	if v := te.GetTableId(); v != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	}
	for _, m := range te.GetMatch() {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(fieldMatchSize(m)))
		b = appendFieldMatch(b, m)
	}
	if a := te.GetAction().GetAction(); a != nil {
		n := actionSize(a)
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(1)+protowire.SizeBytes(n)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = appendAction(b, a)
	}
	return appendReadFormTail(b, te.GetPriority(), te.GetControllerMetadata(), te.GetIdleTimeoutNs(), te.GetMetadata())
}

// appendReadFormTail appends the scalar fields that follow a table
// entry's action in its Read form.
func appendReadFormTail(b []byte, prio int32, cookie uint64, idle int64, meta []byte) []byte {
	if prio != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(prio)))
	}
	if cookie != 0 {
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, cookie)
	}
	if idle != 0 {
		b = protowire.AppendTag(b, 9, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(idle))
	}
	if len(meta) != 0 {
		b = protowire.AppendTag(b, 11, protowire.BytesType)
		b = protowire.AppendBytes(b, meta)
	}
	return b
}

// matchParts returns the field number of a FieldMatch's match message and
// its parts: bytes 1, then bytes 2 or varint 2 (LPM's prefix_len).
func matchParts(m *p4v1.FieldMatch) (num protowire.Number, v1, v2 []byte, n2 uint64) {
	switch x := m.GetFieldMatchType().(type) {
	case *p4v1.FieldMatch_Exact_:
		return 2, x.Exact.GetValue(), nil, 0
	case *p4v1.FieldMatch_Ternary_:
		return 3, x.Ternary.GetValue(), x.Ternary.GetMask(), 0
	case *p4v1.FieldMatch_Lpm:
		return 4, x.Lpm.GetValue(), nil, uint64(int64(x.Lpm.GetPrefixLen()))
	case *p4v1.FieldMatch_Range_:
		return 6, x.Range.GetLow(), x.Range.GetHigh(), 0
	case *p4v1.FieldMatch_Optional_:
		return 7, x.Optional.GetValue(), nil, 0
	}
	return 0, nil, nil, 0
}

// partsSize is the size of a match message's encoding.
func partsSize(v1, v2 []byte, n2 uint64) int {
	n := 0
	if len(v1) != 0 {
		n += 1 + protowire.SizeBytes(len(v1))
	}
	if len(v2) != 0 {
		n += 1 + protowire.SizeBytes(len(v2))
	}
	if n2 != 0 {
		n += 1 + protowire.SizeVarint(n2)
	}
	return n
}

func fieldMatchSize(m *p4v1.FieldMatch) int {
	n := 0
	if id := m.GetFieldId(); id != 0 {
		n += 1 + protowire.SizeVarint(uint64(id))
	}
	if num, v1, v2, n2 := matchParts(m); num != 0 {
		n += 1 + protowire.SizeBytes(partsSize(v1, v2, n2))
	}
	return n
}

func appendFieldMatch(b []byte, m *p4v1.FieldMatch) []byte {
	num, v1, v2, n2 := matchParts(m)
	return appendMatchParts(b, m.GetFieldId(), num, v1, v2, n2)
}

// appendMatchParts appends the fields of a FieldMatch: its field id and
// its match message num with its parts (see matchParts).
func appendMatchParts(b []byte, id uint32, num protowire.Number, v1, v2 []byte, n2 uint64) []byte {
	if id != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
	}
	if num == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(partsSize(v1, v2, n2)))
	if len(v1) != 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, v1)
	}
	if len(v2) != 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, v2)
	}
	if n2 != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, n2)
	}
	return b
}

// paramSize is the size of an Action.Param's encoding.
func paramSize(p *p4v1.Action_Param) int {
	return paramPartsSize(p.GetParamId(), p.GetValue())
}

// paramPartsSize is the size of the encoding of an Action.Param with
// param_id id and value v.
func paramPartsSize(id uint32, v []byte) int {
	n := 0
	if id != 0 {
		n += 1 + protowire.SizeVarint(uint64(id))
	}
	if len(v) != 0 {
		n += 1 + protowire.SizeBytes(len(v))
	}
	return n
}

func actionSize(a *p4v1.Action) int {
	n := 0
	if id := a.GetActionId(); id != 0 {
		n += 1 + protowire.SizeVarint(uint64(id))
	}
	for _, p := range a.GetParams() {
		n += 1 + protowire.SizeBytes(paramSize(p))
	}
	return n
}

func appendAction(b []byte, a *p4v1.Action) []byte {
	if id := a.GetActionId(); id != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
	}
	for _, p := range a.GetParams() {
		b = appendParam(b, p.GetParamId(), p.GetValue())
	}
	return b
}

// appendParam appends an Action.Param with param_id id and value v as
// field 4 of an Action.
func appendParam(b []byte, id uint32, v []byte) []byte {
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(paramPartsSize(id, v)))
	if id != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(id))
	}
	if len(v) != 0 {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
	}
	return b
}

// compact keeps a stored entry built as a proto tree (by a restore or a
// reconcile) as wire instead, when that tree is its Read form, so that a
// daemon restarted under a million entries does not hold twice the
// memory it held before. buf is scratch for the encoding (own copies
// it); the grown buffer is returned for the next call.
func (e *Entry) compact(buf []byte) []byte {
	if e.wire != nil || e.proto == nil || e.IsDefault || e.Table.Profile != nil || !readForm(e.proto) {
		return buf
	}
	buf = appendReadForm(buf[:0], e.proto)
	e.own(buf)
	return buf
}
