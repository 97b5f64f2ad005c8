package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// CounterData is the value of a counter cell. P4Runtime carries both counts
// whatever the counter's unit (§9.3); a datapath reports 0 for a unit it
// does not count.
type CounterData struct {
	Bytes   int64
	Packets int64
}

func (c CounterData) proto() *p4v1.CounterData {
	return &p4v1.CounterData{ByteCount: c.Bytes, PacketCount: c.Packets}
}

// DirectResources is the state of a table entry's direct counter and meter
// (P4Runtime §9.1.6 "Direct Resources").
type DirectResources struct {
	// Counter is the direct counter value last written: the INSERT's
	// initial value or a later write.
	Counter CounterData
	// WriteCounter: the write that made this version of the entry set
	// the counter, so the backend writes Counter into the cell; otherwise
	// the cell keeps counting.
	WriteCounter bool
	// Meter is the direct meter config; nil is the default (every packet
	// GREEN).
	Meter *MeterConfig
}

// carryDirect applies §9.1.6 to a MODIFY: an unset counter_data keeps the
// counter (an unset meter_config resets the meter, which parsing did).
func carryDirect(e, prev *Entry) {
	if prev == nil || prev.Direct == nil || prev.Direct.Counter == (CounterData{}) {
		return
	}
	if e.Direct != nil && e.Direct.WriteCounter {
		return
	}
	d := &DirectResources{Counter: prev.Direct.Counter}
	if e.Direct != nil {
		d.Meter = e.Direct.Meter
	}
	e.Direct = d
}

// parseDirect reads the direct resource fields of a written TableEntry into
// e.Direct. P4Info does not say which actions execute a direct resource, so
// the §9.1.6 rule "direct resource data for an action that does not execute
// it is INVALID_ARGUMENT" cannot be checked: data for any action is kept.
func (p *Pipeline) parseDirect(t *Table, te *p4v1.TableEntry, e *Entry) error {
	cd, mc, mcd := te.GetCounterData(), te.GetMeterConfig(), te.GetMeterCounterData()
	if cd == nil && mc == nil && mcd == nil {
		return nil
	}
	if cd != nil && t.DirectCounter == nil {
		return errorf(ErrInvalid, "table %s has no direct counter (counter_data set)", t.Name)
	}
	if (mc != nil || mcd != nil) && t.DirectMeter == nil {
		return errorf(ErrInvalid, "table %s has no direct meter (meter_config or meter_counter_data set)", t.Name)
	}
	if mcd != nil {
		return errorf(ErrUnsupported, "table %s: direct meter %s: per-colour meter counters (meter_counter_data) are not supported", t.Name, t.DirectMeter.Name)
	}
	d := &DirectResources{}
	if cd != nil {
		v, err := counterData(cd, "table "+t.Name+": direct counter "+t.DirectCounter.Name)
		if err != nil {
			return err
		}
		d.Counter, d.WriteCounter = v, true
	}
	if mc != nil {
		cfg, err := parseMeterConfig(t.DirectMeter, mc, "table "+t.Name+": direct meter "+t.DirectMeter.Name)
		if err != nil {
			return err
		}
		d.Meter = cfg
	}
	e.Direct = d
	return nil
}

// counterData checks a written CounterData: counts are never negative.
func counterData(cd *p4v1.CounterData, what string) (CounterData, error) {
	if cd.GetByteCount() < 0 || cd.GetPacketCount() < 0 {
		return CounterData{}, errorf(ErrInvalid, "%s: negative count (byte_count %d, packet_count %d)", what, cd.GetByteCount(), cd.GetPacketCount())
	}
	return CounterData{Bytes: cd.GetByteCount(), Packets: cd.GetPacketCount()}, nil
}

// cellIndex checks the index of a counter, meter or register entry
// (P4Runtime §9.3.2, §9.4.2, §9.7): negative is INVALID_ARGUMENT, beyond the
// array OUT_OF_RANGE. Unset (nil) means every cell: all is true.
func cellIndex(ix *p4v1.Index, size int64, what string) (idx int64, all bool, err error) {
	if ix == nil {
		return -1, true, nil
	}
	i := ix.GetIndex()
	if i < 0 {
		return 0, false, errorf(ErrInvalid, "%s: negative index %d", what, i)
	}
	if i >= size {
		return 0, false, errorf(ErrOutOfRange, "%s: index %d is beyond its %d cells", what, i, size)
	}
	return i, false, nil
}

// CounterWrite sets cells of an indexed counter.
type CounterWrite struct {
	Counter *Counter
	// Index is the cell; -1 is every cell (a CounterEntry without index).
	Index int64
	Data  CounterData

	// prev is what the store held before, for the inverse op.
	prev cellsState[CounterData]
}

// cellsState is the control plane's copy of an array extern: every cell is
// fill except those in cells. Wildcard writes replace the map rather than
// change it, so a state can be kept for undo.
type cellsState[V any] struct {
	fill  V
	cells map[int64]V
}

func (c *cellsState[V]) get(i int64) V {
	if v, ok := c.cells[i]; ok {
		return v
	}
	return c.fill
}

// set writes one cell and returns how to undo it.
func (c *cellsState[V]) set(i int64, v V) func() {
	old, had := c.cells[i]
	if c.cells == nil {
		c.cells = map[int64]V{}
	}
	c.cells[i] = v
	return func() {
		if had {
			c.cells[i] = old
		} else {
			delete(c.cells, i)
		}
	}
}

// setAll writes every cell and returns how to undo it.
func (c *cellsState[V]) setAll(v V) func() {
	old := *c
	c.fill, c.cells = v, nil
	return func() { *c = old }
}

// write applies a cell write (idx -1: all) and returns the state before
// and the undo.
func (c *cellsState[V]) write(idx int64, v V) (prev cellsState[V], undoFn func()) {
	if idx < 0 {
		prev = *c
		return prev, c.setAll(v)
	}
	prev = cellsState[V]{fill: c.get(idx)}
	return prev, c.set(idx, v)
}

// inverseCells lists the writes (idx, value; idx -1 is every cell) that
// restore prev after a write at idx: for a wildcard write, a wildcard write
// of the old fill and one write per cell that differed from it.
func inverseCells[V any](prev cellsState[V], idx int64, each func(idx int64, v V)) {
	if idx >= 0 {
		each(idx, prev.fill)
		return
	}
	each(-1, prev.fill)
	for i, v := range prev.cells {
		each(i, v)
	}
}

// counterState is the last written value of each cell of an indexed counter.
type counterState struct {
	c *Counter
	cellsState[CounterData]
}

func (w *batch) stageCounter(i int, ce *p4v1.CounterEntry, op writeOp) error {
	cfg := w.d.cfg
	if op != opModify {
		return errorf(ErrInvalid, "counter entries can only be modified, not %s (P4Runtime §9.3.2)", opName(op))
	}
	if ce.GetCounterId() == 0 {
		return errorf(ErrInvalid, "counter_id 0 is only valid in wildcard reads")
	}
	c := cfg.Counters[ce.GetCounterId()]
	if c == nil {
		return errorf(ErrInvalid, "counter id %#x is not an indexed counter of the pipeline%s", ce.GetCounterId(), cfg.kindHint(ce.GetCounterId()))
	}
	what := "counter " + c.Name
	if !w.sc.allows(c.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternCounters, what); err != nil {
		return err
	}
	idx, _, err := cellIndex(ce.GetIndex(), c.Size, what)
	if err != nil {
		return err
	}
	if ce.GetData() == nil {
		return nil // §9.3.2: "the counter value is not modified if this field is not set"
	}
	v, err := counterData(ce.GetData(), what)
	if err != nil {
		return err
	}
	cs := w.d.st.counters[c.ID]
	cw := &CounterWrite{Counter: c, Index: idx, Data: v}
	var u func()
	cw.prev, u = cs.write(idx, v)
	w.pushExt(i, &ExternOp{Kind: ExtWriteCounter, Counter: cw}, u)
	return nil
}

// lookupEntry finds the table entry a DirectCounterEntry or DirectMeterEntry
// names by its key (the action is ignored, §9.3.1).
func (d *Device) lookupEntry(te *p4v1.TableEntry, what string) (*tableState, *Entry, error) {
	cfg := d.cfg
	if te == nil {
		return nil, nil, errorf(ErrInvalid, "%s: table_entry is required", what)
	}
	if te.GetTableId() == 0 {
		return nil, nil, errorf(ErrInvalid, "%s: table_id 0 is only valid in wildcard reads", what)
	}
	t := cfg.Tables[te.GetTableId()]
	if t == nil {
		return nil, nil, errorf(ErrInvalid, "%s: table id %#x is not a table of the pipeline%s", what, te.GetTableId(), cfg.kindHint(te.GetTableId()))
	}
	ts := d.st.tables[t.ID]
	if te.GetIsDefaultAction() {
		if len(te.GetMatch()) > 0 || te.GetPriority() != 0 {
			return nil, nil, errorf(ErrInvalid, "%s: table %s: the default entry has no match and priority 0", what, t.Name)
		}
		return ts, ts.deflt, nil
	}
	key := newEntry(t)
	key.Priority = te.GetPriority()
	if _, err := cfg.parseKey(t, te, key, false); err != nil {
		return nil, nil, err
	}
	e := ts.entries[key.skey]
	if e == nil {
		return nil, nil, errorf(ErrNotFound, "%s: table %s has no entry %s", what, t.Name, describeKey(key))
	}
	return ts, e, nil
}

// replaceEntry puts a new version of a stored entry in its slot (direct
// resource writes) and returns the undo.
func replaceEntry(ts *tableState, old, e *Entry) undo {
	if old.IsDefault {
		ts.deflt = e
		return undo{ts: ts, prev: old, dflt: true}
	}
	ts.entries[old.skey] = e
	return undo{ts: ts, key: old.skey, prev: old}
}

// withDirect returns a copy of e with its direct resources changed by f.
func withDirect(e *Entry, f func(*DirectResources)) *Entry {
	ne := *e
	d := DirectResources{}
	if e.Direct != nil {
		d = *e.Direct
	}
	d.WriteCounter = false
	f(&d)
	if d == (DirectResources{}) {
		ne.Direct = nil
	} else {
		ne.Direct = &d
	}
	return &ne
}

func (w *batch) stageDirectCounter(i int, dc *p4v1.DirectCounterEntry, op writeOp) error {
	if op != opModify {
		return errorf(ErrInvalid, "direct counter entries can only be modified, not %s (P4Runtime §9.3.1)", opName(op))
	}
	ts, e, err := w.d.lookupEntry(dc.GetTableEntry(), "direct counter entry")
	if err != nil {
		return err
	}
	t := ts.table
	if t.DirectCounter == nil {
		return errorf(ErrInvalid, "table %s has no direct counter", t.Name)
	}
	what := "table " + t.Name + ": direct counter " + t.DirectCounter.Name
	if !w.sc.allows(t.ID) && !w.sc.allows(t.DirectCounter.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternDirectCounters, what); err != nil {
		return err
	}
	if dc.GetData() == nil {
		return nil // §9.3.1: unset data leaves the counter as it is
	}
	v, err := counterData(dc.GetData(), what)
	if err != nil {
		return err
	}
	ne := withDirect(e, func(d *DirectResources) { d.Counter, d.WriteCounter = v, true })
	w.pushExtUndo(i, &ExternOp{Kind: ExtWriteDirectCounter, Entry: ne, PrevEntry: e}, nil, replaceEntry(ts, e, ne))
	return nil
}
