package ebpfdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// Entries the datapath creates (PNA add-on-miss) live in the tc tier of
// exact tables whose permissions allow data-path creates. Each such table
// has a pool map, struct p4tc_pool {u32 cap; u32 used;}, that p4tcd maps
// into its memory: cap is the device config's datapath_pool_size, used
// the slots taken. The datapath takes a slot with an atomic add before it
// inserts (giving it back if the insert fails), and whoever deletes a
// datapath-created entry (the datapath, p4tcd's aging sweep, a controller
// DELETE) gives its slot back once the delete succeeded. The entries map
// has room for the table's size plus the pool, and the Device keeps
// controller entries within the size, so neither kind can starve the
// other.

// poolWord returns the address of a pool field (0 cap, 1 used).
func (ts *tableState) poolWord(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&ts.poolMem[4*i]))
}

// setPoolCap sets the number of slots.
func (ts *tableState) setPoolCap(n uint32) { atomic.StoreUint32(ts.poolWord(0), n) }

// poolUsage returns the pool's capacity and the slots in use.
func (ts *tableState) poolUsage() (capacity, used uint32) {
	if ts.poolMem == nil {
		return 0, 0
	}
	return atomic.LoadUint32(ts.poolWord(0)), atomic.LoadUint32(ts.poolWord(1))
}

// releaseSlot gives one slot back (never below zero). A count above the
// capacity is a datapath release that went below zero and is about to
// take it back (p4tc_pool_release): nothing to give back then either.
func (ts *tableState) releaseSlot() {
	if ts.poolMem == nil {
		return
	}
	w, c := ts.poolWord(1), atomic.LoadUint32(ts.poolWord(0))
	for {
		v := atomic.LoadUint32(w)
		if v == 0 || v > c || atomic.CompareAndSwapUint32(w, v, v-1) {
			return
		}
	}
}

// takeSlot takes a slot if one is free.
func (ts *tableState) takeSlot() bool {
	if ts.poolMem == nil {
		return false
	}
	w, c := ts.poolWord(1), atomic.LoadUint32(ts.poolWord(0))
	for {
		v := atomic.LoadUint32(w)
		if v >= c {
			return false
		}
		if atomic.CompareAndSwapUint32(w, v, v+1) {
			return true
		}
	}
}

// poolRecountTries is how many times Restore counts a table's
// datapath-created entries again when the datapath changed the pool's
// use while it counted.
const poolRecountTries = 3

// countCreated counts the entries of ts's map the datapath created.
func (ts *tableState) countCreated() (uint32, error) {
	pl := ts.plan
	var n uint32
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		if pl.datapathCreated(v) {
			n++
		}
	}
	if err := it.Err(); err != nil {
		return 0, fmt.Errorf("table %s: count datapath-created entries: %w", pl.table.Name, err)
	}
	return n, nil
}

// settlePool sets a pool's use to the entries the datapath created that
// are in the table (Restore): counted is what a count found that began
// when the pool said before. A p4tcd killed between deleting such an entry
// and giving its slot back leaves a slot taken for nothing, and the kernel
// can do nothing about it. The datapath keeps creating and deleting while
// p4tcd counts, so the count is set only if the use did not move since
// the count began (a compare-and-swap); otherwise the table is counted
// again, up to poolRecountTries times, and then the last count is set
// anyway. What can still be off: a create or delete that is between its
// map operation and its atomic on the pool when the count passes its key
// (a few instructions of one program run) leaves the use off by one.
func (p *pipeline) settlePool(ts *tableState, before, counted uint32) error {
	w := ts.poolWord(1)
	for try := 0; ; try++ {
		if atomic.CompareAndSwapUint32(w, before, counted) {
			if before != counted {
				p.log.Info("pool use recounted", "table", ts.plan.table.Name, "was", before, "now", counted)
			}
			return nil
		}
		if try == poolRecountTries {
			atomic.StoreUint32(w, counted)
			p.log.Warn("pool use recounted while the datapath kept changing it", "table", ts.plan.table.Name, "now", counted)
			return nil
		}
		before = atomic.LoadUint32(w)
		n, err := ts.countCreated()
		if err != nil {
			return err
		}
		counted = n
	}
}

// agedTail is struct p4tc_aged, the end of an aged table's values.
type agedTail struct {
	lastHit uint64 // bpf_ktime_get_coarse_ns of the last hit or write
	profile uint32 // datapath-created: the timer profile
	flags   uint32 // agedDatapath
}

func getAged(b []byte) agedTail {
	return agedTail{lastHit: ne.Uint64(b), profile: ne.Uint32(b[8:]), flags: ne.Uint32(b[12:])}
}

func putAged(b []byte, a agedTail) {
	ne.PutUint64(b, a.lastHit)
	ne.PutUint32(b[8:], a.profile)
	ne.PutUint32(b[12:], a.flags)
}

// stamp sets the last hit of a value of an aged table.
func (p *tablePlan) stamp(v []byte, now uint64) {
	if p.aged() {
		ne.PutUint64(v[p.agedOff():], now)
	}
}

// monoNow is the clock of bpf_ktime_get_coarse_ns: CLOCK_MONOTONIC_COARSE.
func monoNow() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return uint64(time.Now().UnixNano()) // not reached on Linux
	}
	return uint64(ts.Nano())
}

// since is the time from a coarse timestamp to now (0 if it is ahead).
func since(now, t uint64) time.Duration {
	if t >= now {
		return 0
	}
	return time.Duration(now - t)
}

// datapathCreated reports whether a value of an aged table belongs to an
// entry the datapath created.
func (p *tablePlan) datapathCreated(v []byte) bool {
	return p.aged() && getAged(v[p.agedOff():]).flags&agedDatapath != 0
}

// aging is the idle timeout of a datapath-created entry made with timer
// profile id.
func (p *tablePlan) aging(profile uint32) time.Duration {
	return time.Duration(p.settings.AgingMs(profile)) * time.Millisecond
}

// profileFor is the timer profile whose aging is d (profile 0 if none).
func (p *tablePlan) profileFor(d time.Duration) uint32 {
	for i, ms := range p.settings.TimerProfilesMs {
		if time.Duration(ms)*time.Millisecond == d {
			return uint32(i)
		}
	}
	return 0
}

// encodeValue writes an entry's map value: the action and, for aged
// tables, the tail stamped now (controller entries start their idle time
// when written; an entry the datapath created, written back by a
// rollback, keeps its origin and gets the profile of its aging).
func (p *pipeline) encodeValue(ts *tableState, e *translator.Entry, dst []byte, now uint64) error {
	if err := p.encodeHead(ts.plan, e, dst); err != nil {
		return err
	}
	if ts.plan.aged() {
		a := agedTail{lastHit: now}
		if e.Origin == translator.OriginDatapath {
			a.flags = agedDatapath
			a.profile = ts.plan.profileFor(time.Duration(e.IdleTimeoutNs))
		}
		putAged(dst[ts.plan.agedOff():], a)
	}
	return nil
}

// datapathEntry decodes a datapath-created entry of the tc tier.
func (p *pipeline) datapathEntry(ts *tableState, k, v []byte, now uint64) (translator.DatapathEntry, error) {
	pl := ts.plan
	match, err := pl.decodeKey(k, p.ports)
	if err != nil {
		return translator.DatapathEntry{}, err
	}
	a, params, err := pl.decodeAction(v, p.ports)
	if err != nil {
		return translator.DatapathEntry{}, err
	}
	ag := getAged(v[pl.agedOff():])
	return translator.DatapathEntry{
		SavedEntry: translator.SavedEntry{
			TableID: pl.table.ID, Match: match, ActionID: a.ID, Params: params,
			Origin: translator.OriginDatapath, IdleTimeoutNs: pl.aging(ag.profile).Nanoseconds(),
		},
		SinceLastHit: since(now, ag.lastHit),
	}, nil
}

// poolTable returns the tc tier's state of a table whose datapath creates
// entries, or an error.
func (b *Backend) poolTable(tableID uint32) (*tableState, error) {
	if b.cur == nil {
		return nil, translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	ts := b.cur.byID[tableID]
	if ts == nil {
		return nil, translator.Errorf(translator.ErrNotFound, "table id %#x is not in the pipeline", tableID)
	}
	if ts.plan.flags&tfDataCreate == 0 {
		return nil, nil
	}
	return ts, nil
}

// DatapathEntries lists the entries the datapath created in a table
// (translator.DatapathCreator), read from its map: like `tc p4ctrl get
// <p>/table/<cb>/<t>` listing the entries created by the kernel. Entries
// that do not decode (a port that is no longer a --port) are skipped and
// logged.
func (b *Backend) DatapathEntries(tableID uint32) ([]translator.DatapathEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, err := b.poolTable(tableID)
	if ts == nil {
		return nil, err
	}
	p, pl := b.cur, ts.plan
	now := monoNow()
	var out []translator.DatapathEntry
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		if !pl.datapathCreated(v) {
			continue
		}
		de, err := p.datapathEntry(ts, k, v, now)
		if err != nil {
			b.log.Warn("datapath-created entry skipped", "table", pl.table.Name, "err", err)
			continue
		}
		out = append(out, de)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read entries of table %s: %w", pl.table.Name, err)
	}
	return out, nil
}

// LookupDatapathEntry finds the datapath-created entry of a table with
// the given match (translator.DatapathCreator), like `tc p4ctrl get
// <p>/table/<cb>/<t> <key>` on a P4TC kernel; nil when there is none.
func (b *Backend) LookupDatapathEntry(tableID uint32, match []translator.FieldMatch) (*translator.DatapathEntry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, err := b.poolTable(tableID)
	if ts == nil {
		return nil, err
	}
	pl := ts.plan
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	if err := pl.encodeKey(k, match, b.cur.ports); err != nil {
		return nil, nil // a key no entry can have (a port that is not a --port)
	}
	if err := ts.entries.Lookup(k, v); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("look up entry of table %s: %w", pl.table.Name, err)
	}
	if !pl.datapathCreated(v) {
		return nil, nil
	}
	de, err := b.cur.datapathEntry(ts, k, v, monoNow())
	if err != nil {
		return nil, err
	}
	return &de, nil
}

// Pool reports a table's pool of datapath-created entries: its capacity
// (datapath_pool_size) and the slots in use, like the preallocated action
// instances of `tc p4template create action/... num_prealloc_acts N` and
// those a P4TC kernel has handed out.
func (b *Backend) Pool(tableID uint32) (capacity, used uint32, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts, err := b.poolTable(tableID)
	if ts == nil {
		return 0, 0, err
	}
	c, u := ts.poolUsage()
	return c, u, nil
}
