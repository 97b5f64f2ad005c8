package translator

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Scope is who issues a Write or Read: the P4Runtime role and what its role
// config allows.
type Scope struct {
	// Role is the role name ("" is the default role, full access).
	Role string
	// Writable holds the P4 object ids the role may write and read; nil
	// allows all.
	Writable map[uint32]bool
	// Placement places the role's new entries (its role config's
	// placement); nil leaves each table's placement from the device
	// config.
	Placement *Placement
}

// placement is where an entry the scope inserts into t goes.
func (s *Scope) placement(c *Config, t *Table) Placement {
	if s != nil && s.Placement != nil {
		return *s.Placement
	}
	if c.Program == nil {
		return PlaceBoth // what Settings gives without a program
	}
	// Not Settings: it allocates a default timer profile list for a
	// table without settings, once per entry inserted.
	return c.Program.Tables[t.ID].Placement
}

func (s *Scope) allows(id uint32) bool {
	return s == nil || s.Writable == nil || s.Writable[id]
}

// flushSize bounds how many ops the Device hands a backend at once.
const flushSize = 4096

// Device is one P4Runtime device: its pipeline config, the shadow store of
// its entries and the backend that realises them. It is safe for concurrent
// use: Writes and pipeline changes are serialised, Reads run in parallel and
// each sees a Write either whole or not at all (P4Runtime §12.4
// "Parallelism of Read and Write Requests").
type Device struct {
	backend Backend
	// externs is backend as an ExternBackend, or nil; caps what it
	// realises.
	externs ExternBackend
	caps    ExternSet
	// journal is backend as a BatchJournal, or nil.
	journal BatchJournal
	// readMu serialises the backend's live reads (ReadCounters,
	// ReadRegisters), which run under mu's read lock.
	readMu sync.Mutex

	// cfgSnap is cfg, published for the pre-parse of Writes, which runs
	// before the Write takes mu (preparsed). It is stored under mu along
	// with cfg (setConfig), and read without it. A Device whose cfg is
	// set otherwise (restore's throwaway) has none and does not
	// pre-parse.
	cfgSnap atomic.Pointer[Config]
	// prePool holds preparsed buffers between Writes.
	prePool sync.Pool
	// preparseMin is the fewest updates a Write needs to be pre-parsed:
	// 0 is defaultPreparseMin, and a negative value turns pre-parsing
	// off. Tests set it before any Write.
	preparseMin int
	// afterPreparse, when not nil, runs between a Write's pre-parse
	// (nil when there is none) and its taking mu: tests change the
	// config there. Set before any Write.
	afterPreparse func(*preparsed)

	// mu guards every field below. Writers hold it for a whole batch.
	mu  sync.RWMutex
	cfg *Config // the config Reads and Writes refer to; nil before the first
	// realized is false between VERIFY_AND_SAVE and COMMIT: the backend
	// still runs the previous config and Writes touch only the store.
	realized bool
	st       *store
	// spare holds the staging buffers of the last Write for the next
	// (a 1,000-entry Write stages about 100 KB), emptied of pointers.
	spare struct {
		pend, done []staged
		ops        []Op
	}
}

// setConfig makes c the config Reads and Writes refer to. The caller
// holds mu.
func (d *Device) setConfig(c *Config) {
	d.cfg = c
	d.cfgSnap.Store(c)
}

// NewDevice returns a Device with no pipeline that realises everything with b.
// If b is an ExternBackend, the externs it reports are available; the
// others answer UNIMPLEMENTED.
func NewDevice(b Backend) *Device {
	d := &Device{backend: b}
	if eb, ok := b.(ExternBackend); ok {
		d.externs, d.caps = eb, eb.Externs()
	}
	d.journal, _ = b.(BatchJournal)
	return d
}

// need answers UNIMPLEMENTED when the backend does not realise extern kind
// k; what names the object in the message.
func (d *Device) need(k ExternSet, what string) error {
	if d.caps&k == k {
		return nil
	}
	return errorf(ErrUnsupported, "%s: this datapath does not realise %v", what, k)
}

// applySteps hands mixed table and extern ops to the backend in order, each
// run of one kind in one call, and returns how many took effect.
func (d *Device) applySteps(steps []Step) (int, error) {
	done := 0
	for i := 0; i < len(steps); {
		j := i + 1
		ext := steps[i].Extern != nil
		for j < len(steps) && (steps[j].Extern != nil) == ext {
			j++
		}
		var n int
		var err error
		if ext {
			ops := make([]ExternOp, j-i)
			for k := i; k < j; k++ {
				ops[k-i] = *steps[k].Extern
			}
			if d.externs == nil {
				return done, errorf(ErrInternal, "extern ops for a datapath without externs")
			}
			n, err = d.externs.ApplyExterns(ops)
		} else {
			ops := make([]Op, j-i)
			for k := i; k < j; k++ {
				ops[k-i] = *steps[k].Op
			}
			n, err = d.backend.Apply(ops)
		}
		if err != nil {
			return done + max(n, 0), err
		}
		done += j - i
		i = j
	}
	return done, nil
}

// Backend returns the device's backend.
func (d *Device) Backend() Backend { return d.backend }

// Config returns the config Reads and Writes refer to, or nil.
func (d *Device) Config() *Config {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.cfg
}

// TableCount is the number of controller entries (default entries aside) a
// table holds in the shadow store.
type TableCount struct {
	// Table is the P4Info table name.
	Table string
	// Entries is how many entries the table holds.
	Entries int
}

// TableCounts returns the entry count of every table of the pipeline, in
// P4Info order, or nil before the first pipeline. It takes the read lock
// only while it counts (for metrics scrapes).
func (d *Device) TableCounts() []TableCount {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.cfg == nil {
		return nil
	}
	out := make([]TableCount, len(d.cfg.TableOrder))
	for i, t := range d.cfg.TableOrder {
		out[i] = TableCount{Table: t.Name, Entries: len(d.st.tables[t.ID].entries)}
	}
	return out
}

// SetPipeline carries out SetForwardingPipelineConfig (P4Runtime §15).
func (d *Device) SetPipeline(action p4v1.SetForwardingPipelineConfigRequest_Action, raw *p4v1.ForwardingPipelineConfig) error {
	if action == p4v1.SetForwardingPipelineConfigRequest_COMMIT {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.commitSavedLocked(raw)
	}
	if action == p4v1.SetForwardingPipelineConfigRequest_UNSPECIFIED || action > p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT {
		return errorf(ErrInvalid, "action %v is not a pipeline config action", action)
	}
	if raw == nil {
		return errorf(ErrInvalid, "%v needs a config", action)
	}
	c, err := CompileConfig(raw)
	if err != nil {
		return fmt.Errorf("compile pipeline: %w", err)
	}
	initial, err := c.initialEntries()
	if err != nil {
		return errorf(ErrInvalid, "device config: %v", err)
	}
	fresh := newStore(c.Pipeline)
	var ops []Op
	for _, e := range initial {
		if e.Indirect != nil {
			return errorf(ErrInvalid, "device config: initial entry of table %s: entries of indirect tables need members or groups, which a device config cannot give", e.Table.Name)
		}
		if dr := e.Direct; dr != nil && ((dr.WriteCounter && d.caps&ExternDirectCounters == 0) || (dr.Meter != nil && d.caps&ExternDirectMeters == 0)) {
			return errorf(ErrInvalid, "device config: initial entry of table %s sets direct resources this datapath does not realise", e.Table.Name)
		}
		op, _, err := fresh.stage(e, opInsert)
		if err != nil {
			return errorf(ErrInvalid, "device config: initial entry of table %s: %v", e.Table.Name, err)
		}
		ops = append(ops, op)
	}
	if err := d.backend.Verify(c); err != nil {
		return fmt.Errorf("verify pipeline: %w", err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	switch action {
	case p4v1.SetForwardingPipelineConfigRequest_VERIFY:
		return nil
	case p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE:
		// Forwarding keeps the old config; Reads and Writes refer to the
		// new one and COMMIT replays them.
		d.setConfig(c)
		d.st, d.realized = fresh, false
		return nil
	case p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT:
		if d.cfg != nil && d.realized {
			return d.reconcileLocked(c)
		}
	}
	// VERIFY_AND_COMMIT (and a reconcile with nothing to keep).
	if err := d.backend.Commit(c); err != nil {
		return fmt.Errorf("commit pipeline: %w", err)
	}
	d.setConfig(c)
	d.st, d.realized = fresh, true
	if n, err := d.backend.Apply(ops); err != nil {
		return fmt.Errorf("apply initial entry %d: %w", n, err)
	}
	return nil
}

// commitSavedLocked realises the config saved by VERIFY_AND_SAVE and replays
// the entries written since.
func (d *Device) commitSavedLocked(raw *p4v1.ForwardingPipelineConfig) error {
	if raw != nil {
		return errorf(ErrInvalid, "COMMIT takes no config; it realises the saved one")
	}
	if d.cfg == nil || d.realized {
		return errorf(ErrNotFound, "COMMIT: no saved config (VERIFY_AND_SAVE first)")
	}
	if err := d.backend.Commit(d.cfg); err != nil {
		return fmt.Errorf("commit pipeline: %w", err)
	}
	d.realized = true
	steps := d.st.replaySteps()
	if n, err := d.applySteps(steps); err != nil {
		return fmt.Errorf("replay saved entries and externs (%d of %d applied): %w", n, len(steps), err)
	}
	return nil
}

// reconcileLocked replaces the pipeline keeping every entry: each stored
// entry is translated again under the new P4Info; if any does not fit, the
// state cannot be preserved and nothing changes (P4Runtime §15:
// RECONCILE_AND_COMMIT returns INVALID_ARGUMENT).
func (d *Device) reconcileLocked(c *Config) error {
	if what := d.st.externState(); what != "" {
		return errorf(ErrInvalid, "reconcile: the device holds %s, which p4tcd cannot carry to a new pipeline yet", what)
	}
	next := newStore(c.Pipeline)
	for id, dc := range d.st.digests {
		if _, ok := c.digestNames[id]; !ok {
			return errorf(ErrInvalid, "reconcile: digest %#x is enabled but not in the new pipeline", id)
		}
		next.digests[id] = dc
	}
	var keep []*Entry
	var enc []byte
	for _, t := range d.cfg.TableOrder {
		ts := d.st.tables[t.ID]
		for _, old := range ts.entries {
			e, err := c.retranslate(old)
			if err != nil {
				return errorf(ErrInvalid, "reconcile: entry of table %s cannot be kept: %v", t.Name, err)
			}
			enc = e.compact(enc)
			if _, _, err := next.stage(e, opInsert); err != nil {
				return errorf(ErrInvalid, "reconcile: entry of table %s cannot be kept: %v", t.Name, err)
			}
			keep = append(keep, e)
		}
		if ts.deflt.Action != t.InitialDefault {
			nt := c.Tables[t.ID]
			if nt == nil {
				return errorf(ErrInvalid, "reconcile: table %s with a default action set is not in the new pipeline", t.Name)
			}
			e, err := c.retranslate(ts.deflt)
			if err != nil {
				return errorf(ErrInvalid, "reconcile: default entry of table %s cannot be kept: %v", t.Name, err)
			}
			next.tables[nt.ID].deflt = e
			keep = append(keep, e)
		}
	}
	if err := d.backend.Reconcile(c, keep); err != nil {
		return fmt.Errorf("reconcile pipeline: %w", err)
	}
	d.setConfig(c)
	d.st = next
	return nil
}

// retranslate re-parses a stored entry under another config.
func (c *Config) retranslate(old *Entry) (*Entry, error) {
	te := cloneEntryProto(old.readProto())
	te.IsConst = false
	op := opInsert
	if old.IsDefault {
		op = opModify
	}
	e, err := c.parseTableEntry(te, op)
	if err != nil {
		return nil, err
	}
	e.Const, e.materialise().IsConst = old.Const, old.Const
	e.Origin, e.Placement = old.Origin, old.Placement
	if od := old.Direct; od != nil {
		if od.Meter != nil && e.Table.DirectMeter == nil {
			return nil, errorf(ErrInvalid, "table %s: the entry's direct meter config has no direct meter to go to", e.Table.Name)
		}
		d := *od
		if e.Table.DirectCounter == nil {
			d.Counter = CounterData{}
		}
		if d != (DirectResources{}) {
			e.Direct = &d
		}
	}
	return e, nil
}

// stage checks e against the store and applies it there, returning the op
// for the backend and how to undo it. noop is true when the backend has
// nothing to do.
func (s *store) stage(e *Entry, op writeOp) (Op, undo, error) {
	ts := s.tables[e.Table.ID]
	if e.IsDefault {
		return ts.stage(e, op, nil)
	}
	return ts.stage(e, op, ts.entries[e.skey])
}

// stage is store.stage for an entry of the table ts holds, given prev,
// the entry ts holds under e's key (nil when none; ignored for a
// default): a caller that has looked it up already saves a second
// string-keyed map lookup per entry.
func (ts *tableState) stage(e *Entry, op writeOp, prev *Entry) (Op, undo, error) {
	t := e.Table
	if e.IsDefault {
		prev := ts.deflt
		carryDirect(e, prev)
		ts.deflt = e
		return Op{Kind: OpSetDefault, Entry: e, Prev: prev}, undo{ts: ts, prev: prev, dflt: true}, nil
	}
	switch op {
	case opInsert:
		if prev != nil {
			return Op{}, undo{}, errorf(ErrExists, "table %s: entry %s already exists", t.Name, describeKey(e))
		}
		if t.Size > 0 && int64(len(ts.entries)) >= t.Size {
			return Op{}, undo{}, errorf(ErrFull, "table %s is full (%d entries)", t.Name, t.Size)
		}
		ts.entries[e.skey] = e
		if ts.prof != nil {
			ts.prof.link(e)
		}
		return Op{Kind: OpInsert, Entry: e}, undo{ts: ts, key: e.skey}, nil
	case opModify:
		if prev == nil {
			return Op{}, undo{}, errorf(ErrNotFound, "table %s: no entry %s to modify", t.Name, describeKey(e))
		}
		if prev.Const {
			if e.Action != nil || e.Indirect != nil {
				return Op{}, undo{}, errorf(ErrPermission, "table %s: entry %s is const; its action cannot change", t.Name, describeKey(e))
			}
		}
		if e.Action == nil && e.Indirect == nil {
			// MODIFY without action keeps the action (§9.1.2). An
			// entry kept as wire has none in it: it gets a proto.
			e.Action, e.Indirect = prev.Action, prev.Indirect
			e.materialise().Action = prev.readProto().GetAction()
		}
		carryDirect(e, prev)
		// The entry stays where it lives (MODIFY acts on its tiers).
		e.Const, e.Origin, e.Placement = prev.Const, prev.Origin, prev.Placement
		if e.Const || e.proto != nil {
			// A wire Read form says is_const false, as the write did.
			e.materialise().IsConst = e.Const
		}
		ts.entries[e.skey] = e
		if ts.prof != nil {
			ts.prof.unlink(prev)
			ts.prof.link(e)
		}
		return Op{Kind: OpModify, Entry: e, Prev: prev}, undo{ts: ts, key: e.skey, prev: prev}, nil
	default:
		if prev == nil {
			return Op{}, undo{}, errorf(ErrNotFound, "table %s: no entry %s to delete", t.Name, describeKey(e))
		}
		if prev.Const {
			return Op{}, undo{}, errorf(ErrPermission, "table %s: entry %s is const and cannot be deleted", t.Name, describeKey(e))
		}
		delete(ts.entries, e.skey)
		if ts.prof != nil {
			ts.prof.unlink(prev)
		}
		return Op{Kind: OpDelete, Entry: prev}, undo{ts: ts, key: e.skey, prev: prev}, nil
	}
}

// replaySteps lists the whole store as the steps that rebuild it in a fresh
// backend pipeline: externs first (members before the groups and entries
// that use them), then entry inserts, then defaults that differ from the
// program's.
func (s *store) replaySteps() []Step {
	var steps []Step
	ext := func(x ExternOp) { steps = append(steps, Step{Extern: &x}) }
	for _, pid := range sortedKeys(s.profiles) {
		ps := s.profiles[pid]
		for _, id := range sortedKeys(ps.members) {
			ext(ExternOp{Kind: ExtInsertMember, Member: ps.members[id]})
		}
		for _, id := range sortedKeys(ps.groups) {
			ext(ExternOp{Kind: ExtInsertGroup, Group: ps.groups[id]})
		}
	}
	for _, id := range sortedKeys(s.multicast) {
		ext(ExternOp{Kind: ExtInsertMulticast, Multicast: s.multicast[id]})
	}
	for _, id := range sortedKeys(s.clones) {
		ext(ExternOp{Kind: ExtInsertClone, Clone: s.clones[id]})
	}
	for _, id := range sortedKeys(s.valueSets) {
		if vs := s.valueSets[id]; len(vs.members) > 0 {
			ext(ExternOp{Kind: ExtWriteValueSet, ValueSet: &ValueSetWrite{ValueSet: vs.vs, Members: vs.members}})
		}
	}
	for _, id := range sortedKeys(s.counters) {
		cs := s.counters[id]
		replayCells(cs.cellsState, func(i int64, v CounterData) {
			ext(ExternOp{Kind: ExtWriteCounter, Counter: &CounterWrite{Counter: cs.c, Index: i, Data: v}})
		})
	}
	for _, id := range sortedKeys(s.meters) {
		ms := s.meters[id]
		replayCells(ms.cellsState, func(i int64, v *MeterConfig) {
			ext(ExternOp{Kind: ExtWriteMeter, Meter: &MeterWrite{Meter: ms.m, Index: i, Config: v}})
		})
	}
	for _, id := range sortedKeys(s.registers) {
		rs := s.registers[id]
		replayCells(rs.cellsState, func(i int64, v []byte) {
			if v == nil {
				v = zeroCell
			}
			ext(ExternOp{Kind: ExtWriteRegister, Register: &RegisterWrite{Register: rs.r, Index: i, Value: v}})
		})
	}
	for _, ts := range s.tables {
		for _, e := range ts.entries {
			steps = append(steps, Step{Op: &Op{Kind: OpInsert, Entry: e}})
		}
	}
	for _, ts := range s.tables {
		if ts.deflt.Action != ts.table.InitialDefault || ts.deflt.Direct != nil {
			steps = append(steps, Step{Op: &Op{Kind: OpSetDefault, Entry: ts.deflt, Prev: initialDefaultEntry(ts.table)}})
		}
	}
	return steps
}

// replayCells lists the writes that rebuild an array extern from its
// default (zero) state: a wildcard write of a non-zero fill, then each cell
// that differs.
func replayCells[V any](c cellsState[V], each func(idx int64, v V)) {
	if !isZeroValue(c.fill) {
		each(-1, c.fill)
	}
	for _, i := range sortedCells(c.cells) {
		each(i, c.cells[i])
	}
}

// isZeroValue reports whether v is its type's zero value (nil slices and
// pointers, zero counts).
func isZeroValue[V any](v V) bool {
	switch x := any(v).(type) {
	case []byte:
		return x == nil
	case *MeterConfig:
		return x == nil
	case CounterData:
		return x == CounterData{}
	}
	return false
}

func sortedCells[V any](m map[int64]V) []int64 {
	ks := make([]int64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// externState names the P4Info-bound extern state the store holds, or ""
// when there is none (digest configs aside).
func (s *store) externState() string {
	for _, ps := range s.profiles {
		if len(ps.members) > 0 || len(ps.groups) > 0 {
			return "action profile members or groups (action profile " + ps.p.Name + ")"
		}
	}
	if len(s.multicast) > 0 || len(s.clones) > 0 {
		return "multicast groups or clone sessions"
	}
	for _, vs := range s.valueSets {
		if len(vs.members) > 0 {
			return "members of value set " + vs.vs.Name
		}
	}
	for _, cs := range s.counters {
		if cs.fill != (CounterData{}) || len(cs.cells) > 0 {
			return "written cells of counter " + cs.c.Name
		}
	}
	for _, ms := range s.meters {
		if ms.fill != nil || len(ms.cells) > 0 {
			return "configured cells of meter " + ms.m.Name
		}
	}
	for _, rs := range s.registers {
		if rs.fill != nil || len(rs.cells) > 0 {
			return "written cells of register " + rs.r.Name
		}
	}
	return ""
}

// describeKey renders an entry's key for messages: the match fields and
// priority, hex values only.
func describeKey(e *Entry) string {
	s := "{"
	for i, f := range e.Table.Fields {
		fm := &e.Match[i]
		if !fm.Set {
			continue
		}
		if len(s) > 1 {
			s += " "
		}
		s += f.Name + "="
		if f.IsString {
			s += fmt.Sprintf("%q", fm.Value)
			continue
		}
		s += hexOf(fm.Value)
		switch f.Kind {
		case MatchLPM:
			s += fmt.Sprintf("/%d", fm.PrefixLen)
		case MatchTernary:
			s += "&&&" + hexOf(fm.Mask)
		case MatchRange:
			s += ".." + hexOf(fm.High)
		}
	}
	if e.Priority != 0 {
		s += fmt.Sprintf(" priority=%d", e.Priority)
	}
	return s + "}"
}

// cloneEntryProto copies the top level of a TableEntry; sub-messages are
// shared (they are never mutated once stored).
func cloneEntryProto(te *p4v1.TableEntry) *p4v1.TableEntry {
	return &p4v1.TableEntry{
		TableId: te.TableId, Match: te.Match, Action: te.Action, Priority: te.Priority,
		ControllerMetadata: te.ControllerMetadata, Metadata: te.Metadata,
		IsDefaultAction: te.IsDefaultAction, IdleTimeoutNs: te.IdleTimeoutNs, IsConst: te.IsConst,
	}
}

// timeNow is replaced in tests.
var timeNow = time.Now
