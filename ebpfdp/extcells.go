package ebpfdp

import (
	"errors"
	"fmt"
	"math"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// counterVal is struct p4tc_counter: one CPU's share of a counter cell.
type counterVal struct {
	Packets, Bytes uint64
}

// cellBatch is how many cells one batch map operation reads or writes.
const cellBatch = 1 << 14

// perCPUCell is the per-CPU value that sets a counter cell to d: all of it
// on the first CPU, nothing on the others.
func (x *extState) perCPUCell(d translator.CounterData) []counterVal {
	v := make([]counterVal, x.ncpu)
	v[0] = counterVal{Packets: uint64(d.Packets), Bytes: uint64(d.Bytes)}
	return v
}

// writeCounterCells sets cell idx (-1: every cell) of a per-CPU counter
// map to d, journaled.
func (x *extState) writeCounterCells(m *ebpf.Map, cells uint32, idx int64, d translator.CounterData, what string) error {
	written, err := x.journalCounters(m, cells, idx, d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if idx >= 0 {
		if err := m.Put(uint32(idx), x.perCPUCell(d)); err != nil {
			return mapError(err, "%s: write cell %d", what, idx)
		}
		written()
		return nil
	}
	one := x.perCPUCell(d)
	for lo := uint32(0); lo < cells; lo += cellBatch {
		n := min(cells-lo, cellBatch)
		keys := make([]uint32, n)
		vals := make([]counterVal, int(n)*x.ncpu)
		for i := range keys {
			keys[i] = lo + uint32(i)
			copy(vals[i*x.ncpu:], one)
		}
		if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
			return mapError(err, "%s: write every cell", what)
		}
	}
	written()
	return nil
}

// writeCounter sets cells of an indexed counter (`tc p4ctrl update
// .../extern/Counter ... index N`): the first CPU's share holds the value,
// the others' are zeroed.
func (x *extState) writeCounter(w *translator.CounterWrite) error {
	cp := x.plan.counterByID[w.Counter.ID]
	m := x.counters[w.Counter.ID]
	if cp == nil || m == nil {
		return noExtern("counter %s", w.Counter.Name)
	}
	return x.writeCounterCells(m, cp.cells, w.Index, w.Data, "counter "+w.Counter.Name)
}

// sumCounters reads cells of a per-CPU counter map, summed over CPUs,
// into out (by position in idx): one lookup per cell, or batches over the
// whole map when many cells are asked for.
func (x *extState) sumCounters(m *ebpf.Map, idx []uint32, out []translator.CounterData) error {
	total := m.MaxEntries()
	if len(idx) > 64 && uint64(len(idx))*8 >= uint64(total) {
		all := make([]translator.CounterData, total)
		keys := make([]uint32, cellBatch)
		vals := make([]counterVal, cellBatch*x.ncpu)
		var cursor ebpf.MapBatchCursor
		for got := uint32(0); got < total; {
			n, err := m.BatchLookup(&cursor, keys, vals, nil)
			for i := 0; i < n; i++ {
				var d translator.CounterData
				for _, v := range vals[i*x.ncpu : (i+1)*x.ncpu] {
					d.Packets += int64(v.Packets)
					d.Bytes += int64(v.Bytes)
				}
				if k := keys[i]; k < total {
					all[k] = d
				}
			}
			got += uint32(n)
			if errors.Is(err, ebpf.ErrKeyNotExist) || n == 0 {
				break
			}
			if err != nil {
				return mapError(err, "read counter cells")
			}
		}
		for i, k := range idx {
			if k < total {
				out[i] = all[k]
			}
		}
		return nil
	}
	vals := make([]counterVal, x.ncpu)
	for i, k := range idx {
		if err := m.Lookup(k, vals); err != nil {
			return mapError(err, "read counter cell %d", k)
		}
		var d translator.CounterData
		for _, v := range vals {
			d.Packets += int64(v.Packets)
			d.Bytes += int64(v.Bytes)
		}
		out[i] = d
	}
	return nil
}

// readCounters fills each cell's Data from the datapath.
func (x *extState) readCounters(cells []translator.CounterCell) error {
	type group struct {
		m   *ebpf.Map
		idx []uint32
		pos []int
	}
	groups := map[*ebpf.Map]*group{}
	var order []*group
	for i := range cells {
		c := &cells[i]
		var m *ebpf.Map
		var k uint32
		if c.Entry != nil {
			t := c.Counter.Table
			if t == nil {
				t = c.Entry.Table
			}
			m = x.dcounters[t.ID]
			k = x.cellOf(c.Entry)
			if k == 0 {
				continue // created by the datapath: no cell
			}
		} else {
			m = x.counters[c.Counter.ID]
			k = uint32(c.Index)
		}
		if m == nil {
			return noExtern("counter %s", c.Counter.Name)
		}
		g := groups[m]
		if g == nil {
			g = &group{m: m}
			groups[m] = g
			order = append(order, g)
		}
		g.idx, g.pos = append(g.idx, k), append(g.pos, i)
	}
	for _, g := range order {
		out := make([]translator.CounterData, len(g.idx))
		if err := x.sumCounters(g.m, g.idx, out); err != nil {
			return err
		}
		for j, i := range g.pos {
			cells[i].Data = out[j]
		}
	}
	return nil
}

// Registers.

// registerCell lays a canonical register value out as its cell: the
// container in host order (bit<W>, int<W> sign-extended, bool) for widths
// up to 64 bits, else big-endian bytes.
func registerCell(rp *registerPlan, v []byte) []byte {
	n := rp.size
	be := make([]byte, n)
	fill := byte(0)
	if rp.r.Kind == translator.DataInt && len(v) > 0 && v[0]&0x80 != 0 {
		fill = 0xff
	}
	for i := range be {
		be[i] = fill
	}
	copy(be[max(0, n-len(v)):], v[max(0, len(v)-n):])
	if !rp.hostOrder() {
		return be
	}
	out := make([]byte, n)
	for i := range be {
		out[i] = be[n-1-i]
	}
	return out
}

// cellValue is registerCell's inverse: the cell as a big-endian value.
func cellValue(rp *registerPlan, cell []byte) []byte {
	if !rp.hostOrder() {
		return append([]byte(nil), cell...)
	}
	out := make([]byte, len(cell))
	for i := range cell {
		out[i] = cell[len(cell)-1-i]
	}
	return out
}

// writeRegister sets cells of a register.
func (x *extState) writeRegister(w *translator.RegisterWrite) error {
	rp := x.plan.registerByID[w.Register.ID]
	m := x.registers[w.Register.ID]
	if rp == nil || m == nil {
		return noExtern("register %s", w.Register.Name)
	}
	cell := registerCell(rp, w.Value)
	var err error
	if w.Index >= 0 {
		err = x.journalRows(m, false, u32Key(uint32(w.Index)))
	} else {
		err = x.journalArray(m, rp.cells, false)
	}
	if err != nil {
		return fmt.Errorf("register %s: %w", w.Register.Name, err)
	}
	if w.Index >= 0 {
		if err := m.Put(uint32(w.Index), cell); err != nil {
			return mapError(err, "register %s: write cell %d", w.Register.Name, w.Index)
		}
		return nil
	}
	for lo := uint32(0); lo < rp.cells; lo += cellBatch {
		n := min(rp.cells-lo, cellBatch)
		keys := make([]uint32, n)
		vals := make([]byte, int(n)*rp.size)
		for i := range keys {
			keys[i] = lo + uint32(i)
			copy(vals[i*rp.size:], cell)
		}
		if _, err := m.BatchUpdate(keys, rows(vals, rp.size), nil); err != nil {
			return mapError(err, "register %s: write every cell", w.Register.Name)
		}
	}
	return nil
}

// readRegisters fills each cell's Value from the datapath.
func (x *extState) readRegisters(cells []translator.RegisterCell) error {
	bufs := map[uint32][]byte{} // whole registers read at once
	count := map[uint32]int{}
	for i := range cells {
		count[cells[i].Register.ID]++
	}
	for i := range cells {
		c := &cells[i]
		rp := x.plan.registerByID[c.Register.ID]
		m := x.registers[c.Register.ID]
		if rp == nil || m == nil {
			return noExtern("register %s", c.Register.Name)
		}
		if count[rp.r.ID] > 64 && uint64(count[rp.r.ID])*8 >= uint64(rp.cells) {
			all, ok := bufs[rp.r.ID]
			if !ok {
				var err error
				if all, err = readArray(m, rp.cells, rp.size, false); err != nil {
					return fmt.Errorf("register %s: %w", c.Register.Name, err)
				}
				bufs[rp.r.ID] = all
			}
			c.Value = cellValue(rp, all[int(c.Index)*rp.size:int(c.Index+1)*rp.size])
			continue
		}
		cell := make([]byte, rp.size)
		if err := m.Lookup(uint32(c.Index), cell); err != nil {
			return mapError(err, "register %s: read cell %d", c.Register.Name, c.Index)
		}
		c.Value = cellValue(rp, cell)
	}
	return nil
}

// readArray reads every cell of an array map. With lock, each cell is
// read under its spin lock (BPF_F_LOCK, which the kernel accepts for
// batch lookups of maps whose value holds a bpf_spin_lock), so that no
// half-updated cell (a meter's buckets mid-packet) is read.
func readArray(m *ebpf.Map, cells uint32, size int, lock bool) ([]byte, error) {
	out := make([]byte, int(cells)*size)
	keys := make([]uint32, cellBatch)
	vals := make([]byte, cellBatch*size)
	var opts *ebpf.BatchOptions
	if lock {
		opts = &ebpf.BatchOptions{ElemFlags: uint64(ebpf.LookupLock)}
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, keys, rows(vals, size), opts)
		for i := 0; i < n; i++ {
			if k := keys[i]; k < cells {
				copy(out[int(k)*size:], vals[i*size:(i+1)*size])
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) || n == 0 {
			return out, nil
		}
		if err != nil {
			return nil, mapError(err, "read cells")
		}
	}
}

// Meters.

// Meter modes (P4TC_METER_* of p4tc_externs.h).
const (
	meterNone  = 0
	meterTrTCM = 1
	meterSrTCM = 2
)

// maxBurst bounds a burst so that its nano-units fit a bucket
// (2^62 / 1e9, about 4.6e9 units); larger bursts act as this.
const maxBurst = (1 << 62) / 1e9

// meterNow is CLOCK_MONOTONIC, bpf_ktime_get_ns's clock.
func meterNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// meterCell lays a meter config out as struct p4tc_meter with full
// buckets: the rates as written (per second), the bursts in nano-units,
// and the time each bucket takes to fill. nil is the default: every
// packet GREEN.
func meterCell(m *translator.Meter, c *translator.MeterConfig, now uint64) []byte {
	b := make([]byte, meterSize)
	if c == nil {
		return b
	}
	burst := func(v int64) uint64 { return uint64(min(float64(v), maxBurst)) * 1e9 }
	fill := func(capacity uint64, rate int64) uint64 {
		if rate <= 0 {
			return math.MaxUint64
		}
		return (capacity + uint64(rate) - 1) / uint64(rate)
	}
	var mode uint32
	var cir, pir, capC, capP, fillC, fillP uint64
	switch m.Type {
	case translator.MeterTwoRateThreeColor:
		mode, cir, pir = meterTrTCM, uint64(c.CIR), uint64(c.PIR)
		capC, capP = burst(c.CBurst), burst(c.PBurst)
		fillC, fillP = fill(capC, c.CIR), fill(capP, c.PIR)
	default: // srTCM; two-colour: no excess bucket
		mode, cir = meterSrTCM, uint64(c.CIR)
		capC, capP = burst(c.CBurst), burst(c.EBurst)
		fillC, fillP = fill(capC, c.CIR), fill(capC+capP, c.CIR)
	}
	ne.PutUint32(b[4:], mode)
	for i, v := range []uint64{cir, pir, capC, capP, fillC, fillP, capC, capP, now} {
		ne.PutUint64(b[8+8*i:], v)
	}
	return b
}

// writeMeterCells configures cell idx (-1: every cell) of a meter map,
// under the cells' spin locks (BPF_F_LOCK): a packet sees the old
// configuration or the new one with full buckets. The cells are
// journaled.
func (x *extState) writeMeterCells(mm *ebpf.Map, cells uint32, idx int64, cell []byte, what string) error {
	var err error
	if idx >= 0 {
		err = x.journalRows(mm, true, u32Key(uint32(idx)))
	} else {
		err = x.journalArray(mm, cells, true)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if idx >= 0 {
		if err := mm.Update(uint32(idx), cell, ebpf.UpdateLock); err != nil {
			return mapError(err, "%s: configure cell %d", what, idx)
		}
		return nil
	}
	for lo := uint32(0); lo < cells; lo += cellBatch {
		n := min(cells-lo, cellBatch)
		keys := make([]uint32, n)
		vals := make([]byte, int(n)*meterSize)
		for i := range keys {
			keys[i] = lo + uint32(i)
			copy(vals[i*meterSize:], cell)
		}
		if _, err := mm.BatchUpdate(keys, rows(vals, meterSize), &ebpf.BatchOptions{ElemFlags: uint64(ebpf.UpdateLock)}); err != nil {
			return mapError(err, "%s: configure every cell", what)
		}
	}
	return nil
}

// writeMeter configures cells of an indexed meter and keeps the configs
// for a restart.
func (p *pipeline) writeMeter(w *translator.MeterWrite) error {
	x := p.ext
	mp := x.plan.meterByID[w.Meter.ID]
	mm := x.meters[w.Meter.ID]
	if mp == nil || mm == nil {
		return noExtern("meter %s", w.Meter.Name)
	}
	if err := x.saveMeter(w); err != nil {
		return err
	}
	return x.writeMeterCells(mm, mp.cells, w.Index, meterCell(w.Meter, w.Config, meterNow()), "meter "+w.Meter.Name)
}

// Direct cells.

// directCells gives each entry of a table with direct resources its cell
// in p4tc_t<id>_dcnt and _dmtr: cell 1 is the default entry's, 0 none
// (entries the datapath created), the others are handed out and taken
// back as entries come and go. The cell is in the entry's map value
// (struct p4tc_direct); both tiers use the same cell.
type directCells struct {
	plan *tablePlan
	byID map[sideID]uint32
	free []uint32
	next uint32
}

func newDirectCells(p *tablePlan) *directCells {
	return &directCells{plan: p, byID: map[sideID]uint32{}, next: directDefaultCell + 1}
}

// alloc returns id's cell, giving it one if it has none (fresh).
func (d *directCells) alloc(id sideID) (cell uint32, fresh bool, err error) {
	if c, ok := d.byID[id]; ok {
		return c, false, nil
	}
	switch {
	case len(d.free) > 0:
		cell = d.free[len(d.free)-1]
		d.free = d.free[:len(d.free)-1]
	case d.next < d.plan.directCells():
		cell = d.next
		d.next++
	default:
		return 0, false, translator.Errorf(translator.ErrFull, "table %s: no direct counter or meter cell left", d.plan.table.Name)
	}
	d.byID[id] = cell
	return cell, true, nil
}

// release takes id's cell back.
func (d *directCells) release(id sideID) {
	if c, ok := d.byID[id]; ok {
		delete(d.byID, id)
		d.free = append(d.free, c)
	}
}

// note records a cell found in the datapath (restore).
func (d *directCells) note(id sideID, cell uint32) {
	if cell <= directDefaultCell || cell >= d.plan.directCells() {
		return
	}
	d.byID[id] = cell
	d.next = max(d.next, cell+1)
}

// settle rebuilds the free list after notes (restore).
func (d *directCells) settle() {
	used := map[uint32]bool{}
	for _, c := range d.byID {
		used[c] = true
	}
	d.free = d.free[:0]
	for c := uint32(directDefaultCell + 1); c < d.next; c++ {
		if !used[c] {
			d.free = append(d.free, c)
		}
	}
}

// cellOf is the direct cell of an entry of a direct table: 1 for the
// default entry, 0 for entries without one.
func (x *extState) cellOf(e *translator.Entry) uint32 {
	if e.IsDefault {
		return directDefaultCell
	}
	if e.Origin == translator.OriginDatapath {
		return 0
	}
	d := x.cells[e.Table.ID]
	if d == nil {
		return 0
	}
	return d.byID[entryID(e.Match, e.Priority)]
}

// sameMeter reports whether two direct meter configs are the same.
func sameMeter(a, b *translator.MeterConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func directOf(e *translator.Entry) translator.DirectResources {
	if e == nil || e.Direct == nil {
		return translator.DirectResources{}
	}
	return *e.Direct
}

// writeCells writes an entry's direct counter cell (when counter) and
// direct meter cell (when meter).
func (p *pipeline) writeCells(e *translator.Entry, cell uint32, counter, meter bool) error {
	x, t := p.ext, e.Table
	d := directOf(e)
	if counter && t.DirectCounter != nil {
		if err := x.writeCounterCells(x.dcounters[t.ID], 0, int64(cell), d.Counter, "table "+t.Name+": direct counter"); err != nil {
			return err
		}
	}
	if meter && t.DirectMeter != nil {
		if err := x.writeMeterCells(x.dmeters[t.ID], 0, int64(cell), meterCell(t.DirectMeter, d.Meter, meterNow()), "table "+t.Name+": direct meter"); err != nil {
			return err
		}
	}
	return nil
}

// writeDirect handles a DirectCounterEntry or DirectMeterEntry write: the
// entry's cell, and its side record, which keeps the meter config.
func (p *pipeline) writeDirect(e, prev *translator.Entry, counter, meter bool) error {
	cell := p.ext.cellOf(e)
	if cell == 0 {
		return translator.Errorf(translator.ErrUnsupported, "table %s: entries the datapath created have no direct counter or meter", e.Table.Name)
	}
	if err := p.writeCells(e, cell, counter, meter); err != nil {
		return err
	}
	if meter && !e.IsDefault {
		return p.resaveEntry(e)
	}
	if meter {
		return p.saveDefault(e)
	}
	return nil
}

// directBefore prepares the direct cells of a run of ops on a direct
// table before they are written: inserted entries get a cell set to their
// initial counter and meter. It returns how many ops are ready.
func (p *pipeline) directBefore(ops []translator.Op) (int, error) {
	for i, op := range ops {
		e := op.Entry
		if op.Kind != translator.OpInsert || e.Origin == translator.OriginDatapath {
			continue
		}
		d := p.ext.cells[e.Table.ID]
		cell, fresh, err := d.alloc(entryID(e.Match, e.Priority))
		if err != nil {
			return i, err
		}
		if !fresh {
			continue // rolled back and put again: the cell goes on
		}
		if err := p.writeCells(e, cell, true, true); err != nil {
			d.release(entryID(e.Match, e.Priority))
			return i, err
		}
	}
	return len(ops), nil
}

// directAfter settles the direct cells of a run whose first n ops took
// effect: deleted entries give their cell back, as do inserts that did
// not happen; modifies write what changed (a counter written with the
// modify; a meter config that differs).
func (p *pipeline) directAfter(ops []translator.Op, n int) {
	for i, op := range ops {
		e := op.Entry
		if e.Origin == translator.OriginDatapath {
			continue
		}
		d := p.ext.cells[e.Table.ID]
		id := entryID(e.Match, e.Priority)
		switch {
		case op.Kind == translator.OpInsert && i >= n:
			d.release(id)
		case op.Kind == translator.OpDelete && i < n:
			d.release(id)
		case op.Kind == translator.OpModify && i < n:
			nd, pd := directOf(e), directOf(op.Prev)
			if err := p.writeCells(e, d.byID[id], nd.WriteCounter, !sameMeter(nd.Meter, pd.Meter)); err != nil {
				p.log.Error("direct resources not updated", "table", e.Table.Name, "err", err)
			}
		}
	}
}
