package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// defaultPreparseMin is the fewest updates a Write needs for its table
// entries to be parsed before it takes Device.mu: below it, the parse is
// too short for another Write to overlap with, and the pre-parse's
// bookkeeping would cost more than it saves.
const defaultPreparseMin = 16

// preparsed is a Write's plain table-entry updates parsed before the
// Write takes Device.mu, so that a Write parses while another one stages
// and applies (parsing is a sixth of a Write's CPU). It is only good
// against the config it was parsed against: the Write drops it when d.cfg
// changed in between, and parses under the lock as it always did.
//
// Parsing canonicalises a TableEntry's values in place. A Write that
// ends before reaching an update, or that drops the pre-parse, puts the
// update's values back (canon), so that the update looks as if it had
// never been parsed: a parse under another config must see what the
// client sent, and a caller of Write sees its updates as it does without
// a pre-parse. Entries given by their wire alone are parsed from views,
// which parsing leaves as they are: they have nothing to put back.
//
// A preparsed belongs to one Write at a time (Device.prePool); nothing of
// it outlives the Write but the Entries that were stored.
type preparsed struct {
	// cfg is the config the entries were parsed against.
	cfg *Config
	// items holds, by update index, what the pre-parse found.
	items []preItem
	// dels are the Entries of pre-parsed DELETEs, and delMatch the room
	// for their Match: reused from Write to Write so that deletes do not
	// allocate (a deleted key is never stored; the Write parsing under
	// the lock reuses one scratch Entry for the same reason).
	dels     []Entry
	delMatch []FieldMatch
	// canon records the values the parse may have canonicalised in
	// place, as they were; each item's are canon[canon0:canon1].
	canon []canonUndo
	// enc is scratch for re-encoding canonicalised entries (the batch's
	// is the locked Write's, and another Write may hold it).
	enc []byte
	// view is scratch for parsing entries given by their wire alone
	// (WriteWire), for the same reason.
	view entryView
}

// preState is where an update stands in the pre-parse.
type preState uint8

const (
	// preNone: not pre-parsed; the update is parsed under the lock.
	preNone preState = iota
	// preDelete: marked for pre-parsing as a DELETE (first pass only).
	preDelete
	// preWanted: marked for pre-parsing as an INSERT or MODIFY (first
	// pass only).
	preWanted
	// preReady: parsed, not yet staged.
	preReady
	// preUsed: staged once. A second staging (CONTINUE_ON_ERROR tries
	// updates again after a backend failure) parses anew, since staging
	// changes the Entry (MODIFY without action, const, placement...).
	preUsed
)

// preItem is the pre-parse of one update.
type preItem struct {
	e   *Entry
	err error
	// t is the update's table, which the first pass looked up.
	t     *Table
	state preState
	// canon0 and canon1 bound the update's records in preparsed.canon.
	canon0, canon1 int32
}

// canonUndo is a value of a TableEntry as it was before parsing.
type canonUndo struct {
	at  *[]byte
	was []byte
}

// preparse parses the plain table-entry updates of a Write against the
// current config, without Device.mu, or returns nil when there is
// nothing worth it. Only what parseTableEntryWire (or, for an entry
// given by its wire alone, parseEntryViewIn) decides alone is parsed
// here: INSERT, MODIFY and DELETE of non-default entries of direct
// tables the scope may write. Everything else — and the role check,
// which comes first — happens under the lock at the update's turn, as
// do the checks against the store.
func (d *Device) preparse(updates []*p4v1.Update, wires [][]byte, views []EntryView, sc *Scope) *preparsed {
	switch least := d.preparseMin; {
	case least < 0:
		return nil
	case least == 0 && len(updates) < defaultPreparseMin, len(updates) < least:
		return nil
	}
	cfg := d.cfgSnap.Load()
	if cfg == nil {
		return nil
	}
	p, _ := d.prePool.Get().(*preparsed)
	if p == nil {
		p = &preparsed{}
	}
	p.cfg = cfg
	if cap(p.items) < len(updates) {
		p.items = make([]preItem, len(updates))
	}
	p.items = p.items[:len(updates)]
	// First pass: which updates, and how much room their DELETEs need,
	// so that the slabs grow at most once and the Entries in them stay
	// put.
	nDel, nField := 0, 0
	for i, u := range updates {
		var wire []byte
		var v *entryView
		if wires != nil {
			wire = wires[i]
			if views != nil {
				v = &views[i].v
			}
		}
		t, op := preTable(u, wire, v, cfg, sc)
		switch {
		case t == nil:
			continue
		case op == opDelete:
			p.items[i].state = preDelete
			nDel++
			nField += len(t.Fields)
		default:
			p.items[i].state = preWanted
		}
		p.items[i].t = t
	}
	if cap(p.dels) < nDel {
		p.dels = make([]Entry, nDel)
	}
	if cap(p.delMatch) < nField {
		p.delMatch = make([]FieldMatch, nField)
	}
	p.dels, p.delMatch = p.dels[:nDel], p.delMatch[:nField]
	nDel, nField = 0, 0
	for i := range p.items {
		it := &p.items[i]
		if it.state == preNone {
			continue
		}
		te := updates[i].GetEntity().GetTableEntry()
		var wire []byte
		if wires != nil {
			wire = wires[i]
		}
		var v *entryView
		if te == nil {
			// Given by its wire alone (preTable saw to it).
			if views != nil {
				v = &views[i].v
			} else if v = &p.view; !v.parse(wire) {
				it.state = preNone // decoded under the lock
				continue
			}
		}
		op := opDelete
		var scratch *Entry
		if it.state == preDelete {
			scratch = &p.dels[nDel]
			nDel++
			n := len(it.t.Fields) // both passes read the same table id
			scratch.Match = p.delMatch[nField : nField : nField+n]
			nField += n
		} else if op = opInsert; updates[i].GetType() == p4v1.Update_MODIFY {
			op = opModify
		}
		it.canon0 = int32(len(p.canon))
		if v != nil {
			// Nothing to put back: parsing leaves the wire alone.
			it.canon1 = it.canon0
			it.e, it.err = cfg.parseEntryViewIn(it.t, v, wire, op, scratch, &p.enc)
			if it.err == errNotPlain {
				*it = preItem{} // parsed under the lock
				continue
			}
		} else {
			p.noteCanon(te)
			it.canon1 = int32(len(p.canon))
			it.e, it.err = cfg.parseTableEntryWire(te, wire, op, scratch, &p.enc, false)
		}
		it.state = preReady
	}
	return p
}

// preTable returns the table of u, whose table entry's wire is wire (nil
// if none) and v its view (nil if none), when u is an update the
// pre-parse takes, with what it does; nil otherwise.
func preTable(u *p4v1.Update, wire []byte, v *entryView, cfg *Config, sc *Scope) (*Table, writeOp) {
	op, ok := writeOpOf(u.GetType())
	if !ok {
		return nil, 0
	}
	var id uint32
	if te := u.GetEntity().GetTableEntry(); te != nil {
		if te.GetIsDefaultAction() {
			return nil, 0
		}
		id = te.GetTableId()
	} else if u.GetEntity() != nil || wire == nil {
		return nil, 0
	} else if v != nil {
		id = v.tableID
	} else if id, ok = wireTableID(wire); !ok {
		// Given by its wire alone: a plain entry is no default
		// entry; one that is not plain is decoded under the lock.
		return nil, 0
	}
	t := cfg.Tables[id]
	if t == nil || t.Profile != nil || !sc.allows(t.ID) {
		// Unknown tables fail fast under the lock; indirect tables
		// parse their actions along with the store's members and
		// groups; a role that may not write the table is refused
		// before any parse.
		return nil, 0
	}
	return t, op
}

// noteCanon records the values of te that parsing may canonicalise in
// place: those with a leading zero byte, which canonical shortens. The
// values of string fields, which parsing leaves alone, may be recorded
// too: which fields are strings is the config's to say, and putting back
// a value that did not change is a no-op.
func (p *preparsed) noteCanon(te *p4v1.TableEntry) {
	for _, m := range te.GetMatch() {
		switch x := m.GetFieldMatchType().(type) {
		case *p4v1.FieldMatch_Exact_:
			if x.Exact != nil {
				p.note(&x.Exact.Value)
			}
		case *p4v1.FieldMatch_Lpm:
			if x.Lpm != nil {
				p.note(&x.Lpm.Value)
			}
		case *p4v1.FieldMatch_Ternary_:
			if x.Ternary != nil {
				p.note(&x.Ternary.Value)
				p.note(&x.Ternary.Mask)
			}
		case *p4v1.FieldMatch_Range_:
			if x.Range != nil {
				p.note(&x.Range.Low)
				p.note(&x.Range.High)
			}
		case *p4v1.FieldMatch_Optional_:
			if x.Optional != nil {
				p.note(&x.Optional.Value)
			}
		}
	}
	for _, prm := range te.GetAction().GetAction().GetParams() {
		if prm != nil {
			p.note(&prm.Value)
		}
	}
}

// note records *v if canonical may shorten it.
func (p *preparsed) note(v *[]byte) {
	if b := *v; len(b) > 1 && b[0] == 0 {
		p.canon = append(p.canon, canonUndo{at: v, was: b})
	}
}

// take returns the pre-parse of update i for its first staging, and marks
// it used; nil when the update must be parsed now.
func (p *preparsed) take(i int) *preItem {
	if p == nil || p.items[i].state != preReady {
		return nil
	}
	it := &p.items[i]
	it.state = preUsed
	return it
}

// unwind puts back the values the parse canonicalised in the updates
// never staged, last first (an update that shares a value with an
// earlier one recorded it as the earlier one left it), and drops their
// pre-parse. It runs under Device.mu: a value it puts back may be one a
// stored entry's Read form shares, if a caller passed the same
// TableEntry twice. Only values that changed are written.
func (p *preparsed) unwind() {
	for i := len(p.items) - 1; i >= 0; i-- {
		it := &p.items[i]
		if it.state != preReady {
			continue
		}
		for k := it.canon1 - 1; k >= it.canon0; k-- {
			if r := &p.canon[k]; len(*r.at) != len(r.was) {
				*r.at = r.was
			}
		}
		*it = preItem{}
	}
}

// recycle returns p to d's pool once its Write is over, holding on to no
// entries, tables or request memory.
func (d *Device) recycle(p *preparsed) {
	clear(p.items)
	clear(p.dels)
	clear(p.delMatch)
	clear(p.canon)
	p.items, p.dels, p.delMatch, p.canon = p.items[:0], p.dels[:0], p.delMatch[:0], p.canon[:0]
	p.cfg = nil
	d.prePool.Put(p)
}
