package translator

import (
	"runtime"
	"sync/atomic"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// defaultPreparseMin is the fewest updates a Write needs for its table
// entries to be parsed before it takes Device.mu: below it, the parse is
// too short for another Write to overlap with, and the pre-parse's
// bookkeeping would cost more than it saves.
const defaultPreparseMin = 16

// defaultPreparseSplit is the fewest updates for which the pre-parse
// takes a helper goroutine (parseShared), and defaultPreparseChunk the
// updates it and the Write claim at a time: a chunk is long next to a
// claim, and a Write of 256 has four of them.
const (
	defaultPreparseSplit = 256
	defaultPreparseChunk = 64
)

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
	// preWorker is the calling goroutine's scratch; helper is the
	// helper goroutine's (parseShared).
	preWorker
	helper preWorker
}

// preWorker is the scratch of one goroutine pre-parsing.
type preWorker struct {
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
	e     *Entry
	err   error
	state preState
	// canon0 and canon1 bound the update's records in preparsed.canon.
	canon0, canon1 int32
	// del and delField are, for a DELETE, its Entry in preparsed.dels
	// and where its Match starts in preparsed.delMatch.
	del, delField int32
}

// canonUndo is a value of a TableEntry as it was before parsing.
type canonUndo struct {
	at  *[]byte
	was []byte
}

// preparse parses the plain table-entry updates of a Write against the
// current config, without Device.mu, or returns nil when there is
// nothing worth it. Only what parseTableEntryWire decides alone is
// parsed here: INSERT, MODIFY and DELETE of non-default entries of
// direct tables the scope may write. Everything else — and the role
// check, which comes first — happens under the lock at the update's
// turn, as do the checks against the store.
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
		it := &p.items[i]
		switch {
		case t == nil:
			continue
		case op == opDelete:
			it.state = preDelete
			it.del, it.delField = int32(nDel), int32(nField)
			nDel++
			nField += len(t.Fields)
		default:
			it.state = preWanted
		}
	}
	if cap(p.dels) < nDel {
		p.dels = make([]Entry, nDel)
	}
	if cap(p.delMatch) < nField {
		p.delMatch = make([]FieldMatch, nField)
	}
	p.dels, p.delMatch = p.dels[:nDel], p.delMatch[:nField]
	if wires != nil && len(updates) >= d.preparseSplitMin() && runtime.GOMAXPROCS(0) > 1 {
		// Entries given by their wire alone first, on two cores.
		p.parseShared(updates, wires, views, d.preparseChunkLen())
	}
	for i := range p.items {
		p.parseOne(i, updates, wires, views, &p.preWorker, true)
	}
	return p
}

// preparseSplitMin is the fewest updates for which d's pre-parse takes
// a helper goroutine.
func (d *Device) preparseSplitMin() int {
	switch n := d.preparseSplit; {
	case n < 0:
		return int(^uint(0) >> 1)
	case n == 0:
		return defaultPreparseSplit
	default:
		return n
	}
}

// preparseChunkLen is the updates a pre-parse goroutine claims at a time.
func (d *Device) preparseChunkLen() int {
	if d.preparseChunk > 0 {
		return d.preparseChunk
	}
	return defaultPreparseChunk
}

// parseOne pre-parses update i, when the first pass marked it and it is
// not parsed yet, with w's scratch. Unless tree is set, it leaves alone
// an update with a TableEntry: parsing one records its values in
// p.canon, in update order (unwind), which only the calling goroutine,
// last, may do. It touches nothing of p but update i's item and Entry
// in dels, so that two goroutines may parse different updates at once.
func (p *preparsed) parseOne(i int, updates []*p4v1.Update, wires [][]byte, views []EntryView, w *preWorker, tree bool) {
	it := &p.items[i]
	if it.state != preDelete && it.state != preWanted {
		return
	}
	te := updates[i].GetEntity().GetTableEntry()
	if te != nil && !tree {
		return
	}
	var wire []byte
	if wires != nil {
		wire = wires[i]
	}
	var v *entryView
	if te == nil {
		// Given by its wire alone (preTable saw to it).
		if views != nil {
			v = &views[i].v
		} else if v = &w.view; !v.parse(wire) {
			it.state = preNone // decoded under the lock
			return
		}
	}
	op := opDelete
	var scratch *Entry
	if it.state == preDelete {
		scratch = &p.dels[it.del]
		n := int32(len(p.cfg.Tables[tableIDOf(te, v)].Fields))
		scratch.Match = p.delMatch[it.delField : it.delField : it.delField+n]
	} else if op = opInsert; updates[i].GetType() == p4v1.Update_MODIFY {
		op = opModify
	}
	if v != nil {
		// Nothing to put back: parsing leaves the wire alone.
		it.canon0, it.canon1 = 0, 0
		it.e, it.err = p.cfg.parseEntryView(v, wire, op, scratch, &w.enc, false)
		if it.err == errNotPlain {
			*it = preItem{} // parsed under the lock
			return
		}
	} else {
		it.canon0 = int32(len(p.canon))
		p.noteCanon(te)
		it.canon1 = int32(len(p.canon))
		it.e, it.err = p.cfg.parseTableEntryWire(te, wire, op, scratch, &w.enc, false)
	}
	it.state = preReady
}

// preShare is the work of a pre-parse split with a helper goroutine
// (parseShared). It is made for one pre-parse and never reused: a helper
// that starts after the pre-parse is over finds no chunk left in it, and
// touches nothing else.
type preShare struct {
	// next counts the chunks claimed, by either goroutine.
	next atomic.Int32
	// busy is 1 while the helper holds a chunk: it is set before the
	// helper claims one.
	busy atomic.Int32
	// idle receives a token when the helper lets go of a chunk.
	idle chan struct{}
}

// parseShared pre-parses the updates given by their wire alone with a
// helper goroutine, by work stealing: both claim chunks of the updates
// from a shared counter until none is left, and the caller then waits
// only for the chunk the helper is parsing, if any. It never waits for a
// helper that has not started: a goroutine woken on an idle core may
// start a millisecond late, by which time the caller has parsed
// everything alone. Chunks hold whole updates of p's items, which the
// two parse apart with their own scratch (parseOne).
func (p *preparsed) parseShared(updates []*p4v1.Update, wires [][]byte, views []EntryView, chunk int) {
	n := int32((len(updates) + chunk - 1) / chunk)
	sh := &preShare{idle: make(chan struct{}, 1)}
	work := func(w *preWorker, c int32) {
		lo := int(c) * chunk
		for i := lo; i < min(lo+chunk, len(updates)); i++ {
			p.parseOne(i, updates, wires, views, w, false)
		}
	}
	go func() {
		for {
			// busy before the claim: a caller that finds no chunk
			// left and then busy 0 knows that any claim the helper
			// makes from then on fails.
			sh.busy.Store(1)
			c := sh.next.Add(1) - 1
			if c >= n {
				sh.busy.Store(0)
				select {
				case sh.idle <- struct{}{}:
				default:
				}
				return
			}
			work(&p.helper, c)
			sh.busy.Store(0)
			select {
			case sh.idle <- struct{}{}:
			default:
			}
		}
	}()
	for {
		c := sh.next.Add(1) - 1
		if c >= n {
			break
		}
		work(&p.preWorker, c)
	}
	for sh.busy.Load() != 0 {
		<-sh.idle
	}
}

// tableIDOf returns the table id of te, or of v when te is nil.
func tableIDOf(te *p4v1.TableEntry, v *entryView) uint32 {
	if te == nil {
		return v.tableID
	}
	return te.GetTableId()
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

// ready reports whether update i has a pre-parse for its first staging.
func (p *preparsed) ready(i int) bool {
	return p != nil && p.items[i].state == preReady
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
