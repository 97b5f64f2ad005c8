package tcbackend

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/p4tcd/p4tcd/translator"
)

// Apply performs ops in order (translator.Backend). Consecutive inserts,
// modifies or deletes travel together, up to P4TC_MSGBATCH_SIZE entries per
// message (`tc p4ctrl create|update|delete ... entry ... entry ...`); a
// default-action change is a message of its own. P4TC processes a batch in
// order and stops at the first failure, reporting how many entries
// succeeded; Apply returns how many ops took effect and that failure.
func (b *Backend) Apply(ops []translator.Op) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, ErrClosed
	}
	if b.p == nil {
		return 0, translator.Errorf(translator.ErrPrecondition, "p4tc datapath: no pipeline committed")
	}
	done := 0
	for done < len(ops) {
		k := b.batchLen(ops[done:])
		n, err := b.applyBatch(ops[done : done+k])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func verbOf(k translator.OpKind) entryVerb {
	switch k {
	case translator.OpModify:
		return verbUpdate
	case translator.OpDelete:
		return verbDelete
	}
	return verbCreate
}

// batchLen is how many ops from the start of ops share one message.
func (b *Backend) batchLen(ops []translator.Op) int {
	if ops[0].Kind == translator.OpSetDefault {
		return 1
	}
	n := 1
	for n < len(ops) && n < b.a.msgBatch && ops[n].Kind == ops[0].Kind {
		n++
	}
	return n
}

// pending is what one op of a batch reserved: its priority and timer
// profile, kept if the op takes effect and given back if not.
type pending struct {
	verb      entryVerb
	st        *tableState
	id        string
	spec      *entrySpec
	newAging  bool   // spec.agingMs was acquired
	prevAging uint64 // aging the entry had before (update, delete)
}

func (pd *pending) commit() {
	st := pd.st
	switch pd.verb {
	case verbCreate:
		st.bind(pd.id, pd.spec.prio)
	case verbDelete:
		st.unbind(pd.id)
	}
	if pd.verb != verbCreate && pd.prevAging != 0 {
		st.releaseProfile(pd.prevAging)
		delete(st.aging, pd.id)
	}
	if pd.newAging {
		st.aging[pd.id] = pd.spec.agingMs
	}
}

func (pd *pending) rollback() {
	if pd.verb == verbCreate {
		pd.st.releasePrio(pd.spec.prio)
	}
	if pd.newAging {
		pd.st.releaseProfile(pd.spec.agingMs)
	}
}

// applyBatch sends one message for ops (all of one kind) and returns how
// many took effect.
func (b *Backend) applyBatch(ops []translator.Op) (int, error) {
	if ops[0].Kind == translator.OpSetDefault {
		if err := b.setDefault(ops[0].Entry); err != nil {
			return 0, err
		}
		return 1, nil
	}
	verb := verbOf(ops[0].Kind)
	var (
		pds     []*pending
		pre     []*message
		prepErr error
	)
	for i, op := range ops {
		pd, msg, err := b.prepare(verb, op.Entry)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			ops, prepErr = ops[:i], err
			break
		}
		pds = append(pds, pd)
		if msg != nil {
			pre = append(pre, msg)
		}
	}
	rollback := func(from int) {
		for i := len(pds) - 1; i >= from; i-- {
			pds[i].rollback()
		}
	}
	for _, m := range pre {
		if _, err := b.c.exchange(m); err != nil {
			rollback(0)
			return 0, mapKernelError(fmt.Sprintf("set timer profile of table %s", pds[0].spec.tp.describe()), err)
		}
	}
	specs := make([]*entrySpec, len(pds))
	for i, pd := range pds {
		specs[i] = pd.spec
	}
	_, err := b.c.exchange(b.enc.entriesMsg(verb, b.p.pname, specs))
	if err == nil {
		for _, pd := range pds {
			pd.commit()
		}
		return len(pds), prepErr
	}
	n := b.resolve(verb, specs, err)
	for _, pd := range pds[:n] {
		pd.commit()
	}
	rollback(n)
	return n, mapKernelError(describeOp(verb, specs[n]), err)
}

func describeOp(verb entryVerb, s *entrySpec) string {
	v := [...]string{"insert", "modify", "delete", "read"}[verb]
	return fmt.Sprintf("%s entry of table %s", v, s.tp.describe())
}

// prepare turns one entry into its spec, reserving what an insert needs.
// msg is a timer profile update to send before the batch, or nil.
func (b *Backend) prepare(verb entryVerb, e *translator.Entry) (*pending, *message, error) {
	tp := b.p.tables[e.Table.ID]
	if tp == nil {
		return nil, nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: table %s is not in the committed pipeline", e.Table.Name)
	}
	st := b.state[tp.tt.name]
	key, mask, err := tp.keyBlobs(e, b.ports)
	if err != nil {
		return nil, nil, err
	}
	pd := &pending{verb: verb, st: st, id: specID(tp, e, key, mask), spec: &entrySpec{tp: tp, key: key, mask: mask}}
	s := pd.spec
	if verb == verbCreate {
		if s.prio, err = st.reservePrio(tp, e); err != nil {
			return nil, nil, err
		}
	} else if s.prio, err = st.lookupPrio(tp, pd.id); err != nil {
		return nil, nil, err
	}
	if verb == verbDelete {
		pd.prevAging = st.aging[pd.id]
		return pd, nil, nil
	}
	if verb == verbUpdate {
		pd.prevAging = st.aging[pd.id]
	}
	// The entry's own placement: its writer's role or its table's, set by
	// the Device (a MODIFY keeps it).
	s.action, err = tp.actionCall(e.Action, b.ports, placementFlags(b.a, e.Placement))
	if err == nil && e.Const && tp.tt.hasPermissions {
		// A const entry keeps the table's read and execute rights but
		// not update or delete; entries never hold create rights.
		s.permissions = tp.tt.permissions &^ (permCtrlCreate | permCtrlUpdate | permCtrlDelete | permDataCreate)
		s.hasPermissions = true
	}
	if err == nil {
		s.agingMs, err = agingMs(b.a, e.IdleTimeoutNs)
	}
	var msg *message
	if err == nil && s.agingMs != 0 {
		id, changed, perr := st.acquireProfile(tp, s.agingMs)
		err = perr
		pd.newAging = perr == nil
		if changed {
			msg = b.enc.timerProfileMsg(b.p.pname, tp, id, s.agingMs)
		}
	}
	if err != nil {
		pd.rollback()
		return nil, nil, err
	}
	return pd, msg, nil
}

// resolve finds how many entries of a failed batch took effect. P4TC says
// it in the extended ack ("S <ok>/<batched>"); when the text is missing
// (the kernel truncates long messages), each entry is read back: an insert
// or modify took effect when the entry holds the action sent, a delete when
// the entry is gone. The first entry that did not is where the batch
// stopped.
func (b *Backend) resolve(verb entryVerb, specs []*entrySpec, err error) int {
	var ke *KernelError
	if errors.As(err, &ke) && ke.Done >= 0 && ke.Done < len(specs) && (ke.Batched < 0 || ke.Batched == len(specs)) {
		return ke.Done
	}
	if len(specs) == 1 || ke == nil {
		return 0
	}
	for i, s := range specs {
		got, gerr := b.get(s)
		var took bool
		switch verb {
		case verbDelete:
			took = errors.Is(gerr, syscall.ENOENT)
		default:
			took = gerr == nil && sameCall(got.Action, s.action)
		}
		if !took {
			return i
		}
	}
	return len(specs) - 1
}

// get reads one entry back: `tc p4ctrl get <p>/table/<cb>/<t> <key>`.
func (b *Backend) get(s *entrySpec) (*Entry, error) {
	replies, err := b.c.exchange(b.enc.entriesMsg(verbGet, b.p.pname, []*entrySpec{s}))
	if err != nil {
		return nil, err
	}
	for _, r := range replies {
		es, err := decodeEntries(b.a, r)
		if err != nil {
			return nil, err
		}
		if len(es) > 0 {
			return &es[0], nil
		}
	}
	return nil, fmt.Errorf("read entry of table %s: %w: no entry in the reply", s.tp.describe(), ErrProtocol)
}

// setDefault changes a table's default miss action at runtime.
func (b *Backend) setDefault(e *translator.Entry) error {
	tp := b.p.tables[e.Table.ID]
	if tp == nil {
		return translator.Errorf(translator.ErrInvalid, "p4tc datapath: table %s is not in the committed pipeline", e.Table.Name)
	}
	call, err := tp.actionCall(e.Action, b.ports, 0)
	if err != nil {
		return err
	}
	if _, err := b.c.exchange(b.enc.defaultMissMsg(b.p.pname, tp, call)); err != nil {
		return mapKernelError(fmt.Sprintf("set default action of table %s", tp.describe()), err)
	}
	return nil
}

// Get reads one entry from the kernel (`tc p4ctrl get <p>/table/<cb>/<t>
// <key> [prio <n>]`) and returns it with its P4Runtime form.
func (b *Backend) Get(e *translator.Entry) (*Entry, *translator.SavedEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return nil, nil, translator.Errorf(translator.ErrPrecondition, "p4tc datapath: no pipeline committed")
	}
	pd, _, err := b.prepare(verbDelete, e)
	if err != nil {
		return nil, nil, err
	}
	got, err := b.get(pd.spec)
	if err != nil {
		return nil, nil, mapKernelError(describeOp(verbGet, pd.spec), err)
	}
	se, _, err := b.p.saved(got, b.ports)
	return got, se, err
}

// Dump reads every entry of a table (`tc p4ctrl get <p>/table/<cb>/<t>`),
// the kernel sending up to 16 per message part. Entries the control plane
// may not read (no ctrl-R permission) are not listed.
func (b *Backend) Dump(tableID uint32) ([]Entry, []*translator.SavedEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return nil, nil, translator.Errorf(translator.ErrPrecondition, "p4tc datapath: no pipeline committed")
	}
	tp := b.p.tables[tableID]
	if tp == nil {
		return nil, nil, translator.Errorf(translator.ErrNotFound, "p4tc datapath: no table %#x", tableID)
	}
	replies, err := b.c.exchange(b.enc.dumpMsg(b.p.pname, tp))
	if err != nil {
		return nil, nil, mapKernelError("dump table "+tp.describe(), err)
	}
	var (
		out   []Entry
		saved []*translator.SavedEntry
	)
	for _, r := range replies {
		es, err := decodeEntries(b.a, r)
		if err != nil {
			return out, saved, fmt.Errorf("dump table %s: %w", tp.describe(), err)
		}
		for i := range es {
			se, _, err := b.p.saved(&es[i], b.ports)
			if err != nil {
				return out, saved, fmt.Errorf("dump table %s: %w", tp.describe(), err)
			}
			out = append(out, es[i])
			saved = append(saved, se)
		}
	}
	return out, saved, nil
}

// Flush deletes every entry of a table (`tc p4ctrl delete
// <p>/table/<cb>/<t>`).
func (b *Backend) Flush(tableID uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return translator.Errorf(translator.ErrPrecondition, "p4tc datapath: no pipeline committed")
	}
	tp := b.p.tables[tableID]
	if tp == nil {
		return translator.Errorf(translator.ErrNotFound, "p4tc datapath: no table %#x", tableID)
	}
	if _, err := b.c.exchange(b.enc.flushMsg(b.p.pname, tp)); err != nil {
		return mapKernelError("flush table "+tp.describe(), err)
	}
	b.state[tp.tt.name] = newTableState(b.a, tp)
	return nil
}
