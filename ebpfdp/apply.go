package ebpfdp

import (
	"errors"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// apply performs ops in order, as translator.Backend.Apply describes.
// Consecutive ops of one kind on one exact or LPM table become one batch
// map operation per tier; consecutive ops on one ternary table share one
// mask list update per tier.
func (p *pipeline) apply(ops []translator.Op) (int, error) {
	done := 0
	for done < len(ops) {
		op := ops[done]
		ts := p.byID[op.Entry.Table.ID]
		if ts == nil {
			return done, translator.Errorf(translator.ErrInternal, "table %s is not in the datapath", op.Entry.Table.Name)
		}
		if op.Kind == translator.OpSetDefault {
			if err := p.setDefaultDirect(op); err != nil {
				return done, err
			}
			if err := p.setDefault(op); err != nil {
				return done, err
			}
			done++
			continue
		}
		end := done + 1
		for end < len(ops) && ops[end].Entry.Table == op.Entry.Table && ops[end].Kind != translator.OpSetDefault &&
			(ts.plan.kind == kindTSS || ops[end].Kind == op.Kind) {
			end++
		}
		if ts.plan.kind == kindKeyless {
			return done, translator.Errorf(translator.ErrInvalid, "table %s is keyless: only its default entry can be written", ts.plan.table.Name)
		}
		run := ops[done:end]
		var derr error
		if ts.plan.direct() {
			var ready int
			ready, derr = p.directBefore(run)
			run = run[:ready]
		}
		n, err := p.applyRun(run)
		if ts.plan.direct() {
			p.directAfter(ops[done:end], n)
		}
		p.idle.track(ops[done : done+n])
		done += n
		if err == nil {
			err = derr
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// tiersOf says which tiers hold an entry: its placement's, among those
// the pipeline has; entries the datapath created are the tc tier's.
func (p *pipeline) tiersOf(e *translator.Entry) (tc, xdp bool) {
	if e.Origin == translator.OriginDatapath {
		return true, false
	}
	switch e.Placement {
	case translator.PlaceSW:
		return true, false
	case translator.PlaceHW:
		return false, true
	}
	return true, p.xdp != nil
}

// applyRun applies a run of ops on one table to each tier that holds
// their entries: first the tc tier, then the XDP tier up to where tc
// stopped. If the XDP tier stops earlier, the tc tier's ops after that
// point are taken back, so an op either took effect in all its tiers or
// in none.
func (p *pipeline) applyRun(ops []translator.Op) (int, error) {
	var limErr error
	if p.xdp == nil {
		for i, op := range ops {
			if _, x := p.tiersOf(op.Entry); x {
				ops, limErr = ops[:i], translator.Errorf(translator.ErrPrecondition,
					"table %s: the entry is placed hw, but the pipeline has no XDP tier (device config xdp_object)", op.Entry.Table.Name)
				break
			}
		}
	}
	if len(ops) == 0 {
		return 0, limErr
	}
	id := ops[0].Entry.Table.ID
	if p.onlyTC(ops) {
		// The common case needs no index lists.
		ts := p.byID[id]
		n, err := p.applyTier(ts, ops)
		if err == nil {
			n, err = len(ops), limErr
		}
		ts.count(ops[:n])
		return n, err
	}
	var tcIdx, xIdx []int
	for i, op := range ops {
		tc, x := p.tiersOf(op.Entry)
		if tc {
			tcIdx = append(tcIdx, i)
		}
		if x {
			xIdx = append(xIdx, i)
		}
	}
	stop, err := len(ops), error(nil)
	if len(tcIdx) > 0 {
		tcOps := pick(ops, tcIdx)
		n, terr := p.applyTier(p.byID[id], tcOps)
		if terr != nil {
			stop, err = tcIdx[n], terr
		} else {
			n = len(tcOps)
		}
		p.byID[id].count(tcOps[:n])
	}
	// The XDP tier goes up to where tc stopped: nowhere when tc's first op
	// failed.
	if xIdx = xIdx[:countBelow(xIdx, stop)]; len(xIdx) > 0 {
		xOps := pick(ops, xIdx)
		n, xerr := p.applyTier(p.xdp.byID[id], xOps)
		if xerr == nil {
			n = len(xOps)
		}
		p.xdp.byID[id].count(xOps[:n])
		if xerr != nil && xIdx[n] < stop {
			p.takeBack(p.byID[id], ops, tcIdx, xIdx[n], stop)
			stop, err = xIdx[n], xerr
		}
	}
	if err == nil && limErr != nil {
		err = limErr
	}
	return stop, err
}

// onlyTC reports whether every op's entry lives in the tc tier alone.
func (p *pipeline) onlyTC(ops []translator.Op) bool {
	for _, op := range ops {
		if tc, x := p.tiersOf(op.Entry); !tc || x {
			return false
		}
	}
	return true
}

// pick returns the ops at the given indices (ops itself when that is
// all of them).
func pick(ops []translator.Op, idx []int) []translator.Op {
	if len(idx) == len(ops) {
		return ops
	}
	out := make([]translator.Op, len(idx))
	for i, j := range idx {
		out[i] = ops[j]
	}
	return out
}

// takeBack undoes, in ts's tier, the ops of tierIdx in [from, to), last
// first. Failures are logged: the tiers disagree until the entry is
// written again.
func (p *pipeline) takeBack(ts *tableState, ops []translator.Op, tierIdx []int, from, to int) {
	for j := len(tierIdx) - 1; j >= 0; j-- {
		i := tierIdx[j]
		if i < from || i >= to {
			continue
		}
		inv := []translator.Op{inverse(ops[i])}
		if _, err := p.applyTier(ts, inv); err != nil {
			p.log.Error("tiers disagree on an entry", "table", ts.plan.table.Name, "tier", ts.tier, "err", err)
			continue
		}
		ts.count(inv)
	}
}

// inverse is the op that undoes op.
func inverse(op translator.Op) translator.Op {
	switch op.Kind {
	case translator.OpInsert:
		return translator.Op{Kind: translator.OpDelete, Entry: op.Entry}
	case translator.OpDelete:
		return translator.Op{Kind: translator.OpInsert, Entry: op.Entry}
	case translator.OpModify:
		return translator.Op{Kind: translator.OpModify, Entry: op.Prev, Prev: op.Entry}
	}
	return translator.Op{Kind: translator.OpSetDefault, Entry: op.Prev, Prev: op.Entry}
}

// applyTier applies a run of ops on one table to one tier.
func (p *pipeline) applyTier(ts *tableState, ops []translator.Op) (int, error) {
	if ts.plan.kind == kindTSS {
		return p.applyTSS(ts, ops)
	}
	kind := ops[0].Kind
	for i := range ops {
		if ops[i].Kind != kind {
			// Only an inverse mixes kinds; apply one op at a time.
			n, err := p.applyDirect(ts, ops[:i])
			if err != nil {
				return n, err
			}
			m, err := p.applyTier(ts, ops[i:])
			return i + m, err
		}
	}
	return p.applyDirect(ts, ops)
}

// applyDirect applies a run of inserts, modifies or deletes to an exact or
// LPM table: one BatchUpdate or BatchDelete. Side records are written before the entries
// they describe and removed after them, so a record never outlives the
// restore it serves except as a harmless leftover.
func (p *pipeline) applyDirect(ts *tableState, ops []translator.Op) (int, error) {
	if len(ops) == 0 {
		return 0, nil
	}
	pl := ts.plan
	kind := ops[0].Kind
	if kind == translator.OpInsert && ts.poolMem != nil {
		return p.insertChecked(ts, ops)
	}
	now := monoNow()
	ks, vs := pl.keySize, pl.valueSize()
	keys := p.scratch.keys.take(len(ops) * ks)
	var vals []byte
	if kind != translator.OpDelete {
		vals = p.scratch.vals.take(len(ops) * vs)
	}
	// Entry ids are only needed for side records: to write one, or to
	// find one to remove, which a table without records never has.
	tableRecs := p.side.tableHas(pl.table.ID)
	var (
		putRefs []sideRef
		putRecs [][]byte
		putOps  []int // op index of each record put
		delRefs []sideRef
		delOps  []int
	)
	n := len(ops)
	var stopErr error
	for i, op := range ops {
		e := op.Entry
		if err := pl.encodeKey(keys[i*ks:(i+1)*ks], e.Match, p.ports); err != nil {
			n, stopErr = i, err
			break
		}
		owns := ts.ownsSide(e)
		if kind == translator.OpDelete {
			if owns && tableRecs {
				if ref := (sideRef{table: pl.table.ID, id: entryID(e.Match, e.Priority)}); p.side.has(ref) {
					delRefs, delOps = append(delRefs, ref), append(delOps, i)
				}
			}
			continue
		}
		if err := p.encodeValue(ts, e, vals[i*vs:(i+1)*vs], now); err != nil {
			n, stopErr = i, err
			break
		}
		if !owns {
			continue
		}
		if needsSide(e) {
			ref := sideRef{table: pl.table.ID, id: entryID(e.Match, e.Priority)}
			se := e.Saved()
			putRefs, putRecs, putOps = append(putRefs, ref), append(putRecs, encodeSaved(&se, 0)), append(putOps, i)
		} else if tableRecs {
			if ref := (sideRef{table: pl.table.ID, id: entryID(e.Match, e.Priority)}); p.side.has(ref) {
				delRefs, delOps = append(delRefs, ref), append(delOps, i)
			}
		}
	}
	if m, err := p.journalRows(ts, ops[:n], keys); err != nil {
		n, stopErr = m, err
	}
	if len(putRefs) > 0 {
		m, err := p.side.put(putRefs[:countBelow(putOps, n)], putRecs)
		if err != nil {
			n, stopErr = putOps[m], err
		}
	}
	var done int
	var err error
	switch kind {
	case translator.OpDelete:
		if n > 0 {
			done, err = ts.entries.BatchDelete(rows(keys[:n*ks], ks), nil)
		}
	default:
		// Batch updates take no BPF_NOEXIST/BPF_EXIST (the kernel allows
		// only BPF_F_LOCK per element): the store has already checked
		// that inserted keys are new and modified ones exist.
		if n > 0 {
			done, err = ts.entries.BatchUpdate(rows(keys[:n*ks], ks), rows(vals[:n*vs], vs), nil)
		}
	}
	if err != nil && done >= n {
		// The kernel refused the batch before processing any element and
		// left the count as given.
		done = 0
	}
	if err != nil {
		stopErr = mapError(err, "table %s: %s", pl.table.Name, kind)
		p.undoSide(ts, ops, putRefs, putOps, done)
	} else {
		done = n
	}
	if kind == translator.OpDelete {
		for _, op := range ops[:done] {
			if op.Entry.Origin == translator.OriginDatapath {
				ts.releaseSlot()
			}
		}
	}
	if k := countBelow(delOps, done); k > 0 {
		if err := p.side.del(delRefs[:k]); err != nil {
			p.log.Error("side records outlive their entries", "table", pl.table.Name, "err", err)
		}
	}
	return done, stopErr
}

// insertChecked inserts a run into an exact table whose datapath creates
// entries, one element at a time with BPF_NOEXIST (a batch cannot take
// it): a key the datapath created since the Device checked the store is
// ALREADY_EXISTS, not overwritten. An entry the datapath created, put back
// by a rollback, takes a pool slot again.
func (p *pipeline) insertChecked(ts *tableState, ops []translator.Op) (int, error) {
	pl := ts.plan
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	for i, op := range ops {
		e := op.Entry
		clear(k)
		clear(v)
		if err := pl.encodeKey(k, e.Match, p.ports); err != nil {
			return i, err
		}
		if err := p.encodeValue(ts, e, v, monoNow()); err != nil {
			return i, err
		}
		dp := e.Origin == translator.OriginDatapath
		if dp && !ts.takeSlot() {
			return i, translator.Errorf(translator.ErrFull, "table %s: the pool of datapath-created entries is full", pl.table.Name)
		}
		if !dp {
			if _, err := p.journalRows(ts, ops[i:i+1], k); err != nil {
				return i, err
			}
		}
		ref := sideRef{table: pl.table.ID, id: entryID(e.Match, e.Priority)}
		side := !dp && ts.ownsSide(e) && needsSide(e)
		if side {
			se := e.Saved()
			if _, err := p.side.put([]sideRef{ref}, [][]byte{encodeSaved(&se, 0)}); err != nil {
				return i, err
			}
		}
		if err := ts.entries.Update(k, v, ebpf.UpdateNoExist); err != nil {
			if dp {
				ts.releaseSlot()
			}
			if side {
				if derr := p.side.del([]sideRef{ref}); derr != nil {
					p.log.Error("remove side record", "table", pl.table.Name, "err", derr)
				}
			}
			if errors.Is(err, ebpf.ErrKeyExist) {
				return i, translator.Errorf(translator.ErrExists, "table %s: the datapath created an entry with this key", pl.table.Name)
			}
			return i, mapError(err, "table %s: insert", pl.table.Name)
		}
	}
	return len(ops), nil
}

// journalRows journals, when a batch is open, the rows a run of direct
// ops on ts's entries map is about to write: each op's key (keys holds
// them, the map's key size apart) with the value it holds before the op —
// the previous entry's for a modify, the deleted entry's for a delete,
// none for an insert — in as few records as the journal's segments allow.
// Ops on entries the datapath created are not journaled (their pool
// slots are not). It returns how many ops it journaled.
func (p *pipeline) journalRows(ts *tableState, ops []translator.Op, keys []byte) (int, error) {
	if !p.jr.active() || len(ops) == 0 {
		return len(ops), nil
	}
	defer p.jr.publish()
	idx, err := p.jr.mapIndex(ts.pinName(ts.plan.entriesMap()))
	if err != nil {
		return 0, err
	}
	ks := ts.plan.keySize
	now := monoNow()
	var prev []byte
	for i := 0; i < len(ops); {
		if ops[i].Entry.Origin == translator.OriginDatapath {
			i++
			continue
		}
		// A record holds ops alike: all with a previous value, or none.
		vs := 0
		if ops[i].Kind != translator.OpInsert {
			vs = ts.plan.valueSize()
		}
		end := i + 1
		for end < len(ops) && ops[end].Entry.Origin != translator.OriginDatapath && (ops[end].Kind == translator.OpInsert) == (vs == 0) {
			end++
		}
		// Previous values are encoded first: a record never holds a row
		// it could not complete.
		var encErr error
		if vs > 0 {
			prev = slices.Grow(prev[:0], (end-i)*vs)[:(end-i)*vs]
			clear(prev)
			for k := i; k < end; k++ {
				pe := ops[k].Prev
				if ops[k].Kind == translator.OpDelete {
					pe = ops[k].Entry
				}
				if pe == nil {
					encErr = translator.Errorf(translator.ErrInternal, "table %s: a %s without the entry it replaces", ts.plan.table.Name, ops[k].Kind)
				} else {
					encErr = p.encodeValue(ts, pe, prev[(k-i)*vs:(k-i+1)*vs], now)
				}
				if encErr != nil {
					end = k
					break
				}
			}
		}
		for base := i; i < end; {
			m, rk, rv, err := p.jr.rows(idx, ks, vs, end-i)
			if err != nil {
				return i, err
			}
			copy(rk, keys[i*ks:(i+m)*ks])
			copy(rv, prev[(i-base)*vs:(i-base+m)*vs])
			i += m
		}
		if encErr != nil {
			return i, encErr
		}
	}
	return len(ops), nil
}

// countBelow counts the leading elements of sorted that are below n.
func countBelow(sorted []int, n int) int {
	k := 0
	for k < len(sorted) && sorted[k] < n {
		k++
	}
	return k
}

// undoSide puts back the side records of ops from done on, after their map
// writes failed: a modify's previous record, or none.
func (p *pipeline) undoSide(ts *tableState, ops []translator.Op, refs []sideRef, opIdx []int, done int) {
	var del []sideRef
	for j, i := range opIdx {
		if i < done || j >= len(refs) {
			continue
		}
		op := ops[i]
		if op.Kind == translator.OpModify && op.Prev != nil && needsSide(op.Prev) {
			se := op.Prev.Saved()
			if _, err := p.side.put([]sideRef{refs[j]}, [][]byte{encodeSaved(&se, 0)}); err != nil {
				p.log.Error("restore side record", "table", ts.plan.table.Name, "err", err)
			}
			continue
		}
		del = append(del, refs[j])
	}
	if err := p.side.del(del); err != nil {
		p.log.Error("remove side records", "table", ts.plan.table.Name, "err", err)
	}
}

// setDefault writes a table's default entry: the datapath slot of every
// tier (defaults are not placed), and a side record unless it is the
// program's initial default.
func (p *pipeline) setDefault(op translator.Op) error {
	e := op.Entry
	prev := e.Table.InitialDefault
	if op.Prev != nil {
		prev = op.Prev.Action
	}
	if err := p.jr.dflt(e.Table.ID); err != nil {
		return err
	}
	var written []*tableState
	undo := func() {
		for _, ts := range written {
			if rerr := p.writeDefault(ts, prev); rerr != nil {
				p.log.Error("restore default action", "table", ts.plan.table.Name, "tier", ts.tier, "err", rerr)
			}
		}
	}
	for _, t := range p.tiers() {
		ts := t.byID[e.Table.ID]
		if err := p.writeDefault(ts, e.Action); err != nil {
			undo()
			return err
		}
		written = append(written, ts)
	}
	ref := sideRef{table: e.Table.ID}
	if e.Action == e.Table.InitialDefault && !needsSide(e) {
		return p.side.del([]sideRef{ref})
	}
	se := e.Saved()
	if _, err := p.side.put([]sideRef{ref}, [][]byte{encodeSaved(&se, 0)}); err != nil {
		undo()
		return err
	}
	return nil
}

// tssOp is a ternary op staged in p4tcd's view of the tuple space, with
// what it takes to write it and to take it back.
type tssOp struct {
	op      translator.Op
	te      *tssEntry
	changes []change
	prev    []byte // modify: the previous value
}

// applyTSS applies a run of ops to a ternary table. The ops are staged in
// p4tcd's view of the tuple space; new masks get slots and their top
// priorities, and the mask list is republished if masks came (keeping
// those that go until their entries are gone); then side records and the
// masked keys the run changes are written in a few batches; finally the top
// priorities settle and the list drops masks that went. If a batch fails,
// the run is taken back and applied op by op, which finds the op that
// fails.
func (p *pipeline) applyTSS(ts *tableState, ops []translator.Op) (int, error) {
	var staged []tssOp
	var stopErr error
	for _, op := range ops {
		st, err := p.stageTSS(ts, op)
		if err != nil {
			stopErr = err
			break
		}
		staged = append(staged, st)
	}
	if len(staged) == 0 {
		return 0, stopErr
	}
	defer p.settleMasks(ts)
	if err := p.prepareMasks(ts); err != nil {
		p.unstage(ts, staged)
		return 0, err
	}
	if err := p.writeRun(ts, staged); err == nil {
		return len(staged), stopErr
	}
	p.resync(ts, p.unstage(ts, staged))
	p.restoreSide(ts, staged)
	for i := range staged {
		st, err := p.stageTSS(ts, staged[i].op)
		if err == nil {
			if err = p.prepareMasks(ts); err == nil {
				if err = p.writeTSS(ts, &st); err != nil {
					p.resync(ts, ts.tss.unstage(&st))
				}
			} else {
				ts.tss.unstage(&st)
			}
		}
		if err != nil {
			return i, err
		}
	}
	return len(staged), stopErr
}

// unstage takes staged ops back, last first, and returns the keys whose
// map values must be rewritten from the state.
func (p *pipeline) unstage(ts *tableState, staged []tssOp) []string {
	var keys []string
	for i := len(staged) - 1; i >= 0; i-- {
		keys = append(keys, ts.tss.unstage(&staged[i])...)
	}
	return keys
}

// prepareMasks readies the datapath for the staged state: slots for new
// masks, top priorities raised where they grew, and a mask list that
// holds every mask of the state (and, room permitting, those leaving).
func (p *pipeline) prepareMasks(ts *tableState) error {
	s := ts.tss
	s.assignSlots()
	for _, m := range s.masks {
		if m.max > ts.top(m.slot) {
			ts.setTop(m.slot, m.max)
		}
	}
	if list := s.unionList(ts.masksCap); s.changed(list) {
		return p.publishMasks(ts, list)
	}
	return nil
}

// settleMasks makes the top priorities exact and drops masks that went
// from the list. A failed publish only leaves masks without entries in the
// walk; the next run tries again.
func (p *pipeline) settleMasks(ts *tableState) {
	s := ts.tss
	for _, m := range s.masks {
		if ts.top(m.slot) != m.max {
			ts.setTop(m.slot, m.max)
		}
	}
	if list := s.masklist(ts.masksCap); s.changed(list) {
		if err := p.publishMasks(ts, list); err != nil {
			p.log.Warn("mask list not updated", "table", ts.plan.table.Name, "err", err)
		}
	}
}

// stageTSS applies one op to p4tcd's view of the tuple space.
func (p *pipeline) stageTSS(ts *tableState, op translator.Op) (tssOp, error) {
	s, name := ts.tss, ts.plan.table.Name
	e := op.Entry
	id := entryID(e.Match, e.Priority)
	st := tssOp{op: op}
	switch op.Kind {
	case translator.OpInsert:
		if s.entries[id] != nil {
			return st, translator.Errorf(translator.ErrExists, "table %s: the entry is already in the datapath", name)
		}
		te, err := s.newEntry(e, p.ports)
		if err != nil {
			return st, err
		}
		if ts.tier == tierXDP {
			// An entry in both tiers has the tc tier's handle.
			if twin := p.byID[ts.plan.table.ID].tss.entries[te.id]; twin != nil {
				te.handle = twin.handle
			}
		}
		st.te, st.changes = te, s.insert(te)
		if len(s.masks) > ts.masksCap {
			s.remove(te)
			return st, translator.Errorf(translator.ErrFull, "table %s: the entry needs a mask beyond the %d the datapath holds", name, ts.masksCap)
		}
	case translator.OpDelete:
		te := s.entries[id]
		if te == nil {
			return st, translator.Errorf(translator.ErrNotFound, "table %s: the entry is not in the datapath", name)
		}
		st.te, st.changes = te, s.remove(te)
	case translator.OpModify:
		te := s.entries[id]
		if te == nil {
			return st, translator.Errorf(translator.ErrNotFound, "table %s: the entry is not in the datapath", name)
		}
		v, err := s.value(e, p.ports)
		if err != nil {
			return st, err
		}
		st.te, st.prev, st.changes = te, te.value, s.modify(te, v)
		te.value = v
	}
	return st, nil
}

// unstage takes a staged op back out of the tuple space and returns the
// keys whose map values must be rewritten from the state.
func (s *tss) unstage(st *tssOp) []string {
	var keys []string
	for _, c := range st.changes {
		keys = append(keys, c.key)
	}
	switch st.op.Kind {
	case translator.OpInsert:
		s.remove(st.te)
	case translator.OpDelete:
		s.insert(st.te)
		for _, sl := range st.te.slots {
			keys = append(keys, sl.key)
		}
	case translator.OpModify:
		st.te.value = st.prev
	}
	return keys
}

// sideOf is the side record an op leaves: the entry with its handle.
func sideOf(ts *tableState, st *tssOp, e *translator.Entry) (sideRef, []byte) {
	se := e.Saved()
	var cell uint32
	if ts.cells != nil && e.Origin != translator.OriginDatapath {
		cell = ts.cells.byID[st.te.id]
	}
	return sideRef{table: ts.plan.table.ID, id: st.te.id}, encodeSavedCell(&se, st.te.handle, cell)
}

// writeRun writes a staged run: side records of inserts and modifies, the
// final value (or absence) of every masked key the run touched, then the
// removal of deleted entries' side records.
func (p *pipeline) writeRun(ts *tableState, staged []tssOp) error {
	var refs []sideRef
	var recs [][]byte
	var gone []sideRef
	seen := map[string]bool{}
	var changes []change
	for i := range staged {
		st := &staged[i]
		switch {
		case !ts.ownsSide(st.op.Entry):
		case st.op.Kind == translator.OpDelete:
			gone = append(gone, sideRef{table: ts.plan.table.ID, id: st.te.id})
		default:
			ref, rec := sideOf(ts, st, st.op.Entry)
			refs, recs = append(refs, ref), append(recs, rec)
		}
		for _, c := range st.changes {
			if !seen[c.key] {
				seen[c.key] = true
				changes = append(changes, change{key: c.key, val: ts.tss.current(c.key)})
			}
		}
	}
	if len(refs) > 0 {
		if _, err := p.side.put(refs, recs); err != nil {
			return err
		}
	}
	if err := p.writeChanges(ts, changes); err != nil {
		return err
	}
	if err := p.side.del(gone); err != nil {
		p.log.Error("side records outlive their entries", "table", ts.plan.table.Name, "err", err)
	}
	return nil
}

// restoreSide puts back the side records of a run that was taken back.
func (p *pipeline) restoreSide(ts *tableState, staged []tssOp) {
	var del []sideRef
	for i := range staged {
		st := &staged[i]
		if !ts.ownsSide(st.op.Entry) {
			continue
		}
		switch st.op.Kind {
		case translator.OpInsert:
			del = append(del, sideRef{table: ts.plan.table.ID, id: st.te.id})
		case translator.OpModify:
			if st.op.Prev != nil {
				ref, rec := sideOf(ts, st, st.op.Prev)
				if _, err := p.side.put([]sideRef{ref}, [][]byte{rec}); err != nil {
					p.log.Error("restore side record", "table", ts.plan.table.Name, "err", err)
				}
			}
		}
	}
	if err := p.side.del(del); err != nil {
		p.log.Error("remove side records", "table", ts.plan.table.Name, "err", err)
	}
}

// writeTSS writes one staged op: its side record and its masked keys.
func (p *pipeline) writeTSS(ts *tableState, st *tssOp) error {
	ref := sideRef{table: ts.plan.table.ID, id: st.te.id}
	owns := ts.ownsSide(st.op.Entry)
	if st.op.Kind != translator.OpDelete && owns {
		_, rec := sideOf(ts, st, st.op.Entry)
		if _, err := p.side.put([]sideRef{ref}, [][]byte{rec}); err != nil {
			return err
		}
	}
	if err := p.writeChanges(ts, st.changes); err != nil {
		p.restoreSide(ts, []tssOp{*st})
		return err
	}
	if st.op.Kind == translator.OpDelete && owns {
		if err := p.side.del([]sideRef{ref}); err != nil {
			p.log.Error("side record outlives its entry", "table", ts.plan.table.Name, "err", err)
		}
	}
	return nil
}

// writeChanges writes masked keys to the TSS hash: puts in one batch,
// deletes in another.
func (p *pipeline) writeChanges(ts *tableState, changes []change) error {
	ks, vs := ts.plan.keySize, ts.plan.valueSize()
	var pk, pv, dk []byte
	now := monoNow()
	for _, c := range changes {
		if c.val == nil {
			dk = append(dk, c.key...)
			continue
		}
		// A rewritten key counts as hit now: its last hit is not kept
		// across rewrites (an idle notification may come one timeout
		// late, never early).
		ts.plan.stamp(c.val, now)
		pk, pv = append(pk, c.key...), append(pv, c.val...)
	}
	if len(pk) > 0 {
		if _, err := ts.entries.BatchUpdate(rows(pk, ks), rows(pv, vs), nil); err != nil {
			return mapError(err, "table %s: write ternary keys", ts.plan.table.Name)
		}
	}
	if len(dk) > 0 {
		n, err := ts.entries.BatchDelete(rows(dk, ks), nil)
		if errors.Is(err, ebpf.ErrKeyNotExist) && n < len(dk)/ks {
			// A key already gone stops the batch: delete the rest one by
			// one.
			err = nil
			for off := (n + 1) * ks; off < len(dk) && err == nil; off += ks {
				if err = ts.entries.Delete(dk[off : off+ks]); errors.Is(err, ebpf.ErrKeyNotExist) {
					err = nil
				}
			}
		}
		if err != nil {
			return mapError(err, "table %s: delete ternary keys", ts.plan.table.Name)
		}
	}
	return nil
}

// resync rewrites keys of the TSS hash from the state, after a failed
// write. Failures are logged: nothing better can be done.
func (p *pipeline) resync(ts *tableState, keys []string) {
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		var err error
		if v := ts.tss.current(k); v != nil {
			ts.plan.stamp(v, monoNow())
			err = ts.entries.Put([]byte(k), v)
		} else if err = ts.entries.Delete([]byte(k)); errors.Is(err, ebpf.ErrKeyNotExist) {
			err = nil
		}
		if err != nil {
			p.log.Error("ternary key left inconsistent", "table", ts.plan.table.Name, "err", err)
		}
	}
}
