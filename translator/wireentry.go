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

// header reads the header of the field at the start of b that does not
// have a one-byte tag and a one-byte value or length (the parsers read
// those inline: nearly every field of a table entry has them): its tag
// (field number << 3 | wire type), its varint value or length, and the
// header's size; n < 0 for other wire types and malformed input.
func header(b []byte) (tag, x uint64, n int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || typ != protowire.VarintType && typ != protowire.BytesType {
		return 0, 0, -1
	}
	x, m := protowire.ConsumeVarint(b[n:])
	if m < 0 {
		return 0, 0, -1
	}
	return uint64(num)<<3 | uint64(typ), x, n + m
}

// next reads the field at the start of b: its tag, its varint value x or
// its bytes val, and the rest of b; ok is false for other wire types and
// malformed input. A field number of 0 gives a tag no parser takes.
func next(b []byte) (tag, x uint64, val, rest []byte, ok bool) {
	n := 2
	switch {
	case len(b) >= 2 && b[0]|b[1] < 0x80:
		tag, x = uint64(b[0]), uint64(b[1])
	case len(b) >= 2 && b[0] < 0x80:
		// A one-byte tag with a longer value: P4 ids are.
		tag = uint64(b[0])
		if x, n = protowire.ConsumeVarint(b[1:]); n < 0 {
			return 0, 0, nil, nil, false
		}
		n++
	default:
		if tag, x, n = header(b); n < 0 {
			return 0, 0, nil, nil, false
		}
	}
	switch tag & 7 {
	case varintTag, bytesTag:
	default:
		return 0, 0, nil, nil, false
	}
	b = b[n:]
	if tag&7 == bytesTag {
		if x > uint64(len(b)) {
			return 0, 0, nil, nil, false
		}
		return tag, 0, b[:x], b[x:], true
	}
	return tag, x, nil, b, true
}

// parse fills v from b, the encoding of a TableEntry, as proto.Unmarshal
// would (the last of a repeated scalar wins); false when b is not plain.
func (v *entryView) parse(b []byte) bool {
	v.tableID, v.priority, v.cookie, v.idle, v.metadata = 0, 0, 0, 0, nil
	v.hasAction, v.actionID, v.nMatch, v.nParam = false, 0, 0, 0
	for len(b) > 0 {
		tag, x, val, rest, ok := next(b)
		if !ok {
			return false
		}
		b = rest
		switch tag {
		case 1<<3 | varintTag:
			v.tableID = uint32(x)
		case 2<<3 | bytesTag:
			if v.nMatch == maxViewMatches || !v.matches[v.nMatch].parse(val) {
				return false
			}
			v.nMatch++
		case 3<<3 | bytesTag:
			if v.hasAction || !v.parseTableAction(val) {
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
			v.metadata = val
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
	for len(b) > 0 {
		tag, x, val, rest, ok := next(b)
		if !ok {
			return false
		}
		b = rest
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
		if !m.parseParts(val) {
			return false
		}
	}
	return true
}

// parseParts reads the fields of m's match message: bytes 1, then bytes 2
// (ternary, range) or varint 2 (LPM).
func (m *matchView) parseParts(b []byte) bool {
	for len(b) > 0 {
		tag, x, val, rest, ok := next(b)
		if !ok {
			return false
		}
		b = rest
		switch {
		case tag == 1<<3|bytesTag:
			m.v1 = val
		case tag == 2<<3|bytesTag && (m.kind == matchTernary || m.kind == matchRange):
			m.v2 = val
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
	tag, _, val, rest, ok := next(b)
	if !ok || len(rest) > 0 || tag != 1<<3|bytesTag {
		return false // indirect actions, or not exactly one action
	}
	for b := val; len(b) > 0; {
		tag, x, pval, rest, ok := next(b)
		if !ok {
			return false
		}
		b = rest
		switch tag {
		case 1<<3 | varintTag:
			v.actionID = uint32(x)
		case 4<<3 | bytesTag:
			if v.nParam == maxViewParams {
				return false
			}
			p := &v.params[v.nParam]
			p.id, p.value = 0, nil
			for pb := pval; len(pb) > 0; {
				ptag, px, pbytes, prest, ok := next(pb)
				if !ok {
					return false
				}
				pb = prest
				switch ptag {
				case 2<<3 | varintTag:
					p.id = uint32(px)
				case 3<<3 | bytesTag:
					p.value = pbytes
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
	for len(b) > 0 {
		tag, x, _, rest, ok := next(b)
		if !ok {
			return 0, false
		}
		if tag == 1<<3|varintTag {
			id = uint32(x)
		}
		b = rest
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
