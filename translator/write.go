package translator

import (
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// Write applies a WriteRequest's updates (P4Runtime §12 "Write RPC"). Updates
// are processed in order: fabric-p4test's teardown relies on it. The
// returned slice has one error per update, nil for those that succeeded;
// it is nil when every update succeeded. err is set when the batch as a
// whole was refused before any update was tried (no pipeline, unsupported
// atomicity). The Device keeps the updates' entities (Reads serve them)
// and canonicalises them in place: the caller must not change them
// afterwards.
func (d *Device) Write(updates []*p4v1.Update, atomicity p4v1.WriteRequest_Atomicity, sc *Scope) (errs []error, err error) {
	return d.WriteWire(updates, nil, atomicity, sc)
}

// WriteWire is Write for a caller that reuses the memory of the updates
// once it returns: wires, nil or aligned with updates, holds for each
// update whose entity is a table entry the encoding that entry was
// decoded from (the bytes of Entity.table_entry), nil where there is
// none. The Device keeps nothing of an update that has its wire — nor of
// the wire itself — so the caller may reuse both as soon as WriteWire
// returns; updates without one are kept as Write keeps them. An entry
// already canonical is stored as a copy of its wire, the compact form of
// its Read form.
//
// An update whose Entity is nil but whose wire is set is a table entry
// given by its encoding alone: the caller did not decode it (the server's
// codec does not, for plain entries: PlainTableEntry). Such an update is
// parsed straight from its wire, as if its entity held the TableEntry the
// wire decodes to; one whose wire is not plain is decoded first.
func (d *Device) WriteWire(updates []*p4v1.Update, wires [][]byte, atomicity p4v1.WriteRequest_Atomicity, sc *Scope) (errs []error, err error) {
	return d.WriteParsed(updates, wires, nil, atomicity, sc)
}

// WriteParsed is WriteWire for a caller that parsed its plain table
// entries already: views, nil or aligned with updates, holds at i the
// parse of wires[i] (EntryView.Parse, which said true) wherever
// updates[i] has a nil Entity and wires[i] is set; its other elements are
// not looked at. The Device keeps nothing of views either.
func (d *Device) WriteParsed(updates []*p4v1.Update, wires [][]byte, views []EntryView, atomicity p4v1.WriteRequest_Atomicity, sc *Scope) (errs []error, err error) {
	if wires != nil && len(wires) != len(updates) || views != nil && len(views) != len(updates) {
		return nil, errorf(ErrInternal, "write: %d wires and %d views for %d updates", len(wires), len(views), len(updates))
	}
	if wires == nil {
		views = nil
	}
	// Parse the table entries before taking the lock, so that this
	// Write parses while another stages and applies.
	pre := d.preparse(updates, wires, views, sc)
	if pre != nil {
		defer d.recycle(pre) // after the Unlock below
	}
	if d.afterPreparse != nil {
		d.afterPreparse(pre)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if pre != nil && pre.cfg != d.cfg {
		// The config changed since: every update is parsed against
		// the new one, from what the client sent.
		pre.unwind()
		pre = nil
	}
	if pre != nil {
		// The updates never staged look as if never parsed (it runs
		// before the Unlock).
		defer pre.unwind()
	}
	if d.cfg == nil {
		return nil, errorf(ErrPrecondition, "no forwarding pipeline config: call SetForwardingPipelineConfig first")
	}
	if d.journal != nil && d.realized {
		// The batch is committed before the caller answers: a daemon
		// killed before that point takes the whole batch back on
		// restart (BatchJournal).
		d.journal.BeginBatch()
		defer d.journal.CommitBatch()
	}
	w := &batch{d: d, sc: sc, updates: updates, wires: wires, views: views, pre: pre, now: timeNow().UnixNano(), keepDone: atomicity != p4v1.WriteRequest_CONTINUE_ON_ERROR}
	w.pend, w.done, w.ops = d.spare.pend[:0], d.spare.done[:0], d.spare.ops[:0]
	if cap(w.pend) < min(len(updates), flushSize) {
		w.pend = make([]staged, 0, min(len(updates), flushSize))
	}
	defer d.keepSpare(w)
	switch atomicity {
	case p4v1.WriteRequest_CONTINUE_ON_ERROR:
		w.continueOnError()
	case p4v1.WriteRequest_ROLLBACK_ON_ERROR:
		w.allOrNothing(false)
	case p4v1.WriteRequest_DATAPLANE_ATOMIC:
		if _, ok := d.backend.(AtomicBackend); !ok && d.realized {
			return nil, errorf(ErrUnsupported, "DATAPLANE_ATOMIC: this datapath cannot switch a batch atomically; use ROLLBACK_ON_ERROR")
		}
		w.allOrNothing(true)
	default:
		return nil, errorf(ErrInvalid, "unknown atomicity %d", atomicity)
	}
	return w.errs, nil
}

// keepSpare keeps a finished batch's buffers for the next Write, cleared
// so that they hold on to no entries.
func (d *Device) keepSpare(w *batch) {
	clear(w.pend[:cap(w.pend)])
	clear(w.done[:cap(w.done)])
	clear(w.ops[:cap(w.ops)])
	d.spare.pend, d.spare.done, d.spare.ops = w.pend[:0], w.done[:0], w.ops[:0]
}

// staged is an op of an update, applied to the store and waiting for the
// backend. An update may stage several (a one-shot entry stages its members
// and group before the entry).
type staged struct {
	idx  int
	op   Op
	undo undo // undo.ext links an extern op's bookkeeping (batch.exts)
}

// extStaged is the extern side of a staged op.
type extStaged struct {
	// x is the extern op; nil for a local change.
	x *ExternOp
	// fn undoes the change in the store; nil when the staged undo does
	// (direct resource writes replace a table entry).
	fn func()
}

// extOf returns the extern side of s, or nil for a table op.
func (w *batch) extOf(s *staged) *extStaged {
	if s.undo.ext == 0 {
		return nil
	}
	return &w.exts[s.undo.ext-1]
}

// extOp returns s's extern op, nil for table ops and local changes.
func (w *batch) extOp(s *staged) *ExternOp {
	if x := w.extOf(s); x != nil {
		return x.x
	}
	return nil
}

// isLocal reports whether s changes control-plane state only (digest
// configs): the backend sees nothing of it.
func (w *batch) isLocal(s *staged) bool {
	x := w.extOf(s)
	return x != nil && x.x == nil
}

// revert undoes s in the store.
func (w *batch) revert(s *staged) {
	if x := w.extOf(s); x != nil && x.fn != nil {
		x.fn()
		return
	}
	s.undo.revert()
}

// batch is the state of one Write.
type batch struct {
	d       *Device
	sc      *Scope
	updates []*p4v1.Update
	errs    []error
	now     int64 // Unix ns
	// keepDone: remember applied ops so the batch can be rolled back.
	keepDone bool
	ops      []Op // reused for each flush
	scratch  *Entry
	pend     []staged // in the store, not yet in the backend
	done     []staged // in the store and the backend
	// anyExt: pend holds extern ops (the flush must split it into runs).
	anyExt bool
	// exts holds the extern side of staged ops (undo.ext).
	exts []extStaged

	// wires are the updates' table entry encodings (WriteWire), or nil.
	wires [][]byte
	// enc is scratch for re-encoding canonicalised table entries.
	enc []byte
	// parsedTo is one past the furthest update whose table entry was
	// parsed: those below it that are parsed again are retries.
	parsedTo int
	// pre holds the table entries parsed before the Write took the
	// lock, against the Device's current config; nil when there are
	// none.
	pre *preparsed
	// views are the parses of the table entries given by their wire
	// alone (WriteParsed), or nil: view is then scratch for parsing
	// them.
	views []EntryView
	view  entryView
	// tsOf and ts are the last table an entry was staged into and its
	// state in the store: a Write's entries are mostly of one table,
	// and the store does not change tables under a Write (it holds
	// Device.mu).
	tsOf *Table
	ts   *tableState
}

func (w *batch) fail(i int, err error) {
	if w.errs == nil {
		w.errs = make([]error, len(w.updates))
	}
	w.errs[i] = err
}

// continueOnError tries every update (P4Runtime §12.2: CONTINUE_ON_ERROR).
func (w *batch) continueOnError() {
	for i := 0; i < len(w.updates); {
		for ; i < len(w.updates) && len(w.pend) < flushSize; i++ {
			if w.errs != nil {
				w.errs[i] = nil // tried again after a backend failure
			}
			if err := w.stage(i); err != nil {
				w.fail(i, err)
			}
		}
		if bad, err := w.flush(); err != nil {
			// The failed op and those staged after it were undone in the
			// store; the updates after it are tried again against the
			// store as it now is.
			w.fail(bad, err)
			i = bad + 1
		}
		w.done = w.done[:0]
	}
}

// allOrNothing applies the whole batch or none of it. With atomic, the
// backend receives the batch in one ApplyAtomic (DATAPLANE_ATOMIC); without,
// ops reach the backend in order and are undone on failure
// (ROLLBACK_ON_ERROR: the dataplane may see intermediate states).
func (w *batch) allOrNothing(atomic bool) {
	for i := range w.updates {
		if err := w.stage(i); err != nil {
			w.fail(i, err)
			w.rollback(i)
			return
		}
		if !atomic && len(w.pend) >= flushSize {
			if bad, err := w.flush(); err != nil {
				w.fail(bad, err)
				w.rollback(bad)
				return
			}
		}
	}
	if atomic && w.d.realized && len(w.pend) > 0 {
		if err := w.applyAtomic(); err != nil {
			for i := len(w.pend) - 1; i >= 0; i-- {
				w.revert(&w.pend[i])
			}
			w.pend = nil
			for i := range w.updates {
				w.fail(i, err)
			}
		}
		return
	}
	if bad, err := w.flush(); err != nil {
		w.fail(bad, err)
		w.rollback(bad)
	}
}

// applyAtomic hands the whole pending batch to the backend at once
// (DATAPLANE_ATOMIC).
func (w *batch) applyAtomic() error {
	ops := make([]Op, 0, len(w.pend))
	var steps []Step
	for i := range w.pend {
		switch {
		case w.isLocal(&w.pend[i]):
		case w.extOp(&w.pend[i]) != nil:
			if steps == nil {
				steps = make([]Step, 0, len(w.pend))
				for k := range ops {
					steps = append(steps, Step{Op: &ops[k]})
				}
			}
			steps = append(steps, Step{Extern: w.extOp(&w.pend[i])})
		default:
			ops = append(ops, w.pend[i].op)
			if steps != nil {
				steps = append(steps, Step{Op: &w.pend[i].op})
			}
		}
	}
	var err error
	if steps == nil {
		err = w.d.backend.(AtomicBackend).ApplyAtomic(ops)
	} else {
		ab, ok := w.d.backend.(AtomicExternBackend)
		if !ok {
			return errorf(ErrUnsupported, "DATAPLANE_ATOMIC: this datapath cannot switch a batch with extern changes atomically; use ROLLBACK_ON_ERROR")
		}
		err = ab.ApplyAtomicSteps(steps)
	}
	if err != nil {
		return fmt.Errorf("apply atomic batch: %w", err)
	}
	return nil
}

// rollback undoes every update of the batch after update bad failed, and
// marks the others ABORTED.
func (w *batch) rollback(bad int) {
	for i := len(w.pend) - 1; i >= 0; i-- {
		w.revert(&w.pend[i])
	}
	w.pend = nil
	if len(w.done) > 0 {
		if w.d.realized {
			if n, total, err := w.unapply(w.done); err != nil {
				// The dataplane could not be restored; say so on every
				// update rather than pretend.
				for i := range w.updates {
					if i != bad {
						w.fail(i, errorf(ErrInternal, "rollback failed after update %d (%d of %d undone): %v", bad, n, total, err))
					}
				}
				return
			}
		}
		for i := len(w.done) - 1; i >= 0; i-- {
			w.revert(&w.done[i])
		}
		w.done = nil
	}
	for i := range w.updates {
		if i != bad {
			w.fail(i, errorf(ErrAborted, "not applied: update %d failed and the batch was rolled back", bad))
		}
	}
}

// unapply hands the backend the inverse of applied ops, last first. It
// returns how many inverse ops took effect, of how many.
func (w *batch) unapply(applied []staged) (n, total int, err error) {
	var steps []Step
	for i := len(applied) - 1; i >= 0; i-- {
		if w.isLocal(&applied[i]) {
			continue
		}
		if x := w.extOp(&applied[i]); x != nil {
			for _, inv := range x.inverse() {
				steps = append(steps, Step{Extern: &inv})
			}
			continue
		}
		inv := inverse(applied[i].op)
		steps = append(steps, Step{Op: &inv})
	}
	n, err = w.d.applySteps(steps)
	return n, len(steps), err
}

// inverse is the op that undoes op in a backend.
func inverse(op Op) Op {
	switch op.Kind {
	case OpInsert:
		return Op{Kind: OpDelete, Entry: op.Entry}
	case OpDelete:
		return Op{Kind: OpInsert, Entry: op.Entry}
	case OpModify:
		return Op{Kind: OpModify, Entry: op.Prev, Prev: op.Entry}
	default:
		return Op{Kind: OpSetDefault, Entry: op.Prev, Prev: op.Entry}
	}
}

// flush hands the pending ops to the backend. On failure it undoes, in the
// store, the failed op and every op staged after it, and returns the index
// of the failed update.
func (w *batch) flush() (bad int, err error) {
	if len(w.pend) == 0 {
		return 0, nil
	}
	if !w.d.realized {
		w.markDone(w.pend)
		return 0, nil
	}
	if w.anyExt {
		return w.flushMixed()
	}
	ops := w.ops[:0]
	for i := range w.pend {
		ops = append(ops, w.pend[i].op)
	}
	w.ops = ops
	n, err := w.d.backend.Apply(ops)
	if err == nil {
		w.markDone(w.pend)
		return 0, nil
	}
	if n < 0 || n >= len(w.pend) {
		n = len(w.pend) - 1 // a backend that cannot say: blame the last
	}
	return w.failAt(n, fmt.Errorf("apply %s: %w", ops[n].Kind, err))
}

// flushMixed hands pending table and extern ops to the backend in order,
// each run of one kind in one call.
func (w *batch) flushMixed() (bad int, err error) {
	for i := 0; i < len(w.pend); {
		if w.isLocal(&w.pend[i]) {
			i++
			continue
		}
		j := i + 1
		ext := w.extOp(&w.pend[i]) != nil
		for j < len(w.pend) && !w.isLocal(&w.pend[j]) && (w.extOp(&w.pend[j]) != nil) == ext {
			j++
		}
		var n int
		var what string
		if ext {
			ops := make([]ExternOp, j-i)
			for k := i; k < j; k++ {
				ops[k-i] = *w.extOp(&w.pend[k])
			}
			n, err = w.d.externs.ApplyExterns(ops)
			if err != nil && n >= 0 && n < len(ops) {
				what = ops[n].Kind.String()
			}
		} else {
			ops := w.ops[:0]
			for k := i; k < j; k++ {
				ops = append(ops, w.pend[k].op)
			}
			w.ops = ops
			n, err = w.d.backend.Apply(ops)
			if err != nil && n >= 0 && n < len(ops) {
				what = ops[n].Kind.String()
			}
		}
		if err != nil {
			if n < 0 || n >= j-i {
				n = j - i - 1 // a backend that cannot say: blame the last
				what = "batch"
			}
			return w.failAt(i+n, fmt.Errorf("apply %s: %w", what, err))
		}
		i = j
	}
	w.markDone(w.pend)
	w.anyExt = false
	return 0, nil
}

// failAt handles a backend failure at pend[k]: ops before it took effect,
// it and those after did not. The whole update it belongs to is undone —
// in the backend too, for its ops before k — as are the updates staged
// after it; the updates before it stay done. It returns the index of the
// failed update and err.
func (w *batch) failAt(k int, err error) (int, error) {
	bad := w.pend[k].idx
	start := k
	for start > 0 && w.pend[start-1].idx == bad {
		start--
	}
	for i := len(w.pend) - 1; i >= k; i-- {
		w.revert(&w.pend[i])
	}
	if start < k {
		if n, total, uerr := w.unapply(w.pend[start:k]); uerr != nil {
			err = errorf(ErrInternal, "%v; undoing the update's first ops failed too (%d of %d undone): %v", err, n, total, uerr)
		}
		for i := k - 1; i >= start; i-- {
			w.revert(&w.pend[i])
		}
	}
	w.markDone(w.pend[:start])
	w.anyExt = false
	return bad, err
}

// markDone records applied ops (for a rollback) and empties pend.
func (w *batch) markDone(applied []staged) {
	if w.keepDone {
		w.done = append(w.done, applied...)
	}
	w.pend = w.pend[:0]
}

// stage checks update i and applies it to the store. On failure nothing of
// the update stays staged.
func (w *batch) stage(i int) error {
	n := len(w.pend)
	err := w.stageOne(i)
	if err != nil && len(w.pend) > n {
		for k := len(w.pend) - 1; k >= n; k-- {
			w.revert(&w.pend[k])
		}
		w.pend = w.pend[:n]
	}
	return err
}

// writeOpOf returns what an update of type t does; ok is false for an
// unspecified or unknown type.
func writeOpOf(t p4v1.Update_Type) (op writeOp, ok bool) {
	switch t {
	case p4v1.Update_INSERT:
		return opInsert, true
	case p4v1.Update_MODIFY:
		return opModify, true
	case p4v1.Update_DELETE:
		return opDelete, true
	}
	return 0, false
}

// checkPresence checks an update against whether its object exists:
// INSERT wants it absent (ALREADY_EXISTS), MODIFY and DELETE present
// (NOT_FOUND), as the P4Runtime spec says of every entity kind. what names the
// object in the message.
func checkPresence(op writeOp, exists bool, what string) error {
	switch {
	case op == opInsert && exists:
		return errorf(ErrExists, "%s already exists", what)
	case op != opInsert && !exists:
		return errorf(ErrNotFound, "%s does not exist", what)
	}
	return nil
}

// stageOne dispatches update i by entity kind.
func (w *batch) stageOne(i int) error {
	u := w.updates[i]
	op, ok := writeOpOf(u.GetType())
	if !ok {
		return errorf(ErrInvalid, "update type %v is not INSERT, MODIFY or DELETE", u.GetType())
	}
	ent := u.GetEntity()
	if ent == nil && w.wires != nil && w.wires[i] != nil {
		return w.stageTableEntry(i, nil, op)
	}
	switch x := ent.GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		return w.stageTableEntry(i, x.TableEntry, op)
	case *p4v1.Entity_ActionProfileMember:
		return w.stageMember(i, x.ActionProfileMember, op)
	case *p4v1.Entity_ActionProfileGroup:
		return w.stageGroup(i, x.ActionProfileGroup, op)
	case *p4v1.Entity_CounterEntry:
		return w.stageCounter(i, x.CounterEntry, op)
	case *p4v1.Entity_DirectCounterEntry:
		return w.stageDirectCounter(i, x.DirectCounterEntry, op)
	case *p4v1.Entity_MeterEntry:
		return w.stageMeter(i, x.MeterEntry, op)
	case *p4v1.Entity_DirectMeterEntry:
		return w.stageDirectMeter(i, x.DirectMeterEntry, op)
	case *p4v1.Entity_RegisterEntry:
		return w.stageRegister(i, x.RegisterEntry, op)
	case *p4v1.Entity_PacketReplicationEngineEntry:
		return w.stagePRE(i, x.PacketReplicationEngineEntry, op)
	case *p4v1.Entity_ValueSetEntry:
		return w.stageValueSet(i, x.ValueSetEntry, op)
	case *p4v1.Entity_DigestEntry:
		return w.stageDigest(i, x.DigestEntry, op)
	case *p4v1.Entity_ExternEntry:
		return errorf(ErrUnsupported, "ExternEntry: p4tcd implements no architecture-specific externs")
	case nil:
		return errorf(ErrInvalid, "update has no entity")
	default:
		return errorf(ErrUnsupported, "writing %s entities is not supported", entityName(ent))
	}
}

// need answers UNIMPLEMENTED when the backend does not realise the extern
// kind k (what names it in the message).
func (w *batch) need(k ExternSet, what string) error {
	return w.d.need(k, what)
}

// pushExt stages an extern op of update i with its undo.
func (w *batch) pushExt(i int, x *ExternOp, undoFn func()) {
	w.pushExtUndo(i, x, undoFn, undo{})
}

// pushExtUndo stages an extern op of update i; the store undo is undoFn,
// or u when undoFn is nil.
func (w *batch) pushExtUndo(i int, x *ExternOp, undoFn func(), u undo) {
	w.exts = append(w.exts, extStaged{x: x, fn: undoFn})
	u.ext = int32(len(w.exts))
	w.pend = append(w.pend, staged{idx: i, undo: u})
	w.anyExt = true
}

// pushStore stages a change of update i to control-plane-only state.
func (w *batch) pushStore(i int, undoFn func()) {
	w.exts = append(w.exts, extStaged{fn: undoFn})
	w.pend = append(w.pend, staged{idx: i, undo: undo{ext: int32(len(w.exts))}})
	w.anyExt = true
}

// stageTableEntry stages a table entry update; te is nil for one given by
// its wire alone.
func (w *batch) stageTableEntry(i int, te *p4v1.TableEntry, op writeOp) error {
	cfg := w.d.cfg
	e, te, err := w.parseUpdateEntry(i, te, op)
	if err != nil {
		return err
	}
	e.written = w.now
	t := e.Table
	if t.IsConst && !e.IsDefault {
		// P4Runtime §9.1.4: only MODIFY of direct resources is allowed.
		if op != opModify || e.Action != nil || e.Indirect != nil {
			return errorf(ErrPermission, "table %s is const: its entries cannot be %s", t.Name, pastTense(op, e.Action != nil || e.Indirect != nil))
		}
	}
	if op == opInsert {
		e.Placement = w.sc.placement(cfg, t)
	}
	// The slot's entry, looked up once here for all that follows: the
	// datapath check, the store and, for an indirect table, the
	// existence check and the one-shot set it replaces. Nothing below
	// changes the slot before the store stages the entry.
	ts := w.ts
	if w.tsOf != t {
		ts = w.d.st.tables[t.ID]
		w.tsOf, w.ts = t, ts
	}
	var prev *Entry
	if !e.IsDefault {
		prev = ts.entries[e.skey]
	}
	if op != opInsert && !e.IsDefault && prev == nil {
		// Not a controller entry: maybe one the datapath created.
		dp, err := w.d.datapathEntry(t, e.Match)
		if err != nil {
			return err
		}
		if dp != nil {
			if op == opModify {
				return errorf(ErrUnsupported, "table %s: entry %s was created by the datapath; it can be read and deleted, not modified", t.Name, describeKey(e))
			}
			w.pend = append(w.pend, staged{idx: i, op: Op{Kind: OpDelete, Entry: dp}})
			return nil
		}
	}
	if op != opDelete {
		if err := w.checkDirectCaps(t, te); err != nil {
			return err
		}
	}
	if t.Profile != nil && !e.IsDefault {
		if err := w.need(ExternActionProfiles, "table "+t.Name+" (implemented by action profile "+t.Profile.Name+")"); err != nil {
			return err
		}
		return w.stageIndirect(i, e, op, ts, prev)
	}
	o, u, err := ts.stage(e, op, prev)
	if err != nil {
		return err
	}
	w.pend = append(w.pend, staged{idx: i, op: o, undo: u})
	return nil
}

// parseUpdateEntry checks that the role may write the table entry of
// update i and parses it: its pre-parse on the update's first staging,
// when there is one, else now. te is nil for an entry given by its wire
// alone; tree is te, or the TableEntry such an entry was decoded into
// when it does not parse from its view (nil when it did: it is plain,
// and has no direct resources).
func (w *batch) parseUpdateEntry(i int, te *p4v1.TableEntry, op writeOp) (e *Entry, tree *p4v1.TableEntry, err error) {
	if it := w.pre.take(i); it != nil {
		// Pre-parsed, which it is only for a table the role may
		// write (preTable), against this config.
		w.parsed(i)
		return it.e, te, it.err
	}
	cfg := w.d.cfg
	var wire []byte
	if w.wires != nil {
		wire = w.wires[i]
	}
	var v *entryView
	if te == nil && wire != nil {
		if w.views != nil {
			v = &w.views[i].v
		} else if v = &w.view; !v.parse(wire) {
			v = nil
			if te, err = decodeWire(wire); err != nil {
				return nil, nil, err
			}
		}
	}
	var id uint32
	switch {
	case v != nil:
		id = v.tableID
	case te == nil:
		return nil, nil, errorf(ErrInvalid, "empty table entry")
	default:
		id = te.GetTableId()
	}
	if !w.sc.allows(id) && cfg.Tables[id] != nil {
		return nil, te, errorf(ErrPermission, "role %q may not write table %s", w.sc.Role, cfg.Tables[id].Name)
	}
	reparse := w.parsed(i)
	if w.scratch == nil {
		// Room for the key of a two-field table; wider keys get an
		// Entry of their own.
		w.scratch = &Entry{Match: make([]FieldMatch, 0, 2)}
	}
	if v != nil {
		if ve, verr := cfg.parseEntryView(v, wire, op, w.scratch, &w.enc); verr != errNotPlain {
			return ve, nil, verr
		}
		if te, err = decodeWire(wire); err != nil {
			return nil, nil, err
		}
	}
	e, err = cfg.parseTableEntryWire(te, wire, op, w.scratch, &w.enc, reparse)
	return e, te, err
}

// parsed notes that update i is being parsed, and reports whether it was
// before in this Write. Updates are staged in order; one at or below the
// furthest staged so far is tried again after a backend failure
// (CONTINUE_ON_ERROR), and a tree's values are then already canonical.
func (w *batch) parsed(i int) (reparse bool) {
	reparse = i < w.parsedTo
	w.parsedTo = max(w.parsedTo, i+1)
	return reparse
}

// decodeWire decodes the TableEntry of an update given by its wire alone
// that parseEntryView does not take. The TableEntry is the Device's.
func decodeWire(wire []byte) (*p4v1.TableEntry, error) {
	te := &p4v1.TableEntry{}
	if err := proto.Unmarshal(wire, te); err != nil {
		return nil, errorf(ErrInvalid, "table entry: %v", err)
	}
	return te, nil
}

// datapathEntry finds the datapath-created entry of t with the given match,
// or nil (no pool, no such entry, a backend that creates none, or a config
// the backend does not run yet).
func (d *Device) datapathEntry(t *Table, match []FieldMatch) (*Entry, error) {
	dc, ok := d.backend.(DatapathCreator)
	if !ok || !d.realized || d.cfg.Program.Settings(t.ID).PoolSize == 0 {
		return nil, nil
	}
	de, err := dc.LookupDatapathEntry(t.ID, match)
	if err != nil || de == nil {
		return nil, err
	}
	e, _, err := d.cfg.datapathEntry(de)
	return e, err
}

// checkDirectCaps refuses direct resource data the backend cannot realise.
func (w *batch) checkDirectCaps(t *Table, te *p4v1.TableEntry) error {
	if te.GetCounterData() != nil && t.DirectCounter != nil {
		if err := w.need(ExternDirectCounters, "direct counter "+t.DirectCounter.Name); err != nil {
			return err
		}
	}
	if te.GetMeterConfig() != nil && t.DirectMeter != nil {
		if err := w.need(ExternDirectMeters, "direct meter "+t.DirectMeter.Name); err != nil {
			return err
		}
	}
	return nil
}

func pastTense(op writeOp, withAction bool) string {
	switch op {
	case opInsert:
		return "inserted"
	case opDelete:
		return "deleted"
	}
	if withAction {
		return "given a new action"
	}
	return "modified"
}

// entityName names the oneof an Entity holds, for messages.
func entityName(e *p4v1.Entity) string {
	switch e.GetEntity().(type) {
	case *p4v1.Entity_ExternEntry:
		return "extern"
	case *p4v1.Entity_TableEntry:
		return "table"
	case *p4v1.Entity_ActionProfileMember:
		return "action profile member"
	case *p4v1.Entity_ActionProfileGroup:
		return "action profile group"
	case *p4v1.Entity_MeterEntry:
		return "meter"
	case *p4v1.Entity_DirectMeterEntry:
		return "direct meter"
	case *p4v1.Entity_CounterEntry:
		return "counter"
	case *p4v1.Entity_DirectCounterEntry:
		return "direct counter"
	case *p4v1.Entity_PacketReplicationEngineEntry:
		return "packet replication engine"
	case *p4v1.Entity_ValueSetEntry:
		return "value set"
	case *p4v1.Entity_RegisterEntry:
		return "register"
	case *p4v1.Entity_DigestEntry:
		return "digest"
	}
	return "unknown"
}
