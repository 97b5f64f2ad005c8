package translator

import (
	"bytes"
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// FieldMatch is one key field of an entry in canonical form. The zero value
// is a don't-care match.
type FieldMatch struct {
	// Value is the canonical value (exact, lpm, ternary, optional) or the
	// low bound (range).
	Value []byte
	// Mask is the canonical ternary mask.
	Mask []byte
	// High is the canonical high bound of a range.
	High []byte
	// PrefixLen is the LPM prefix length.
	PrefixLen int
	// Set is false for a don't-care match (the field was omitted).
	Set bool
}

// ActionCall is an action with its arguments.
type ActionCall struct {
	Action *Action
	// Params holds the canonical value of each parameter, by parameter
	// index.
	Params [][]byte
}

// Blob returns the action's parameters laid out as P4TC's parameter blob
// (ParamLayout), or nil when the action has no layout.
func (a *ActionCall) Blob() []byte {
	l := a.Action.Layout
	if l == nil {
		return nil
	}
	b := make([]byte, l.Size)
	for i := range a.Params {
		l.Params[i].Put(b, a.Params[i])
	}
	return b
}

// Origin says who created an entry.
type Origin uint8

const (
	// OriginController: written over P4Runtime (or a device config's
	// initial entries).
	OriginController Origin = iota
	// OriginDatapath: created by the datapath itself (add-on-miss).
	OriginDatapath
)

// DatapathMetadata is the TableEntry.metadata Reads give entries the
// datapath created itself (PNA add-on-miss): P4Runtime has no field that
// says who created an entry, and metadata is the field a controller reads
// back untouched. Controllers cannot write it.
const DatapathMetadata = "p4tcd:datapath-created"

// Entry is a table entry in canonical, typed form: what backends program.
// An Entry is immutable once the Device stores it.
type Entry struct {
	Table *Table
	// Match has one element per table key field, by field index.
	Match []FieldMatch
	// Key is the key blob (KeyLayout) with don't-care and masked-out bits
	// zero; nil when the table has no layout.
	Key []byte
	// Mask is the mask blob of lpm, ternary and optional fields (all ones
	// for exact fields); nil for exact-only tables and tables without
	// layout. Range fields have a zero mask here: backends expand them
	// from Match.
	Mask []byte
	// IdleTimeoutNs is the P4Runtime TTL (0: never ages).
	IdleTimeoutNs int64
	// Action is the entry's action; nil for the default entry of a table
	// that has no default action, and for entries of indirect tables.
	Action *ActionCall
	// Indirect is the action of an entry of an indirect table (one
	// implemented by an action profile); nil for direct tables and
	// default entries.
	Indirect *IndirectAction
	// Direct is the state of the entry's direct counter and meter; nil
	// when both are at their defaults (counter 0, meter all GREEN).
	Direct *DirectResources

	// The small fields share one word: every stored entry pays for the
	// padding a scattered int32 or bool leaves (see entryAlloc).

	// Priority is the P4Runtime priority: higher wins; 0 for tables without
	// ternary, range or optional fields.
	Priority int32
	// IsDefault marks the table's default entry.
	IsDefault bool
	// Const: the entry cannot be modified or deleted by controllers.
	Const bool
	// Origin says who created the entry.
	Origin Origin
	// Placement says which tiers hold the entry: its writer's role
	// placement, else the table's (device config). A MODIFY keeps it.
	// Defaults and datapath-created entries are PlaceBoth.
	Placement Placement

	// alloc is the block the entry was allocated in: its blobs, store
	// key and Read form may live there (ownBytes). A copy of the entry
	// shares it but never carves from it.
	alloc *entryAlloc
	// written is when a controller last wrote the entry (Unix ns).
	written int64
	// proto is the canonical P4Runtime form served to Reads. It shares
	// sub-messages with the request it came from and is never mutated
	// once stored. It is nil when wire holds the Read form: go through
	// readProto, metadata or encoded to read it.
	proto *p4v1.TableEntry
	// wire is, when proto is nil, the Read form encoded as a Read
	// Entity (table_entry, field 2): a private copy of what the
	// controller wrote, which was already canonical (see own). One
	// small pointer-free block instead of a tree of ten messages keeps
	// the garbage collector's work per stored entry small.
	wire []byte
	// skey identifies the entry in its table: match and priority.
	skey string
}

// writeOp is what an update wants done with an entry.
type writeOp uint8

const (
	opInsert writeOp = iota
	opModify
	opDelete
)

// parseTableEntry checks a TableEntry of a Write and returns its canonical
// form. For DELETE only the key is considered (P4Runtime §9.1: "All other
// fields must be ignored"). For a MODIFY without action, Action is nil and
// the caller keeps the stored action.
func (p *Pipeline) parseTableEntry(te *p4v1.TableEntry, op writeOp) (*Entry, error) {
	return p.parseTableEntryWire(te, nil, op, nil, nil, false)
}

// parseTableEntryWire is parseTableEntry for a te whose memory the
// caller reuses once the Write is over, when wire (the encoding te was
// decoded from) is not nil: the Entry then keeps nothing of te's (see
// own), and te's memory may be reused as soon as the Write is done.
// With a nil wire, te is the Device's, as for parseTableEntry. For a
// DELETE it may use scratch, when not nil (an Entry of any table,
// reused), instead of allocating, since a deleted key is never stored.
// enc, when not nil, is a buffer to reuse for re-encoding te. reparse
// says te was parsed before in this Write: its values were canonicalised
// in place then, so this parse cannot tell whether wire still says what
// te does, and te is re-encoded whatever it finds.
func (p *Pipeline) parseTableEntryWire(te *p4v1.TableEntry, wire []byte, op writeOp, scratch *Entry, enc *[]byte, reparse bool) (*Entry, error) {
	if te.GetTableId() == 0 {
		return nil, errorf(ErrInvalid, "table_id 0 is only valid in wildcard reads")
	}
	t := p.Tables[te.GetTableId()]
	if t == nil {
		return nil, errorf(ErrInvalid, "table id %#x is not a table of the pipeline%s", te.GetTableId(), p.kindHint(te.GetTableId()))
	}
	if te.GetIsConst() {
		return nil, errorf(ErrInvalid, "table %s: is_const must be false in writes", t.Name)
	}
	if te.GetTimeSinceLastHit() != nil {
		return nil, errorf(ErrInvalid, "table %s: time_since_last_hit must be unset in writes", t.Name)
	}
	if wire != nil && op != opDelete && (t.Profile != nil || !readForm(te)) {
		// The Read form will be a proto tree (indirect actions, the
		// default entry, direct resource data): build it from a copy
		// the Device owns. A DELETE keeps nothing of te.
		te, wire = proto.Clone(te).(*p4v1.TableEntry), nil
	}
	var e *Entry
	if op == opDelete && scratch != nil && !te.GetIsDefaultAction() && len(t.Fields) <= cap(scratch.Match) {
		m := scratch.Match[:len(t.Fields)]
		clear(m)
		*scratch = Entry{Table: t, Match: m}
		e = scratch
	} else {
		e = newEntry(t)
	}
	e.IsDefault, e.Priority = te.GetIsDefaultAction(), te.GetPriority()
	if e.IsDefault {
		return p.parseDefaultEntry(t, te, e, op)
	}
	if t.Kind == TableKeyless {
		if op == opInsert {
			return nil, errorf(ErrInvalid, "table %s is keyless: only its default entry can be written", t.Name)
		}
		// MODIFY/DELETE of a keyless non-default entry can only be
		// NOT_FOUND; the key parse below yields the empty key.
	}
	rewrote, err := p.parseKey(t, te, e, op != opDelete)
	if err != nil {
		return nil, err
	}
	if op == opDelete {
		// Only the key counts; the store hands the backend the stored
		// entry, blobs and all.
		return e, nil
	}
	if err := checkIdle(t, te.GetIdleTimeoutNs()); err != nil {
		return nil, err
	}
	e.IdleTimeoutNs = te.GetIdleTimeoutNs()
	if err := checkMetadata(t, te.GetMetadata()); err != nil {
		return nil, err
	}
	if err := p.parseDirect(t, te, e); err != nil {
		return nil, err
	}
	if te.GetAction() == nil {
		if op == opInsert {
			return nil, errorf(ErrInvalid, "table %s: INSERT without an action", t.Name)
		}
	} else {
		var mem *actionAlloc
		if e.alloc != nil {
			mem = &e.alloc.action
		}
		ac, ind, r, err := p.parseTableAction(t, te.GetAction(), false, mem)
		if err != nil {
			return nil, err
		}
		e.Action, e.Indirect = ac, ind
		rewrote = rewrote || r
	}
	if wire != nil {
		if rewrote || reparse {
			// Canonicalising changed a value: wire no longer says
			// what te does. Its canonical encoding does (readForm
			// held).
			var buf []byte
			if enc != nil {
				buf = (*enc)[:0]
			}
			buf = appendReadForm(buf, te)
			if enc != nil {
				*enc = buf
			}
			wire = buf
		}
		e.own(wire)
		return e, nil
	}
	if op == opInsert && readForm(te) {
		// The request's entry is already what Reads serve: keep it
		// rather than a copy. The Device owns the entries a Write hands
		// it (it canonicalises them in place too); the callers that
		// adjust e.proto afterwards (restore, initial entries) built te
		// themselves.
		e.proto = te
		return e, nil
	}
	e.proto = &p4v1.TableEntry{
		TableId: t.ID, Match: te.Match, Action: te.Action, Priority: e.Priority,
		ControllerMetadata: te.GetControllerMetadata(), Metadata: te.GetMetadata(),
		IdleTimeoutNs: e.IdleTimeoutNs,
	}
	return e, nil
}

// checkIdle checks the idle_timeout_ns of an entry of t.
func checkIdle(t *Table, ns int64) error {
	if ns != 0 {
		if !t.IdleTimeout {
			return errorf(ErrInvalid, "table %s does not support idle timeouts (idle_timeout_ns %d)", t.Name, ns)
		}
		if ns < 0 {
			return errorf(ErrInvalid, "table %s: negative idle_timeout_ns %d", t.Name, ns)
		}
	}
	return nil
}

// checkMetadata refuses the metadata that marks datapath-created
// entries.
func checkMetadata(t *Table, meta []byte) error {
	if string(meta) == DatapathMetadata {
		return errorf(ErrInvalid, "table %s: metadata %q marks entries the datapath created; controllers cannot write it", t.Name, DatapathMetadata)
	}
	return nil
}

// readForm reports whether a checked, non-default TableEntry of a write
// holds only the fields a stored entry's Read form keeps: no direct
// resource data, nothing unknown.
func readForm(te *p4v1.TableEntry) bool {
	return te.CounterData == nil && te.MeterConfig == nil && te.MeterCounterData == nil &&
		!te.IsDefaultAction && !te.IsConst && te.TimeSinceLastHit == nil &&
		len(te.ProtoReflect().GetUnknown()) == 0
}

func (p *Pipeline) parseDefaultEntry(t *Table, te *p4v1.TableEntry, e *Entry, op writeOp) (*Entry, error) {
	// P4Runtime §9.1.3 "Default Entry".
	if op != opModify {
		return nil, errorf(ErrInvalid, "table %s: the default entry can only be modified, not %s", t.Name, opName(op))
	}
	if len(te.GetMatch()) != 0 {
		return nil, errorf(ErrInvalid, "table %s: the default entry has no match fields (got %d)", t.Name, len(te.GetMatch()))
	}
	if te.GetPriority() != 0 {
		return nil, errorf(ErrInvalid, "table %s: the default entry has priority 0 (got %d)", t.Name, te.GetPriority())
	}
	if te.GetIdleTimeoutNs() != 0 {
		return nil, errorf(ErrInvalid, "table %s: default entries do not support idle timeouts", t.Name)
	}
	if err := p.parseDirect(t, te, e); err != nil {
		return nil, err
	}
	if te.GetAction() == nil {
		// Reset to the P4 program's default, metadata included.
		e.Action = t.InitialDefault
		e.proto = defaultProto(t, t.InitialDefault)
		return e, nil
	}
	if t.ConstDefault != nil {
		return nil, errorf(ErrPermission, "table %s: the default action %s is const", t.Name, t.ConstDefault.Name)
	}
	if t.Profile != nil {
		// §9.1.3: the default entry of an indirect table is a constant
		// NoAction.
		return nil, errorf(ErrPermission, "table %s: the default entry of a table implemented by action profile %s cannot be changed", t.Name, t.Profile.Name)
	}
	ac, _, _, err := p.parseTableAction(t, te.GetAction(), true, nil)
	if err != nil {
		return nil, err
	}
	e.Action = ac
	e.proto = &p4v1.TableEntry{
		TableId: t.ID, Action: te.Action, IsDefaultAction: true,
		ControllerMetadata: te.GetControllerMetadata(), Metadata: te.GetMetadata(),
	}
	return e, nil
}

// defaultProto renders a table's default entry for Reads.
func defaultProto(t *Table, ac *ActionCall) *p4v1.TableEntry {
	te := &p4v1.TableEntry{TableId: t.ID, IsDefaultAction: true}
	if ac != nil {
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: ac.proto()}}
	}
	return te
}

// proto renders an action call.
func (a *ActionCall) proto() *p4v1.Action {
	pa := &p4v1.Action{ActionId: a.Action.ID}
	for i, v := range a.Params {
		pa.Params = append(pa.Params, &p4v1.Action_Param{ParamId: a.Action.Params[i].ID, Value: v})
	}
	return pa
}

func opName(op writeOp) string {
	return [...]string{"INSERT", "MODIFY", "DELETE"}[op]
}

// parseKey checks the match fields and priority of te and fills e.Match,
// e.Key, e.Mask and e.skey (P4Runtime §9.1.1 "Match Format"). rewrote is
// as parseMatch's.
func (p *Pipeline) parseKey(t *Table, te *p4v1.TableEntry, e *Entry, blobs bool) (rewrote bool, err error) {
	if err := checkPriority(t, e.Priority); err != nil {
		return false, err
	}
	return p.parseMatch(t, te, e, blobs)
}

// checkPriority checks the priority of an entry of t.
func checkPriority(t *Table, prio int32) error {
	if t.NeedsPriority() {
		if prio <= 0 {
			return errorf(ErrInvalid, "table %s: entries need a positive priority (ternary, range or optional match); got %d", t.Name, prio)
		}
	} else if prio != 0 {
		return errorf(ErrInvalid, "table %s: priority must be 0 for a table without ternary, range or optional fields; got %d", t.Name, prio)
	}
	return nil
}

// parseMatch checks the match fields of te and fills e.Match and e.skey
// (with e.Priority) and, if blobs, e.Key and e.Mask. e comes from newEntry.
// It canonicalises te's values in place; rewrote says whether that
// changed any, i.e. whether te's encoding no longer says what te does.
func (p *Pipeline) parseMatch(t *Table, te *p4v1.TableEntry, e *Entry, blobs bool) (rewrote bool, err error) {
	for _, m := range te.GetMatch() {
		f := t.Field(m.GetFieldId())
		if f == nil {
			return false, errorf(ErrInvalid, "%s: no match field with id %d", t.label, m.GetFieldId())
		}
		fm := &e.Match[f.Index]
		if fm.Set {
			return false, errorf(ErrInvalid, "%s: field %s given twice", t.label, f.Name)
		}
		r, err := parseFieldMatch(t, f, m, fm)
		if err != nil {
			return false, err
		}
		rewrote = rewrote || r
	}
	return rewrote, p.finishKey(t, e, blobs)
}

// finishKey checks that e.Match, filled from the entry's matches, has
// every exact field, and sets e.skey and, if blobs, e.Key and e.Mask.
func (p *Pipeline) finishKey(t *Table, e *Entry, blobs bool) error {
	for i, f := range t.Fields {
		if f.Kind == MatchExact && !e.Match[i].Set {
			return errorf(ErrInvalid, "%s: exact field %s is missing (exact fields cannot be omitted)", t.label, f.Name)
		}
	}
	e.setStoreKey()
	if l := t.Layout; l != nil && blobs {
		n := l.Size
		if t.Kind != TableExact {
			n *= 2
		}
		buf := e.ownBytes(n)
		if buf == nil {
			buf = make([]byte, n)
		}
		e.Key = buf[:l.Size:l.Size]
		if t.Kind != TableExact {
			e.Mask = buf[l.Size:]
		}
		for i := range t.Fields {
			layoutMatch(t.Fields[i], &l.Fields[i], &e.Match[i], e.Key, e.Mask)
		}
	}
	return nil
}

// parseFieldMatch checks one match field into fm and canonicalises m in
// place; rewrote says whether that changed a value.
func parseFieldMatch(t *Table, f *MatchField, m *p4v1.FieldMatch, fm *FieldMatch) (rewrote bool, err error) {
	switch f.Kind {
	case MatchExact:
		x := m.GetExact()
		if x == nil {
			return false, wrongKind(t, f, m)
		}
		if rewrote, err = checkMatch(t, f, x.GetValue(), nil, 0, fm); err != nil {
			return false, err
		}
		x.Value = fm.Value
	case MatchLPM:
		x := m.GetLpm()
		if x == nil {
			return false, wrongKind(t, f, m)
		}
		if rewrote, err = checkMatch(t, f, x.GetValue(), nil, x.GetPrefixLen(), fm); err != nil {
			return false, err
		}
		x.Value = fm.Value
	case MatchTernary:
		x := m.GetTernary()
		if x == nil {
			return false, wrongKind(t, f, m)
		}
		if rewrote, err = checkMatch(t, f, x.GetValue(), x.GetMask(), 0, fm); err != nil {
			return false, err
		}
		x.Value, x.Mask = fm.Value, fm.Mask
	case MatchRange:
		x := m.GetRange()
		if x == nil {
			return false, wrongKind(t, f, m)
		}
		if rewrote, err = checkMatch(t, f, x.GetLow(), x.GetHigh(), 0, fm); err != nil {
			return false, err
		}
		x.Low, x.High = fm.Value, fm.High
	case MatchOptional:
		x := m.GetOptional()
		if x == nil {
			return false, wrongKind(t, f, m)
		}
		if rewrote, err = checkMatch(t, f, x.GetValue(), nil, 0, fm); err != nil {
			return false, err
		}
		x.Value = fm.Value
	default:
		fm.Set = true
	}
	return rewrote, nil
}

// checkMatch checks the parts of a match of field f, of the field's kind,
// into fm: v1 is the value (the low bound of a range), v2 the mask of a
// ternary or the high bound of a range, plen the prefix length of an LPM.
// rewrote says whether canonicalising changed v1 or v2.
func checkMatch(t *Table, f *MatchField, v1, v2 []byte, plen int32, fm *FieldMatch) (rewrote bool, err error) {
	val := func(b []byte, what string) ([]byte, error) {
		if f.IsString {
			if len(b) == 0 || len(b) > maxStringBytes {
				return nil, errorf(ErrInvalid, "%s: field %s: %s must be 1..%d bytes, got %d", t.label, f.Name, what, maxStringBytes, len(b))
			}
			return b, nil
		}
		c, ok := canonical(b, f.Bits)
		if !ok {
			if len(b) == 0 {
				return nil, errorf(ErrInvalid, "%s: field %s: empty %s", t.label, f.Name, what)
			}
			return nil, errorf(ErrInvalid, "%s: field %s: %s %s does not fit in %d bits", t.label, f.Name, what, hexOf(b), f.Bits)
		}
		rewrote = rewrote || len(c) != len(b)
		return c, nil
	}
	switch f.Kind {
	case MatchExact, MatchOptional:
		if fm.Value, err = val(v1, "value"); err != nil {
			return false, err
		}
	case MatchLPM:
		if fm.Value, err = val(v1, "value"); err != nil {
			return false, err
		}
		n := int(plen)
		if n <= 0 || n > f.Bits {
			return false, errorf(ErrInvalid, "%s: field %s: prefix_len %d not in 1..%d (omit the field for /0)", t.label, f.Name, plen, f.Bits)
		}
		if trailingZeros(fm.Value) < f.Bits-n {
			return false, errorf(ErrInvalid, "%s: field %s: value %s has bits set beyond prefix /%d", t.label, f.Name, hexOf(fm.Value), n)
		}
		fm.PrefixLen = n
	case MatchTernary:
		if fm.Value, err = val(v1, "value"); err != nil {
			return false, err
		}
		if fm.Mask, err = val(v2, "mask"); err != nil {
			return false, err
		}
		if isZero(fm.Mask) {
			return false, errorf(ErrInvalid, "%s: field %s: mask is zero (omit the field for a don't-care match)", t.label, f.Name)
		}
		if !maskCovers(fm.Value, fm.Mask) {
			return false, errorf(ErrInvalid, "%s: field %s: value %s has bits outside mask %s", t.label, f.Name, hexOf(fm.Value), hexOf(fm.Mask))
		}
	case MatchRange:
		if fm.Value, err = val(v1, "low bound"); err != nil {
			return false, err
		}
		if fm.High, err = val(v2, "high bound"); err != nil {
			return false, err
		}
		if compareUint(fm.Value, fm.High) > 0 {
			return false, errorf(ErrInvalid, "%s: field %s: low %s is above high %s", t.label, f.Name, hexOf(fm.Value), hexOf(fm.High))
		}
		if isZero(fm.Value) && bitLen(fm.High) == f.Bits && onesBelow(fm.High, f.Bits) {
			return false, errorf(ErrInvalid, "%s: field %s: range covers every value (omit the field for a don't-care match)", t.label, f.Name)
		}
	}
	fm.Set = true
	return rewrote, nil
}

// Field numbers of FieldMatch's match messages.
const (
	matchExact    protowire.Number = 2
	matchTernary  protowire.Number = 3
	matchLPM      protowire.Number = 4
	matchRange    protowire.Number = 6
	matchOptional protowire.Number = 7
)

// kindField is the field number of FieldMatch's match message for a
// match kind.
func kindField(k MatchKind) protowire.Number {
	switch k {
	case MatchExact:
		return matchExact
	case MatchLPM:
		return matchLPM
	case MatchTernary:
		return matchTernary
	case MatchRange:
		return matchRange
	case MatchOptional:
		return matchOptional
	}
	return 0
}

// matchKindName names the match message of field number num, for
// messages.
func matchKindName(num protowire.Number) string {
	switch num {
	case matchExact:
		return "exact"
	case matchLPM:
		return "lpm"
	case matchTernary:
		return "ternary"
	case matchRange:
		return "range"
	case matchOptional:
		return "optional"
	case 100:
		return "other"
	}
	return "nothing"
}

func wrongKind(t *Table, f *MatchField, m *p4v1.FieldMatch) error {
	var num protowire.Number
	switch m.GetFieldMatchType().(type) {
	case *p4v1.FieldMatch_Exact_:
		num = matchExact
	case *p4v1.FieldMatch_Lpm:
		num = matchLPM
	case *p4v1.FieldMatch_Ternary_:
		num = matchTernary
	case *p4v1.FieldMatch_Range_:
		num = matchRange
	case *p4v1.FieldMatch_Optional_:
		num = matchOptional
	case *p4v1.FieldMatch_Other:
		num = 100
	}
	return wrongKindName(t, f, matchKindName(num))
}

// wrongKindName says that a match of f gives another kind, got.
func wrongKindName(t *Table, f *MatchField, got string) error {
	return errorf(ErrInvalid, "%s: field %s is %v, but the match gives %s", t.label, f.Name, f.Kind, got)
}

// layoutMatch writes one field of a match into the key and mask blobs.
func layoutMatch(f *MatchField, fl *FieldLayout, fm *FieldMatch, key, mask []byte) {
	if !fm.Set {
		return // don't care: zero value, zero mask
	}
	switch f.Kind {
	case MatchExact, MatchOptional:
		fl.Put(key, fm.Value)
		if mask != nil {
			fillOnes(fl, mask)
		}
	case MatchLPM:
		fl.Put(key, fm.Value)
		if mask != nil {
			fl.PutPrefix(mask, fm.PrefixLen)
		}
	case MatchTernary:
		fl.Put(key, fm.Value)
		fl.Put(mask, fm.Mask)
	case MatchRange:
		// Backends expand ranges from the canonical bounds.
	}
}

// fillOnes sets the field's bits (not its whole container) in the mask blob.
func fillOnes(fl *FieldLayout, mask []byte) {
	fl.PutPrefix(mask, fl.Bits)
}

// storeKey encodes an entry's identity within its table: every field's
// canonical match at a fixed width, then the priority. It does not depend
// on the kernel layout, so tables without one (sdn_string keys) work too.
func storeKey(t *Table, match []FieldMatch, prio int32) string {
	var buf [128]byte
	return string(appendStoreKey(buf[:0], t, match, prio))
}

// setStoreKey sets e.skey from e's match and priority. The key's bytes go
// in e's own block when it has room: the string is then a view of them
// rather than one more allocation per entry. That is safe because
// ownBytes hands out bytes that nothing writes again once the key is in
// them, and the string keeps the block alive wherever it goes (a map
// key, an undo record) for as long as it is used
// (TestEntryOwnBytes).
func (e *Entry) setStoreKey() {
	var buf [128]byte
	k := appendStoreKey(buf[:0], e.Table, e.Match, e.Priority)
	b := e.ownBytes(len(k))
	if len(b) == 0 {
		e.skey = string(k)
		return
	}
	copy(b, k)
	e.skey = unsafe.String(unsafe.SliceData(b), len(b))
}

// appendStoreKey appends storeKey's encoding to b.
func appendStoreKey(b []byte, t *Table, match []FieldMatch, prio int32) []byte {
	for i, f := range t.Fields {
		fm := &match[i]
		if !fm.Set {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		if f.IsString {
			b = binary.AppendUvarint(b, uint64(len(fm.Value)))
			b = append(b, fm.Value...)
			continue
		}
		n := minBytes(f.Bits)
		b = appendPadded(b, fm.Value, n)
		switch f.Kind {
		case MatchLPM:
			b = binary.BigEndian.AppendUint32(b, uint32(fm.PrefixLen))
		case MatchTernary:
			b = appendPadded(b, fm.Mask, n)
		case MatchRange:
			b = appendPadded(b, fm.High, n)
		}
	}
	return binary.BigEndian.AppendUint32(b, uint32(prio))
}

func appendPadded(b, v []byte, n int) []byte {
	for i := len(v); i < n; i++ {
		b = append(b, 0)
	}
	return append(b, v...)
}

// trailingZeros counts the zero bits at the least significant end of a
// big-endian value.
func trailingZeros(v []byte) int {
	n := 0
	for i := len(v) - 1; i >= 0; i-- {
		if v[i] == 0 {
			n += 8
			continue
		}
		x := v[i]
		for x&1 == 0 {
			n++
			x >>= 1
		}
		return n
	}
	return n
}

// maskCovers reports whether value & mask == value for canonical big-endian
// values (the shorter is zero-extended).
func maskCovers(value, mask []byte) bool {
	if len(value) > len(mask) {
		return false // value has a set bit above the mask's top byte
	}
	off := len(mask) - len(value)
	for i, v := range value {
		if v&^mask[off+i] != 0 {
			return false
		}
	}
	return true
}

// compareUint compares canonical big-endian unsigned values.
func compareUint(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare(a, b)
}

// onesBelow reports whether the value has all of its low bits set, i.e.
// is 2^bits-1 (given bitLen(v) == bits).
func onesBelow(v []byte, bits int) bool {
	m := make([]byte, minBytes(bits))
	prefixMask(m, bits, bits)
	c, _ := canonical(m, 0)
	return bytes.Equal(c, v)
}

// parseTableAction checks a TableAction against the table (P4Runtime §9.1.2
// "Action Specification"): an action for a direct table, a member, group
// or one-shot action set for an indirect one. Whether members and groups
// exist is the store's to check. rewrote says whether canonicalising a
// direct action's params in place changed one (indirect actions do not
// say).
func (p *Pipeline) parseTableAction(t *Table, ta *p4v1.TableAction, asDefault bool, mem *actionAlloc) (ac *ActionCall, ind *IndirectAction, rewrote bool, err error) {
	switch x := ta.GetType().(type) {
	case *p4v1.TableAction_Action:
		if t.Profile != nil {
			return nil, nil, false, errorf(ErrInvalid, "table %s is implemented by action profile %s: give a member, group or action set, not a direct action", t.Name, t.Profile.Name)
		}
		ac, rewrote, err := p.parseAction(t, x.Action, asDefault, mem)
		return ac, nil, rewrote, err
	case *p4v1.TableAction_ActionProfileMemberId, *p4v1.TableAction_ActionProfileGroupId, *p4v1.TableAction_ActionProfileActionSet:
		if t.Profile == nil {
			return nil, nil, false, errorf(ErrInvalid, "table %s is a direct table: give an action, not an action profile reference", t.Name)
		}
		ind, err := p.parseIndirect(t, ta)
		return nil, ind, false, err
	}
	return nil, nil, false, errorf(ErrInvalid, "table %s: action is empty", t.Name)
}

// parseAction checks an action of table t. The ActionCall goes in mem
// when it is not nil. rewrote is as parseParams'.
func (p *Pipeline) parseAction(t *Table, a *p4v1.Action, asDefault bool, mem *actionAlloc) (ac *ActionCall, rewrote bool, err error) {
	act, err := p.tableAction(t, a.GetActionId(), asDefault)
	if err != nil {
		return nil, false, err
	}
	ac = newActionCallIn(act, mem)
	if rewrote, err = parseParams(act, a.GetParams(), ac.Params, t); err != nil {
		return nil, false, err
	}
	return ac, rewrote, nil
}

// tableAction returns the action with the given id, checked as an
// action of table t: of an entry, or the default one.
func (p *Pipeline) tableAction(t *Table, id uint32, asDefault bool) (*Action, error) {
	ar := t.actionRef(id)
	if ar == nil {
		if act := p.Actions[id]; act != nil {
			return nil, errorf(ErrInvalid, "table %s: action %s is not one of the table's actions", t.Name, act.Name)
		}
		return nil, errorf(ErrInvalid, "table %s: action id %#x is not an action%s", t.Name, id, p.kindHint(id))
	}
	act := ar.Action
	if asDefault && ar.TableOnly {
		return nil, errorf(ErrPermission, "table %s: action %s is @tableonly and cannot be the default action", t.Name, act.Name)
	}
	if !asDefault && ar.DefaultOnly {
		return nil, errorf(ErrPermission, "table %s: action %s is @defaultonly and cannot be used in an entry", t.Name, act.Name)
	}
	return act, nil
}

// actionRef returns t.Actions[id]: a short scan of t's action ids costs
// less than a map lookup.
func (t *Table) actionRef(id uint32) *ActionRef {
	if n := len(t.actionIDs); n == 0 || n > 8 {
		return t.Actions[id]
	}
	for i, a := range t.actionIDs {
		if a == id {
			return t.ActionOrder[i]
		}
	}
	return nil
}

// actionAlloc holds an ActionCall and room for its parameters: one
// allocation for the common case.
type actionAlloc struct {
	ActionCall
	params [actionParams][]byte
}

func newActionCall(act *Action) *ActionCall { return newActionCallIn(act, nil) }

// actionParams is the number of action parameters an actionAlloc holds
// inline.
const actionParams = 4

// newActionCallIn is newActionCall in a, or in a new block when a is nil.
func newActionCallIn(act *Action, a *actionAlloc) *ActionCall {
	if a == nil {
		a = &actionAlloc{}
	}
	a.Action = act
	if n := len(act.Params); n <= len(a.params) {
		a.Params = a.params[:n:n]
	} else {
		a.Params = make([][]byte, n)
	}
	return &a.ActionCall
}

// entryAlloc holds an Entry with room for its match, action and bytes:
// one allocation for the common case, where a Write is allocation bound
// and every block a stored entry holds is one more for the garbage
// collector to find and mark.
type entryAlloc struct {
	Entry
	match [entryFields]FieldMatch
	// action holds the entry's ActionCall (a direct table's entries all
	// have one).
	action actionAlloc
	// wire caches the encoding of the entry's proto as a read Entity
	// (Entry.encoded) when the entry has no Entry.wire. A copy of the
	// Entry shares it, which is right as long as proto, which never
	// changes once stored, is the same.
	wire atomic.Pointer[[]byte]
	// used counts the bytes of mem handed out (Entry.ownBytes).
	used uint8
	// bare is 1 + the offset in mem of a Read form carved there (own)
	// that has no controller_metadata or metadata, 0 when none is
	// known: HasMetadata answers for it without walking it, for every
	// entry a backend stores. It describes bytes that never change, so
	// it holds for any copy of the Entry whose wire starts there, and is
	// wrong for none (a wire carved later starts elsewhere); it is set
	// once, before the entry is shared.
	bare uint8
	// mem holds the bytes the entry owns: its key and mask blobs, its
	// store key and its copy of the Read form with the values it
	// refers to (own). It comes last and holds no pointers, so the
	// collector has nothing to scan in it.
	mem [entryMem]byte
}

// entryFields is the number of match fields an entryAlloc holds inline.
const entryFields = 1

// entryBlock is the size of an entryAlloc: the runtime's 512-byte size
// class, the largest whose objects need no malloc header (larger ones
// take 8 bytes more, which would spill into the next class).
// TestEntryAllocSize checks it.
const entryBlock = 512

// entryMem is the size of entryAlloc.mem: what the other fields leave
// of the block (a literal: an Entry points to its entryAlloc, so the constant
// cannot be worked out from the other fields' sizes; TestEntryAllocSize
// checks it).
// It holds the blobs, store key and Read form of an exact entry with a
// three-param action (about 85 bytes) or of an LPM one.
const entryMem = 102

// entryAlloc.used and bare count bytes of mem in a uint8.
const _ = uint8(entryMem)

// ownBytes returns n bytes of the block e was allocated in, zero and
// never handed out before, or nil when there is no room or e is a copy
// of the entry the block was made for (a copy must not carve the
// original's block: it is stored and read concurrently). The bytes are
// the entry's for good: nothing reuses an entryAlloc.
func (e *Entry) ownBytes(n int) []byte {
	a := e.alloc
	if a == nil || &a.Entry != e || n > len(a.mem)-int(a.used) {
		return nil
	}
	u := int(a.used)
	a.used += uint8(n)
	return a.mem[u : u+n : u+n]
}

// newEntry returns an Entry of t with its Match slice ready.
func newEntry(t *Table) *Entry {
	a := &entryAlloc{}
	e := &a.Entry
	e.Table = t
	e.alloc = a
	if n := len(t.Fields); n <= len(a.match) {
		e.Match = a.match[:n:n]
	} else {
		e.Match = make([]FieldMatch, n)
	}
	return e
}

// parseParams checks an action's arguments: exactly one valid value per
// parameter (P4Runtime §9.1.2). It canonicalises the request in place;
// rewrote says whether that changed a value.
func parseParams(act *Action, ps []*p4v1.Action_Param, out [][]byte, t *Table) (rewrote bool, err error) {
	for _, prm := range ps {
		c, r, err := checkParam(act, prm.GetParamId(), prm.GetValue(), out, t)
		if err != nil {
			return false, err
		}
		rewrote = rewrote || r
		if prm != nil {
			prm.Value = c
		}
	}
	return rewrote, checkParamsSet(act, out, t)
}

// paramWhere prefixes messages about the params of an action of t (nil
// for an action profile's). Messages are only built on failure, since
// this runs for every entry written.
func paramWhere(t *Table) string {
	if t == nil {
		return ""
	}
	return "table " + t.Name + ": "
}

// checkParam checks the argument v of param id of act and puts its
// canonical value c in out; rewrote says whether c differs from v.
func checkParam(act *Action, id uint32, v []byte, out [][]byte, t *Table) (c []byte, rewrote bool, err error) {
	pa := act.Param(id)
	if pa == nil {
		return nil, false, errorf(ErrInvalid, "%saction %s: no param with id %d", paramWhere(t), act.Name, id)
	}
	if out[pa.Index] != nil {
		return nil, false, errorf(ErrInvalid, "%saction %s: param %s given twice", paramWhere(t), act.Name, pa.Name)
	}
	if pa.IsString {
		if len(v) == 0 || len(v) > maxStringBytes {
			return nil, false, errorf(ErrInvalid, "%saction %s: param %s: string must be 1..%d bytes", paramWhere(t), act.Name, pa.Name, maxStringBytes)
		}
		out[pa.Index] = v
		return v, false, nil
	}
	c, ok := canonical(v, pa.Bits)
	if !ok {
		if len(v) == 0 {
			return nil, false, errorf(ErrInvalid, "%saction %s: param %s: empty value", paramWhere(t), act.Name, pa.Name)
		}
		return nil, false, errorf(ErrInvalid, "%saction %s: param %s: value %s does not fit in %d bits", paramWhere(t), act.Name, pa.Name, hexOf(v), pa.Bits)
	}
	out[pa.Index] = c
	return c, len(c) != len(v), nil
}

// checkParamsSet checks that every param of act has its argument in out.
func checkParamsSet(act *Action, out [][]byte, t *Table) error {
	for i, v := range out {
		if v == nil {
			return errorf(ErrInvalid, "%saction %s: param %s (id %d) is missing", paramWhere(t), act.Name, act.Params[i].Name, act.Params[i].ID)
		}
	}
	return nil
}
