package ebpfdp

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// Extern writes in the batch journal (journal.go). Every extern write of
// an open batch journals what undoes it before it changes anything:
//
//   - the rows of the extern maps it writes, with their values before or
//     their absence: members and groups of action profiles, multicast
//     groups, clone sessions, the keys of value sets, register cells,
//     meter cells (their configuration and buckets, put back under the
//     cells' spin locks), direct meter cells;
//   - the records of the extern store (p4tcd_externs) it writes or
//     removes, with their bytes before;
//   - counter cells (indexed and direct) with their values before, summed
//     over CPUs, and the value written.
//
// Counter values the controller writes are state: a cut batch takes them
// back. Packets the datapath counts are not part of any batch: undo puts
// back the value before the write plus what the datapath counted in the
// cell since (its value now minus the value written), and leaves cells
// the batch did not write alone. When p4tcd died between publishing a
// counter record and marking its write done, undo cannot tell whether the
// write took effect and puts the value before back: the state is right,
// and the packets counted in that cell since the record are lost.
//
// Register cells have no such split (the datapath writes them as the
// controller does): undo puts the value before back, so datapath writes
// to a cell the cut batch wrote, made after that write, are lost with it.
// Meter buckets go back with their cell: a cut configuration write
// leaves the meter as it was, tokens included (they refill from the time
// of the cell's last update). p4tc_port_down is not journaled: it follows
// the links, not the controller.

// pinName is the journal's name of an extern map: its pin path under
// the generation directory.
func (x *extState) pinName(m *ebpf.Map) (string, error) {
	if x.pins == nil {
		x.pins = map[*ebpf.Map]string{}
		for name, em := range x.maps() {
			x.pins[em] = filepath.Join("maps", name)
		}
	}
	name, ok := x.pins[m]
	if !ok {
		return "", translator.Errorf(translator.ErrInternal, "journal: an extern map without a pin")
	}
	return name, nil
}

// mapIndex names an extern map in the open batch.
func (x *extState) mapIndex(m *ebpf.Map) (uint16, error) {
	name, err := x.pinName(m)
	if err != nil {
		return 0, err
	}
	return x.jr.mapIndex(name)
}

// u32Key is a u32 map key as the kernel reads it.
func u32Key(v uint32) []byte {
	k := make([]byte, 4)
	ne.PutUint32(k, v)
	return k
}

// journalRows journals, when a batch is open, rows of the extern map m
// that are about to change: each key with the value it holds now, or
// without one when it holds none (undo then deletes it). lock says the
// map's values hold a spin lock (meters): they are read under it and
// put back under it.
func (x *extState) journalRows(m *ebpf.Map, lock bool, keys ...[]byte) error {
	if !x.jr.active() || len(keys) == 0 {
		return nil
	}
	defer x.jr.publish()
	idx, err := x.mapIndex(m)
	if err != nil {
		return err
	}
	ks, vs := int(m.KeySize()), int(m.ValueSize())
	flags := ebpf.MapLookupFlags(0)
	if lock {
		flags = ebpf.LookupLock
	}
	v := make([]byte, vs)
	for _, k := range keys {
		n := vs
		if err := m.LookupWithFlags(k, v, flags); errors.Is(err, ebpf.ErrKeyNotExist) {
			n = 0
		} else if err != nil {
			return mapError(err, "journal: read map %s", m.String())
		}
		_, rk, rv, err := x.jr.rowsLocked(idx, ks, n, 1, lock)
		if err != nil {
			return err
		}
		copy(rk, k)
		copy(rv, v[:n])
	}
	return nil
}

// journalArray journals, when a batch is open, every cell of the array
// map m (cells of the map's value size), about to be written whole: a
// register or meter write without index.
func (x *extState) journalArray(m *ebpf.Map, cells uint32, lock bool) error {
	if !x.jr.active() || cells == 0 {
		return nil
	}
	defer x.jr.publish()
	idx, err := x.mapIndex(m)
	if err != nil {
		return err
	}
	size := int(m.ValueSize())
	all, err := readArray(m, cells, size, lock)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	for done := 0; done < int(cells); {
		n, rk, rv, err := x.jr.rowsLocked(idx, 4, size, int(cells)-done, lock)
		if err != nil {
			return err
		}
		for i := range n {
			ne.PutUint32(rk[4*i:], uint32(done+i))
		}
		copy(rv, all[done*size:(done+n)*size])
		done += n
	}
	return nil
}

// journalRecords journals, when a batch is open, records of the extern
// store about to be written or removed, with their bytes before.
func (x *extState) journalRecords(refs ...sideRef) error {
	if !x.jr.active() || len(refs) == 0 {
		return nil
	}
	defer x.jr.publish()
	for _, ref := range refs {
		if err := x.jr.ext(ref, x.store.recs[ref]); err != nil {
			return err
		}
	}
	return nil
}

// journalCounters journals, when a batch is open, cell idx (every cell
// when idx < 0) of the per-CPU counter map m, about to be set to d: each
// cell's value now, summed over CPUs, and d. It returns what to call once
// the write took effect (undo then keeps what the datapath counted
// since).
func (x *extState) journalCounters(m *ebpf.Map, cells uint32, idx int64, d translator.CounterData) (written func(), err error) {
	if !x.jr.active() {
		return func() {}, nil
	}
	defer x.jr.publish()
	mi, err := x.mapIndex(m)
	if err != nil {
		return nil, err
	}
	first, n := uint32(idx), 1
	if idx < 0 {
		first, n = 0, int(cells)
	}
	keys := make([]uint32, n)
	for i := range keys {
		keys[i] = first + uint32(i)
	}
	sums := make([]translator.CounterData, n)
	if err := x.sumCounters(m, keys, sums); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	w := counterVal{Packets: uint64(d.Packets), Bytes: uint64(d.Bytes)}
	var states []*uint32
	for done := 0; done < n; {
		k, prev, st, err := x.jr.counters(mi, first+uint32(done), n-done, w)
		if err != nil {
			return nil, err
		}
		for i := range k {
			s := sums[done+i]
			ne.PutUint64(prev[i*counterCellSize:], uint64(s.Packets))
			ne.PutUint64(prev[i*counterCellSize+8:], uint64(s.Bytes))
		}
		states = append(states, st)
		done += k
	}
	return func() {
		for _, st := range states {
			atomic.StoreUint32(st, jcWritten)
		}
	}, nil
}

// undoCounters sets back the cells of a counter record (rollback). When
// the write took effect (jcWritten), a cell gets its value before plus
// what the datapath counted since the write; the record is first turned
// into one that puts exactly those values back (state jcJournaled, values
// rewritten in its memory), so that a p4tcd killed during the rollback
// does not add the datapath's counts twice: it puts back the values
// before or these, both of which take the write back. Otherwise the cells
// get their values before.
func (x *extState) undoCounters(m *ebpf.Map, r *journalRec) error {
	vals := make([]counterVal, r.count)
	for i := range vals {
		vals[i] = counterVal{Packets: ne.Uint64(r.val[i*counterCellSize:]), Bytes: ne.Uint64(r.val[i*counterCellSize+8:])}
	}
	state := (*uint32)(unsafe.Pointer(&r.raw[8]))
	if atomic.LoadUint32(state) == jcWritten {
		keys := make([]uint32, r.count)
		for i := range keys {
			keys[i] = r.first + uint32(i)
		}
		now := make([]translator.CounterData, r.count)
		if err := x.sumCounters(m, keys, now); err != nil {
			return err
		}
		// Counts only grow: a cell below the value written was not
		// counted in since (or wrapped); it gets its value before.
		since := func(now int64, w uint64) uint64 { return uint64(max(0, now-int64(w))) }
		for i := range vals {
			vals[i].Packets += since(now[i].Packets, r.written.Packets)
			vals[i].Bytes += since(now[i].Bytes, r.written.Bytes)
		}
		atomic.StoreUint32(state, jcJournaled)
		area := r.raw[counterHead:]
		for i, v := range vals {
			ne.PutUint64(area[i*counterCellSize:], v.Packets)
			ne.PutUint64(area[i*counterCellSize+8:], v.Bytes)
		}
	}
	for lo := 0; lo < len(vals); lo += cellBatch {
		n := min(len(vals)-lo, cellBatch)
		keys := make([]uint32, n)
		pc := make([]counterVal, n*x.ncpu)
		for i := range keys {
			keys[i] = r.first + uint32(lo+i)
			pc[i*x.ncpu] = vals[lo+i]
		}
		if _, err := m.BatchUpdate(keys, pc, nil); err != nil {
			return mapError(err, "restore counter cells of map %s", m.String())
		}
	}
	return nil
}
