package translator

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
)

// A plain table entry is a TableEntry encoding of the shape nearly every
// write has: table_id, matches, one direct action, priority,
// controller_metadata, idle_timeout_ns and metadata, nothing else (no
// default entry, is_const, direct resources, indirect action or unknown
// field), each message field given once, at most maxViewMatches matches
// and maxViewParams params. WriteWire takes a plain entry without its
// decoded TableEntry: it parses the encoding in one pass into a view
// (entryView) and checks that (parseEntryView), instead of decoding a
// proto tree only to walk it. The server's codec parses each plain entry
// into an EntryView as it reads the request, and WriteParsed takes those
// views: the entry's bytes are then read once in all. Building the tree,
// walking it and clearing it were a third of a Write's CPU.

// Bounds of a plain entry: entries with more go the way of the tree.
const (
	maxViewMatches = 8
	maxViewParams  = 8
)

// span is a run of bytes of an entry's encoding, wire[off:off+n]: views
// hold no pointers, so that the server keeps a request's views in memory
// the garbage collector does not scan or clear.
type span struct{ off, n uint32 }

// of returns the bytes of s in wire.
func (s span) of(wire []byte) []byte {
	end := s.off + s.n
	return wire[s.off:end:end]
}

// entryView is a plain table entry as its encoding says it: what
// parseEntryView checks. Checking does not change it: it says what the
// client sent, as often as the entry is parsed.
type entryView struct {
	tableID   uint32
	priority  int32
	cookie    uint64
	idle      int64
	metadata  span
	actionID  uint32
	hasAction bool
	nMatch    uint8
	nParam    uint8
	matches   [maxViewMatches]matchView
	params    [maxViewParams]paramView
}

// matchView is a FieldMatch of a plain entry.
type matchView struct {
	fieldID uint32
	// kind is the field number of the match message (matchExact...),
	// 0 when there is none.
	kind uint8
	plen int32
	// v1 is value or low; v2 mask or high.
	v1, v2 span
}

// paramView is an Action.Param of a plain entry.
type paramView struct {
	id    uint32
	value span
}

// EntryView is the parse of a plain table entry's encoding (Parse), which
// WriteParsed takes in place of parsing that encoding again. It refers to
// the encoding by offsets and holds no pointers.
type EntryView struct{ v entryView }

// Parse parses b, the encoding of a TableEntry, into v, and reports
// whether it is a plain entry: one WriteWire and WriteParsed can take as
// its encoding alone, with a nil Entity. b is then also an encoding
// proto.Unmarshal accepts. v is good for b only.
func (v *EntryView) Parse(b []byte) bool { return v.v.parse(b) }

// PlainTableEntry reports whether b is the encoding of a plain table
// entry (EntryView.Parse).
func PlainTableEntry(b []byte) bool {
	var v entryView
	return v.parse(b)
}

// Tags (field number << 3 | wire type) of the fields of a plain entry.
const (
	varintTag = uint64(protowire.VarintType)
	bytesTag  = uint64(protowire.BytesType)
)

// The parsers below read a field's header inline when it is a one-byte
// tag with a one-byte value or length, as nearly every field of a table
// entry is, and call fieldAt for the others: a function per field was
// most of a parse's cost. A tag (field number << 3 | wire type) that is
// not in a parser's switch — field number 0, another wire type — makes
// it refuse the entry.

// fieldAt reads the header of the field at b[i:]: its tag, its varint
// value or length x, and the index after the header; j < 0 for other
// wire types and malformed input.
func fieldAt(b []byte, i int) (tag, x uint64, j int) {
	if tag, j = uvarint(b, i); j < 0 || tag&7 != varintTag && tag&7 != bytesTag {
		return 0, 0, -1
	}
	if x, j = uvarint(b, j); j < 0 {
		return 0, 0, -1
	}
	return tag, x, j
}

// uvarint reads the varint at b[i:] as protowire.ConsumeVarint does, and
// returns the index after it; j < 0 when it is malformed.
func uvarint(b []byte, i int) (x uint64, j int) {
	for s := uint(0); s < 64; s += 7 {
		if i >= len(b) {
			return 0, -1
		}
		c := b[i]
		i++
		if s == 63 && c > 1 {
			return 0, -1 // overflows 64 bits
		}
		x |= uint64(c&0x7f) << s
		if c < 0x80 {
			return x, i
		}
	}
	return 0, -1
}

// spanAt returns the n bytes at b[i:], b being the bytes of wire from
// base on, as a span of wire, and the index after them; j < 0 when b is
// too short.
func spanAt(b []byte, base, i int, n uint64) (s span, j int) {
	if n > uint64(len(b)-i) {
		return span{}, -1
	}
	return span{uint32(base + i), uint32(n)}, i + int(n)
}

// parse fills v from b, the encoding of a TableEntry, as proto.Unmarshal
// would (the last of a repeated scalar wins); false when b is not plain.
func (v *entryView) parse(b []byte) bool {
	if uint64(len(b)) > 1<<32-1 {
		return false // beyond spans
	}
	v.tableID, v.priority, v.cookie, v.idle, v.metadata = 0, 0, 0, 0, span{}
	v.hasAction, v.actionID, v.nMatch, v.nParam = false, 0, 0, 0
	for i := 0; i < len(b); {
		var tag, x uint64
		if i+1 < len(b) && b[i]|b[i+1] < 0x80 {
			tag, x, i = uint64(b[i]), uint64(b[i+1]), i+2
		} else if tag, x, i = fieldAt(b, i); i < 0 {
			return false
		}
		switch tag {
		case 1<<3 | varintTag:
			v.tableID = uint32(x)
		case 2<<3 | bytesTag:
			var val span
			if val, i = spanAt(b, 0, i, x); i < 0 || v.nMatch == maxViewMatches || !v.matches[v.nMatch].parse(val.of(b), int(val.off)) {
				return false
			}
			v.nMatch++
		case 3<<3 | bytesTag:
			var val span
			if val, i = spanAt(b, 0, i, x); i < 0 || v.hasAction || !v.parseTableAction(val.of(b), int(val.off)) {
				return false // a second one merges: the tree's job
			}
			v.hasAction = true
		case 4<<3 | varintTag:
			v.priority = int32(x)
		case 5<<3 | varintTag:
			v.cookie = x
		case 9<<3 | varintTag:
			v.idle = int64(x)
		case 11<<3 | bytesTag:
			if v.metadata, i = spanAt(b, 0, i, x); i < 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// parse fills m from the encoding of a FieldMatch, b, which starts at
// base in the entry's encoding.
func (m *matchView) parse(b []byte, base int) bool {
	m.fieldID, m.kind, m.v1, m.v2, m.plen = 0, 0, span{}, span{}, 0
	for i := 0; i < len(b); {
		var tag, x uint64
		if i+1 < len(b) && b[i]|b[i+1] < 0x80 {
			tag, x, i = uint64(b[i]), uint64(b[i+1]), i+2
		} else if tag, x, i = fieldAt(b, i); i < 0 {
			return false
		}
		switch tag {
		case 1<<3 | varintTag:
			m.fieldID = uint32(x)
			continue
		case uint64(matchExact)<<3 | bytesTag, uint64(matchTernary)<<3 | bytesTag, uint64(matchLPM)<<3 | bytesTag,
			uint64(matchRange)<<3 | bytesTag, uint64(matchOptional)<<3 | bytesTag:
		default:
			return false
		}
		if m.kind != 0 {
			return false // a second match message replaces or merges
		}
		m.kind = uint8(tag >> 3)
		start := i
		if _, i = spanAt(b, base, i, x); i < 0 || !m.parseParts(b[start:i], base+start) {
			return false
		}
	}
	return true
}

// parseParts reads the fields of m's match message, b, which starts at
// base in the entry's encoding: bytes 1, then bytes 2 (ternary, range) or
// varint 2 (LPM).
func (m *matchView) parseParts(b []byte, base int) bool {
	for i := 0; i < len(b); {
		var tag, x uint64
		if i+1 < len(b) && b[i]|b[i+1] < 0x80 {
			tag, x, i = uint64(b[i]), uint64(b[i+1]), i+2
		} else if tag, x, i = fieldAt(b, i); i < 0 {
			return false
		}
		switch {
		case tag == 1<<3|bytesTag:
			if m.v1, i = spanAt(b, base, i, x); i < 0 {
				return false
			}
		case tag == 2<<3|bytesTag && (m.kind == uint8(matchTernary) || m.kind == uint8(matchRange)):
			if m.v2, i = spanAt(b, base, i, x); i < 0 {
				return false
			}
		case tag == 2<<3|varintTag && m.kind == uint8(matchLPM):
			m.plen = int32(x)
		default:
			return false
		}
	}
	return true
}

// parseTableAction reads a TableAction that holds exactly one direct
// action, b, which starts at base in the entry's encoding.
func (v *entryView) parseTableAction(b []byte, base int) bool {
	var tag, x uint64
	i := 2
	if len(b) >= 2 && b[0]|b[1] < 0x80 {
		tag, x = uint64(b[0]), uint64(b[1])
	} else {
		tag, x, i = fieldAt(b, 0)
	}
	if i < 0 || tag != 1<<3|bytesTag || x != uint64(len(b)-i) {
		return false // indirect actions, or not exactly one action
	}
	for i < len(b) {
		if i+1 < len(b) && b[i]|b[i+1] < 0x80 {
			tag, x, i = uint64(b[i]), uint64(b[i+1]), i+2
		} else if tag, x, i = fieldAt(b, i); i < 0 {
			return false
		}
		switch tag {
		case 1<<3 | varintTag:
			v.actionID = uint32(x)
		case 4<<3 | bytesTag:
			start := i
			if _, i = spanAt(b, base, i, x); i < 0 || v.nParam == maxViewParams {
				return false
			}
			p := &v.params[v.nParam]
			p.id, p.value = 0, span{}
			for j := start; j < i; {
				var ptag, px uint64
				if j+1 < i && b[j]|b[j+1] < 0x80 {
					ptag, px, j = uint64(b[j]), uint64(b[j+1]), j+2
				} else if ptag, px, j = fieldAt(b[:i], j); j < 0 {
					return false
				}
				switch ptag {
				case 2<<3 | varintTag:
					p.id = uint32(px)
				case 3<<3 | bytesTag:
					if p.value, j = spanAt(b[:i], base, j, px); j < 0 {
						return false
					}
				default:
					return false
				}
			}
			v.nParam++
		default:
			return false
		}
	}
	return true
}

// wireTableID returns the table_id of a TableEntry encoding (the last
// one, as proto.Unmarshal keeps), reading no further than its top-level
// fields; ok is false when b is not well formed there.
func wireTableID(b []byte) (id uint32, ok bool) {
	for i := 0; i < len(b); {
		tag, x, j := fieldAt(b, i)
		switch {
		case j < 0:
			return 0, false
		case tag == 1<<3|varintTag:
			id = uint32(x)
		case tag&7 == bytesTag:
			if _, j = spanAt(b, 0, j, x); j < 0 {
				return 0, false
			}
		}
		i = j
	}
	return id, true
}

// errNotPlain says parseEntryView leaves the entry to the tree parse.
var errNotPlain = errors.New("not a plain table entry")

// parseEntryView is parseTableEntryWire for a plain entry given as its
// view v and its encoding wire, with the same checks in the same order
// and the same result; it returns errNotPlain for what it leaves to the
// tree (non-DELETE writes to indirect tables, whose Read form is a
// tree). It does not change v, nor wire: parsing it again gives the same
// Entry, so unlike parseTableEntryWire it needs no word of a parse
// before. The Entry keeps nothing of wire or v, but for a DELETE, whose
// key is never stored.
func (p *Pipeline) parseEntryView(v *entryView, wire []byte, op writeOp, scratch *Entry, enc *[]byte) (*Entry, error) {
	return p.parseEntryViewIn(nil, v, wire, op, scratch, enc)
}

// parseEntryViewIn is parseEntryView for a caller that may have looked
// the table up already: t, when it is not nil and has v's table id, is
// taken for p.Tables[v.tableID] (the pre-parse has it from its first
// pass).
func (p *Pipeline) parseEntryViewIn(t *Table, v *entryView, wire []byte, op writeOp, scratch *Entry, enc *[]byte) (*Entry, error) {
	if v.tableID == 0 {
		return nil, errorf(ErrInvalid, "table_id 0 is only valid in wildcard reads")
	}
	if t == nil || t.ID != v.tableID {
		t = p.Tables[v.tableID]
	}
	if t == nil {
		return nil, errorf(ErrInvalid, "table id %#x is not a table of the pipeline%s", v.tableID, p.kindHint(v.tableID))
	}
	if t.Profile != nil && op != opDelete {
		return nil, errNotPlain
	}
	var e *Entry
	if op == opDelete && scratch != nil && len(t.Fields) <= cap(scratch.Match) {
		m := scratch.Match[:len(t.Fields)]
		clear(m)
		*scratch = Entry{Table: t, Match: m}
		e = scratch
	} else {
		e = newEntry(t)
	}
	e.Priority = v.priority
	if t.Kind == TableKeyless && op == opInsert {
		return nil, errorf(ErrInvalid, "table %s is keyless: only its default entry can be written", t.Name)
	}
	if err := checkPriority(t, e.Priority); err != nil {
		return nil, err
	}
	rewrote := false
	for i := range v.nMatch {
		m := &v.matches[i]
		f := t.Field(m.fieldID)
		if f == nil {
			return nil, errorf(ErrInvalid, "%s: no match field with id %d", t.label, m.fieldID)
		}
		fm := &e.Match[f.Index]
		if fm.Set {
			return nil, errorf(ErrInvalid, "%s: field %s given twice", t.label, f.Name)
		}
		k := kindField(f.Kind)
		if k == 0 {
			return nil, errNotPlain
		}
		if m.kind != uint8(k) {
			return nil, wrongKindName(t, f, matchKindName(protowire.Number(m.kind)))
		}
		r, err := checkMatch(t, f, m.v1.of(wire), m.v2.of(wire), m.plen, fm)
		if err != nil {
			return nil, err
		}
		rewrote = rewrote || r
	}
	if err := p.finishKey(t, e, op != opDelete); err != nil {
		return nil, err
	}
	if op == opDelete {
		return e, nil
	}
	if err := checkIdle(t, v.idle); err != nil {
		return nil, err
	}
	e.IdleTimeoutNs = v.idle
	if err := checkMetadata(t, v.metadata.of(wire)); err != nil {
		return nil, err
	}
	if !v.hasAction {
		if op == opInsert {
			return nil, errorf(ErrInvalid, "table %s: INSERT without an action", t.Name)
		}
	} else {
		act, err := p.tableAction(t, v.actionID, false)
		if err != nil {
			return nil, err
		}
		ac := newActionCallIn(act, &e.alloc.action)
		for i := range v.nParam {
			prm := &v.params[i]
			_, r, err := checkParam(act, prm.id, prm.value.of(wire), ac.Params, t)
			if err != nil {
				return nil, err
			}
			rewrote = rewrote || r
		}
		if err := checkParamsSet(act, ac.Params, t); err != nil {
			return nil, err
		}
		e.Action = ac
	}
	if rewrote {
		// Canonicalising shortened a value: wire no longer says what
		// e does.
		var buf []byte
		if enc != nil {
			buf = (*enc)[:0]
		}
		buf = v.appendReadForm(buf, wire, e)
		if enc != nil {
			*enc = buf
		}
		wire = buf
	}
	e.own(wire)
	if v.cookie == 0 && v.metadata.n == 0 {
		// Saved stays off the Read form (HasMetadata).
		e.markBare()
	}
	return e, nil
}

// appendReadForm is the package-level appendReadForm for the entry e
// parsed from v and wire: the entry as the client sent it, with the
// values e holds in their canonical form, as parsing a tree leaves the
// tree.
func (v *entryView) appendReadForm(b, wire []byte, e *Entry) []byte {
	t := e.Table
	if v.tableID != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.tableID))
	}
	for i := range v.nMatch {
		m := &v.matches[i]
		fm := &e.Match[t.Field(m.fieldID).Index]
		kind := protowire.Number(m.kind)
		v1, v2 := fm.Value, []byte(nil)
		var n2 uint64
		switch kind {
		case matchTernary:
			v2 = fm.Mask
		case matchRange:
			v2 = fm.High
		case matchLPM:
			n2 = uint64(int64(m.plen))
		}
		n := 0
		if m.fieldID != 0 {
			n += 1 + protowire.SizeVarint(uint64(m.fieldID))
		}
		if kind != 0 {
			n += 1 + protowire.SizeBytes(partsSize(v1, v2, n2))
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = appendMatchParts(b, m.fieldID, kind, v1, v2, n2)
	}
	if v.hasAction {
		act := e.Action
		value := func(prm *paramView) []byte { return act.Params[act.Action.Param(prm.id).Index] }
		n := 0
		if v.actionID != 0 {
			n += 1 + protowire.SizeVarint(uint64(v.actionID))
		}
		for i := range v.nParam {
			n += 1 + protowire.SizeBytes(paramPartsSize(v.params[i].id, value(&v.params[i])))
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(protowire.SizeTag(1)+protowire.SizeBytes(n)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		if v.actionID != 0 {
			b = protowire.AppendTag(b, 1, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v.actionID))
		}
		for i := range v.nParam {
			b = appendParam(b, v.params[i].id, value(&v.params[i]))
		}
	}
	return appendReadFormTail(b, v.priority, v.cookie, v.idle, v.metadata.of(wire))
}
