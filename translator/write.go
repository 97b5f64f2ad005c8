package translator

import (
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Write applies a WriteRequest's updates (P4Runtime §12 "Write RPC"). Updates
// are processed in order: fabric-p4test's teardown relies on it. The
// returned slice has one error per update, nil for those that succeeded;
// it is nil when every update succeeded. err is set when the batch as a
// whole was refused before any update was tried (no pipeline, unsupported
// atomicity).
func (d *Device) Write(updates []*p4v1.Update, atomicity p4v1.WriteRequest_Atomicity, sc *Scope) (errs []error, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg == nil {
		return nil, errorf(ErrPrecondition, "no forwarding pipeline config: call SetForwardingPipelineConfig first")
	}
	w := &batch{d: d, sc: sc, updates: updates, now: timeNow().UnixNano(), keepDone: atomicity != p4v1.WriteRequest_CONTINUE_ON_ERROR}
	w.pend = make([]staged, 0, min(len(updates), flushSize))
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

// staged is an update applied to the store and waiting for the backend.
type staged struct {
	idx  int
	op   Op
	undo undo
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
		ops := make([]Op, len(w.pend))
		for i := range w.pend {
			ops[i] = w.pend[i].op
		}
		if err := w.d.backend.(AtomicBackend).ApplyAtomic(ops); err != nil {
			for i := len(w.pend) - 1; i >= 0; i-- {
				w.pend[i].undo.revert()
			}
			w.pend = nil
			for i := range w.updates {
				w.fail(i, fmt.Errorf("apply atomic batch: %w", err))
			}
		}
		return
	}
	if bad, err := w.flush(); err != nil {
		w.fail(bad, err)
		w.rollback(bad)
	}
}

// rollback undoes every update of the batch after update bad failed, and
// marks the others ABORTED.
func (w *batch) rollback(bad int) {
	for i := len(w.pend) - 1; i >= 0; i-- {
		w.pend[i].undo.revert()
	}
	w.pend = nil
	if len(w.done) > 0 {
		inv := make([]Op, 0, len(w.done))
		for i := len(w.done) - 1; i >= 0; i-- {
			inv = append(inv, inverse(w.done[i].op))
		}
		if w.d.realized {
			if n, err := w.d.backend.Apply(inv); err != nil {
				// The dataplane could not be restored; say so on every
				// update rather than pretend.
				for i := range w.updates {
					if i != bad {
						w.fail(i, errorf(ErrInternal, "rollback failed after update %d (%d of %d undone): %v", bad, n, len(inv), err))
					}
				}
				return
			}
		}
		for i := len(w.done) - 1; i >= 0; i-- {
			w.done[i].undo.revert()
		}
		w.done = nil
	}
	for i := range w.updates {
		if i != bad {
			w.fail(i, errorf(ErrAborted, "not applied: update %d failed and the batch was rolled back", bad))
		}
	}
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
	for i := len(w.pend) - 1; i >= n; i-- {
		w.pend[i].undo.revert()
	}
	bad = w.pend[n].idx
	w.markDone(w.pend[:n])
	return bad, fmt.Errorf("apply %s: %w", ops[n].Kind, err)
}

// markDone records applied ops (for a rollback) and empties pend.
func (w *batch) markDone(applied []staged) {
	if w.keepDone {
		w.done = append(w.done, applied...)
	}
	w.pend = w.pend[:0]
}

// stage checks update i and applies it to the store.
func (w *batch) stage(i int) error {
	u := w.updates[i]
	var op writeOp
	switch u.GetType() {
	case p4v1.Update_INSERT:
		op = opInsert
	case p4v1.Update_MODIFY:
		op = opModify
	case p4v1.Update_DELETE:
		op = opDelete
	default:
		return errorf(ErrInvalid, "update type %v is not INSERT, MODIFY or DELETE", u.GetType())
	}
	ent := u.GetEntity()
	switch x := ent.GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		return w.stageTableEntry(i, x.TableEntry, op)
	case nil:
		return errorf(ErrInvalid, "update has no entity")
	default:
		return errorf(ErrUnsupported, "writing %s entities is not supported yet", entityName(ent))
	}
}

func (w *batch) stageTableEntry(i int, te *p4v1.TableEntry, op writeOp) error {
	cfg := w.d.cfg
	if te == nil {
		return errorf(ErrInvalid, "empty table entry")
	}
	if !w.sc.allows(te.GetTableId()) && cfg.Tables[te.GetTableId()] != nil {
		return errorf(ErrPermission, "role %q may not write table %s", w.sc.Role, cfg.Tables[te.GetTableId()].Name)
	}
	if w.scratch == nil {
		w.scratch = newEntry(&Table{})
		w.scratch.Match = w.scratch.alloc.match[:0]
	}
	e, err := cfg.parseTableEntryInto(te, op, w.scratch)
	if err != nil {
		return err
	}
	e.written = w.now
	t := e.Table
	if t.IsConst && !e.IsDefault {
		// P4Runtime §9.1.4: only MODIFY of direct resources is allowed.
		if op != opModify || e.Action != nil {
			return errorf(ErrPermission, "table %s is const: its entries cannot be %s", t.Name, pastTense(op, e.Action != nil))
		}
	}
	if op == opInsert {
		e.Placement = w.sc.placement(cfg, t)
	}
	if op != opInsert && !e.IsDefault && w.d.st.tables[t.ID].entries[e.skey] == nil {
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
	o, u, err := w.d.st.stage(e, op)
	if err != nil {
		return err
	}
	w.pend = append(w.pend, staged{idx: i, op: o, undo: u})
	return nil
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
