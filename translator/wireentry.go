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
// and maxViewParams params. WriteWire parses a plain entry that comes
// without its decoded TableEntry straight from its encoding, in one pass
// (entryView, parseEntryView), instead of decoding a proto tree only to
// walk it. The caller (the server's codec) skips building that tree
// altogether: building it, walking it and clearing it were a third of a
// Write's CPU.

// Bounds of a plain entry: entries with more go the way of the tree.
const (
	maxViewMatches = 8
	maxViewParams  = 8
)

// entryView is a plain table entry as its encoding says it, the bytes
// fields aliasing the encoding: what parseEntryView checks. Parsing
// canonicalises its values in place, as parsing a tree does the tree's;
// the encoding itself is never written.
type entryView struct {
	tableID   uint32
	priority  int32
	cookie    uint64
	idle      int64
	metadata  []byte
	hasAction bool
	actionID  uint32
	nMatch    int
	nParam    int
	matches   [maxViewMatches]matchView
	params    [maxViewParams]paramView
}

// matchView is a FieldMatch of a plain entry.
type matchView struct {
	fieldID uint32
	// kind is the field number of the match message (matchExact...),
	// 0 when there is none.
	kind protowire.Number
	// v1 is value or low; v2 mask or high.
	v1, v2 []byte
	plen   int32
}

// paramView is an Action.Param of a plain entry.
type paramView struct {
	id    uint32
	value []byte
}

// PlainTableEntry reports whether b is the encoding of a plain table
// entry: one WriteWire can take as its wire alone, with a nil Entity. b is
// then also an encoding proto.Unmarshal accepts.
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

// span returns the n bytes at b[i:] and the index after them; j < 0 when
// b is too short.
func span(b []byte, i int, n uint64) (val []byte, j int) {
	if n > uint64(len(b)-i) {
		return nil, -1
	}
	j = i + int(n)
	return b[i:j:j], j
}

// parse fills v from b, the encoding of a TableEntry, as proto.Unmarshal
// would (the last of a repeated scalar wins); false when b is not plain.
func (v *entryView) parse(b []byte) bool {
	v.tableID, v.priority, v.cookie, v.idle, v.metadata = 0, 0, 0, 0, nil
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
			var val []byte
			if val, i = span(b, i, x); i < 0 || v.nMatch == maxViewMatches || !v.matches[v.nMatch].parse(val) {
				return false
			}
			v.nMatch++
		case 3<<3 | bytesTag:
			var val []byte
			if val, i = span(b, i, x); i < 0 || v.hasAction || !v.parseTableAction(val) {
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
			if v.metadata, i = span(b, i, x); i < 0 {
				return false
			}
		default:
			return false
		}
	}
	if len(v.metadata) == 0 {
		v.metadata = nil
	}
	return true
}

// parse fills m from the encoding of a FieldMatch.
func (m *matchView) parse(b []byte) bool {
	m.fieldID, m.kind, m.v1, m.v2, m.plen = 0, 0, nil, nil, 0
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
		m.kind = protowire.Number(tag >> 3)
		var val []byte
		if val, i = span(b, i, x); i < 0 || !m.parseParts(val) {
			return false
		}
	}
	return true
}

// parseParts reads the fields of m's match message: bytes 1, then bytes 2
// (ternary, range) or varint 2 (LPM).
func (m *matchView) parseParts(b []byte) bool {
	for i := 0; i < len(b); {
		var tag, x uint64
		if i+1 < len(b) && b[i]|b[i+1] < 0x80 {
			tag, x, i = uint64(b[i]), uint64(b[i+1]), i+2
		} else if tag, x, i = fieldAt(b, i); i < 0 {
			return false
		}
		switch {
		case tag == 1<<3|bytesTag:
			if m.v1, i = span(b, i, x); i < 0 {
				return false
			}
		case tag == 2<<3|bytesTag && (m.kind == matchTernary || m.kind == matchRange):
			if m.v2, i = span(b, i, x); i < 0 {
				return false
			}
		case tag == 2<<3|varintTag && m.kind == matchLPM:
			m.plen = int32(x)
		default:
			return false
		}
	}
	return true
}

// parseTableAction reads a TableAction that holds exactly one direct
// action.
func (v *entryView) parseTableAction(b []byte) bool {
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
	for b := b[i:]; len(b) > 0; {
		var tag, x uint64
		if len(b) >= 2 && b[0]|b[1] < 0x80 {
			tag, x, b = uint64(b[0]), uint64(b[1]), b[2:]
		} else if tag, x, i = fieldAt(b, 0); i < 0 {
			return false
		} else {
			b = b[i:]
		}
		switch tag {
		case 1<<3 | varintTag:
			v.actionID = uint32(x)
		case 4<<3 | bytesTag:
			if v.nParam == maxViewParams || x > uint64(len(b)) {
				return false
			}
			p := &v.params[v.nParam]
			p.id, p.value = 0, nil
			pb := b[:x]
			b = b[x:]
			for j := 0; j < len(pb); {
				var ptag, px uint64
				if j+1 < len(pb) && pb[j]|pb[j+1] < 0x80 {
					ptag, px, j = uint64(pb[j]), uint64(pb[j+1]), j+2
				} else if ptag, px, j = fieldAt(pb, j); j < 0 {
					return false
				}
				switch ptag {
				case 2<<3 | varintTag:
					p.id = uint32(px)
				case 3<<3 | bytesTag:
					if p.value, j = span(pb, j, px); j < 0 {
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
			if _, j = span(b, j, x); j < 0 {
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
// tree). The Entry keeps nothing of wire or v.
func (p *Pipeline) parseEntryView(v *entryView, wire []byte, op writeOp, scratch *Entry, enc *[]byte, reparse bool) (*Entry, error) {
	if v.tableID == 0 {
		return nil, errorf(ErrInvalid, "table_id 0 is only valid in wildcard reads")
	}
	t := p.Tables[v.tableID]
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
		if kindField(f.Kind) == 0 {
			return nil, errNotPlain
		}
		if m.kind != kindField(f.Kind) {
			return nil, wrongKindName(t, f, matchKindName(m.kind))
		}
		r, err := checkMatch(t, f, m.v1, m.v2, m.plen, fm)
		if err != nil {
			return nil, err
		}
		rewrote = rewrote || r
		// Canonical from here on, for the re-encoding below.
		m.v1 = fm.Value
		switch m.kind {
		case matchTernary:
			m.v2 = fm.Mask
		case matchRange:
			m.v2 = fm.High
		}
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
	if err := checkMetadata(t, v.metadata); err != nil {
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
			c, r, err := checkParam(act, prm.id, prm.value, ac.Params, t)
			if err != nil {
				return nil, err
			}
			rewrote = rewrote || r
			prm.value = c
		}
		if err := checkParamsSet(act, ac.Params, t); err != nil {
			return nil, err
		}
		e.Action = ac
	}
	if rewrote || reparse {
		var buf []byte
		if enc != nil {
			buf = (*enc)[:0]
		}
		buf = v.appendReadForm(buf)
		if enc != nil {
			*enc = buf
		}
		wire = buf
	}
	e.own(wire)
	return e, nil
}

// appendReadForm is appendReadForm for a view.
func (v *entryView) appendReadForm(b []byte) []byte {
	if v.tableID != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.tableID))
	}
	for i := range v.nMatch {
		m := &v.matches[i]
		var n2 uint64
		if m.kind == matchLPM {
			n2 = uint64(int64(m.plen))
		}
		n := 0
		if m.fieldID != 0 {
			n += 1 + protowire.SizeVarint(uint64(m.fieldID))
		}
		if m.kind != 0 {
			n += 1 + protowire.SizeBytes(partsSize(m.v1, m.v2, n2))
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(n))
		b = appendMatchParts(b, m.fieldID, m.kind, m.v1, m.v2, n2)
	}
	if v.hasAction {
		n := 0
		if v.actionID != 0 {
			n += 1 + protowire.SizeVarint(uint64(v.actionID))
		}
		for i := range v.nParam {
			n += 1 + protowire.SizeBytes(paramPartsSize(v.params[i].id, v.params[i].value))
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
			b = appendParam(b, v.params[i].id, v.params[i].value)
		}
	}
	return appendReadFormTail(b, v.priority, v.cookie, v.idle, v.metadata)
}
