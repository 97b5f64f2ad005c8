package ebpfdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// The batch journal is p4tcd's write-ahead record of the Write in flight,
// pinned with the pipeline generation it writes to, so that a p4tcd killed
// in the middle of a batch (kill -9, OOM, a crash) leaves nothing of it
// behind: the next p4tcd's Restore takes back the kernel effects of a
// batch the journal shows begun and never committed, before it reads the
// maps. The Device opens a batch before a Write's first Apply and commits
// it before the Write's answer goes out (translator.BatchJournal).
//
// Before each map operation of an open batch, Apply appends what undoes
// it: the keys and the previous values (or their absence) of the map rows
// it is about to write, one record per run, the previous bytes of each
// side record, the tables whose default action changes. Records are
// appended to memory the kernel holds (mmapable BPF arrays, pinned), so
// the journal survives the process and costs a copy of each key (and of
// each previous value) per op and a few stores per run and per batch, not
// a syscall. Undo goes last to first; each row is restored as it was
// before its op, so undo is right whether or not the op took effect, and
// running it twice does no harm.
//
// Extern writes are journaled the same way (extjournal.go): the rows of
// the extern maps they change (members, groups, multicast groups, clone
// sessions, value set keys, register and meter cells) with their previous
// values, the extern records (p4tcd_externs) with their previous bytes,
// and counter cells with their previous sums and the value written, so
// that undo takes back the controller's write and keeps what the datapath
// counted since.
//
// What is not journaled is rebuilt from what is: ternary tables' hashes,
// mask lists and top priorities from the side records (Restore resyncs
// them), default slots from the default's side record. Deletes of entries
// the datapath created are not taken back (the datapath makes them again
// on the next packet).
//
// Segment layout: each segment is an mmapable BPF array of
// journalSegSize bytes pinned at <gen>/journal/<i>. Every segment starts
// with a u64, the end of its records; segment 0 then holds the header:
//
//	offset  8  u32 magic "p4jr"
//	offset 12  u32 state: 0 no batch open, 1 a batch is being applied
//	offset 16  u64 sequence number of the last batch begun
//	offset 24  u32 segments the open batch uses
//	offset 32  u64 changes journaled in the open batch (a map row, a side
//	           or extern record, a default action or a counter cell each)
//
// Records follow the header (segment 0) or the u64 (other segments), 8-byte
// aligned, never across segments:
//
//	u32 length (with this header and padding), u8 kind, u8 flags, u16 a
//	kind 1 name: a = map index; u16 length, the map's pin path under <gen>
//	kind 2 rows: a = map index, flags 1 = prev values present, 2 = the
//	             values hold a spin lock (written back with BPF_F_LOCK);
//	             u16 key size, u16 value size, u32 count, the keys, the
//	             prev values
//	kind 3 side: flags 1 = prev present; u32 table, u8 id[24], u32 length,
//	             prev record
//	kind 4 default: u32 table
//	kind 5 extern record: kind 3's layout, a record of p4tcd_externs
//	kind 6 counter cells: a = map index (a per-CPU counter map); u32
//	             state (0 journaled, 1 written: the write took effect),
//	             u32 count, u32 first cell, u32 reserved, u64 packets and
//	             u64 bytes written, then count × {u64 packets, u64 bytes},
//	             each cell's value before, summed over CPUs
//
// A record becomes part of the batch when the segment's end moves past it
// (publish: an atomic store after the records of a run are written), and
// the map operations they describe start after that: a record cut in half
// is no record, and its op never ran.
const (
	journalDirName = "journal"
	journalSegSize = 2 << 20
	// journalKeepSegs segments are kept for the next batch after one that
	// needed more; the rest are freed.
	journalKeepSegs = 4
	journalMagic    = 0x726a3470 // "p4jr"

	jUsedOff    = 0
	jMagicOff   = 8
	jStateOff   = 12
	jSeqOff     = 16
	jSegsOff    = 24
	jChangesOff = 32
	jHeadSize   = 64 // records start here in segment 0
	jSegHead    = 8  // and here in the others

	jStateIdle     = 0
	jStateApplying = 1

	jrecHead = 8

	jkName     = 1
	jkRows     = 2
	jkSide     = 3
	jkDefault  = 4
	jkExt      = 5
	jkCounters = 6

	jfPrev = 1
	jfLock = 2

	// States of a counter record: the write it describes may or may not
	// have taken effect, or it did.
	jcJournaled = 0
	jcWritten   = 1
)

var errJournalRecord = errors.New("malformed journal record")

// journal writes the batch journal of one pipeline. The Backend's mutex
// guards it.
type journal struct {
	dir  string // <gen>/journal
	segs []journalSeg
	// open is set between begin and commit: only then are records
	// written.
	open bool
	// cur and off are where the next record goes.
	cur, off int
	// changes counts the changes journaled in the open batch.
	changes uint64
	// names are the map indices of the open batch by pin path.
	names map[string]uint16
}

// journalSeg is one segment: its map and its memory.
type journalSeg struct {
	m   *ebpf.Map
	mem []byte
}

func (s *journalSeg) u64(off int) *uint64 { return (*uint64)(unsafe.Pointer(&s.mem[off])) }
func (s *journalSeg) u32(off int) *uint32 { return (*uint32)(unsafe.Pointer(&s.mem[off])) }

// newJournal creates an empty journal pinned under a generation directory.
func newJournal(genDir string) (*journal, error) {
	j := &journal{dir: filepath.Join(genDir, journalDirName)}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	if err := j.addSeg(); err != nil {
		return nil, err
	}
	h := &j.segs[0]
	atomic.StoreUint64(h.u64(jUsedOff), jHeadSize)
	atomic.StoreUint32(h.u32(jMagicOff), journalMagic)
	return j, nil
}

// openJournal opens the journal pinned under a generation directory, or
// creates one when there is none (pins of a p4tcd without journals).
func openJournal(genDir string) (*journal, error) {
	j := &journal{dir: filepath.Join(genDir, journalDirName)}
	for i := 0; ; i++ {
		m, err := ebpf.LoadPinnedMap(filepath.Join(j.dir, strconv.Itoa(i)), nil)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			j.close()
			return nil, fmt.Errorf("open journal segment %d: %w", i, err)
		}
		if err := j.mapSeg(m); err != nil {
			j.close()
			return nil, err
		}
	}
	if len(j.segs) == 0 {
		return newJournal(genDir)
	}
	if atomic.LoadUint32(j.segs[0].u32(jMagicOff)) != journalMagic {
		j.close()
		return nil, fmt.Errorf("open journal: %w: bad magic", errJournalRecord)
	}
	return j, nil
}

// addSeg creates, pins and maps the next segment.
func (j *journal) addSeg() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "p4tcd_journal", Type: ebpf.Array, KeySize: 4, ValueSize: 4096,
		MaxEntries: journalSegSize / 4096, Flags: bpfFMmapable,
	})
	if err != nil {
		return mapError(err, "create journal segment")
	}
	if err := m.Pin(filepath.Join(j.dir, strconv.Itoa(len(j.segs)))); err != nil {
		m.Close()
		return fmt.Errorf("pin journal segment: %w", err)
	}
	if err := j.mapSeg(m); err != nil {
		m.Unpin()
		return err
	}
	return nil
}

// mapSeg maps a segment's memory and appends it.
func (j *journal) mapSeg(m *ebpf.Map) error {
	mem, err := unix.Mmap(m.FD(), 0, journalSegSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		m.Close()
		return fmt.Errorf("map journal segment: %w", err)
	}
	j.segs = append(j.segs, journalSeg{m: m, mem: mem})
	return nil
}

// close unmaps and closes the segments; the pins stay. A batch still
// open stays open in them (its Write was never answered); the journal
// takes no more records.
func (j *journal) close() {
	if j == nil {
		return
	}
	j.open = false
	for _, s := range j.segs {
		unix.Munmap(s.mem)
		s.m.Close()
	}
	j.segs = nil
}

// begin opens a batch: a few stores into segment 0. A p4tcd killed
// before the last of them leaves the previous batch committed.
func (j *journal) begin() {
	if j == nil || len(j.segs) == 0 {
		return
	}
	h := &j.segs[0]
	j.open, j.cur, j.off, j.changes = true, 0, jHeadSize, 0
	clear(j.names)
	atomic.StoreUint64(h.u64(jUsedOff), jHeadSize)
	atomic.StoreUint32(h.u32(jSegsOff), 1)
	atomic.StoreUint64(h.u64(jChangesOff), 0)
	atomic.AddUint64(h.u64(jSeqOff), 1)
	atomic.StoreUint32(h.u32(jStateOff), jStateApplying)
}

// commit marks the open batch done, and frees segments beyond
// journalKeepSegs that it needed.
func (j *journal) commit() {
	if j == nil || !j.open {
		return
	}
	atomic.StoreUint32(j.segs[0].u32(jStateOff), jStateIdle)
	j.open = false
	for len(j.segs) > journalKeepSegs {
		s := j.segs[len(j.segs)-1]
		j.segs = j.segs[:len(j.segs)-1]
		unix.Munmap(s.mem)
		s.m.Unpin()
		s.m.Close()
	}
}

// add appends a record of n bytes (a multiple of 8) that journals changes
// changes, with its header filled in, and returns it for the caller to
// fill; publish makes it part of the batch.
func (j *journal) add(n int, kind, flags byte, a uint16, changes int) ([]byte, error) {
	if n > journalSegSize-jHeadSize {
		return nil, translator.Errorf(translator.ErrInvalid, "journal: a record of %d bytes does not fit a segment", n)
	}
	if j.off+n > journalSegSize {
		next := j.cur + 1
		if next == len(j.segs) {
			if err := j.addSeg(); err != nil {
				return nil, err
			}
		}
		j.publish()
		s := &j.segs[next]
		atomic.StoreUint64(s.u64(jUsedOff), jSegHead)
		atomic.StoreUint32(j.segs[0].u32(jSegsOff), uint32(next+1))
		j.cur, j.off = next, jSegHead
	}
	rec := j.segs[j.cur].mem[j.off : j.off+n]
	ne.PutUint32(rec[0:], uint32(n))
	rec[4], rec[5] = kind, flags
	ne.PutUint16(rec[6:], a)
	j.off += n
	j.changes += uint64(changes)
	return rec, nil
}

// publish makes the records added so far part of the batch. Every map
// operation of an open batch comes after the publish of its records.
func (j *journal) publish() {
	if !j.active() {
		return
	}
	atomic.StoreUint64(j.segs[j.cur].u64(jUsedOff), uint64(j.off))
	atomic.StoreUint64(j.segs[0].u64(jChangesOff), j.changes)
}

// mapIndex names a map (its pin path under the generation directory) in
// the open batch and returns its index for row records.
func (j *journal) mapIndex(name string) (uint16, error) {
	if !j.active() {
		return 0, nil
	}
	if idx, ok := j.names[name]; ok {
		return idx, nil
	}
	if j.names == nil {
		j.names = map[string]uint16{}
	}
	idx := uint16(len(j.names))
	n := pad8(jrecHead + 2 + len(name))
	rec, err := j.add(n, jkName, 0, idx, 0)
	if err != nil {
		return 0, err
	}
	ne.PutUint16(rec[8:], uint16(len(name)))
	copy(rec[10:], name)
	j.names[name] = idx
	return idx, nil
}

// rowsHead is the size of a rows record before its keys.
const rowsHead = jrecHead + 8

// rows adds a record for up to n rows of map idx that are about to change,
// with keys of ks bytes and, when vs > 0, their values before (vs bytes
// each; vs = 0: the rows did not exist). It returns how many rows the
// record holds (at least one; fewer than n when the segment is full) and
// the record's key and value areas for the caller to fill, row i at
// i·ks and i·vs. publish before changing the rows.
func (j *journal) rows(idx uint16, ks, vs, n int) (m int, keys, vals []byte, err error) {
	return j.rowsLocked(idx, ks, vs, n, false)
}

// rowsLocked is rows for a map whose values hold a spin lock when lock is
// set: undo writes them back under it.
func (j *journal) rowsLocked(idx uint16, ks, vs, n int, lock bool) (m int, keys, vals []byte, err error) {
	if ks <= 0 || ks > 0xffff || vs < 0 || vs > 0xffff || n <= 0 {
		return 0, nil, nil, translator.Errorf(translator.ErrInternal, "journal: %d rows of %d+%d bytes", n, ks, vs)
	}
	fit := func(free int) int {
		m := min(n, (free-rowsHead)/(ks+vs))
		for m > 0 && pad8(rowsHead+m*(ks+vs)) > free {
			m--
		}
		return m
	}
	if m = fit(journalSegSize - j.off); m <= 0 {
		m = fit(journalSegSize - max(jHeadSize, jSegHead)) // in the next segment
	}
	if m <= 0 {
		return 0, nil, nil, translator.Errorf(translator.ErrInvalid, "journal: a row of %d+%d bytes does not fit a segment", ks, vs)
	}
	var flags byte
	if vs > 0 {
		flags = jfPrev
	}
	if lock {
		flags |= jfLock
	}
	rec, err := j.add(pad8(rowsHead+m*(ks+vs)), jkRows, flags, idx, m)
	if err != nil {
		return 0, nil, nil, err
	}
	ne.PutUint16(rec[8:], uint16(ks))
	ne.PutUint16(rec[10:], uint16(vs))
	ne.PutUint32(rec[12:], uint32(m))
	keys = rec[rowsHead : rowsHead+m*ks]
	vals = rec[rowsHead+m*ks : rowsHead+m*(ks+vs)]
	return m, keys, vals, nil
}

// side records that a side record is about to change; prev is its bytes
// before, nil if there was none. publish before changing it.
func (j *journal) side(ref sideRef, prev []byte) error {
	return j.record(jkSide, ref, prev)
}

// ext records that a record of the extern store is about to change, as
// side does for side records.
func (j *journal) ext(ref sideRef, prev []byte) error {
	return j.record(jkExt, ref, prev)
}

// record journals a change of a side or extern store record.
func (j *journal) record(kind byte, ref sideRef, prev []byte) error {
	if !j.active() {
		return nil
	}
	n := pad8(jrecHead + 4 + len(ref.id) + 4 + len(prev))
	var flags byte
	if prev != nil {
		flags = jfPrev
	}
	rec, err := j.add(n, kind, flags, 0, 1)
	if err != nil {
		return err
	}
	ne.PutUint32(rec[8:], ref.table)
	copy(rec[12:], ref.id[:])
	ne.PutUint32(rec[36:], uint32(len(prev)))
	copy(rec[40:], prev)
	return nil
}

// counterHead is the size of a counter record before its cells;
// counterCellSize the size of a cell's value in it.
const (
	counterHead     = jrecHead + 32
	counterCellSize = 16
)

// counters adds a record for up to n cells of the per-CPU counter map
// idx, from cell first on, that are about to be set to w. It returns how
// many cells the record holds (fewer than n when the segment is full),
// the area for their values before (summed over CPUs: packets then
// bytes, counterCellSize bytes a cell) for the caller to fill, and the
// record's state word, to be set to jcWritten once the write took
// effect. publish before writing the cells.
func (j *journal) counters(idx uint16, first uint32, n int, w counterVal) (m int, prev []byte, state *uint32, err error) {
	if n <= 0 {
		return 0, nil, nil, translator.Errorf(translator.ErrInternal, "journal: %d counter cells", n)
	}
	fit := func(free int) int { return min(n, (free-counterHead)/counterCellSize) }
	if m = fit(journalSegSize - j.off); m <= 0 {
		m = fit(journalSegSize - max(jHeadSize, jSegHead)) // in the next segment
	}
	rec, err := j.add(counterHead+m*counterCellSize, jkCounters, 0, idx, m)
	if err != nil {
		return 0, nil, nil, err
	}
	ne.PutUint32(rec[8:], jcJournaled)
	ne.PutUint32(rec[12:], uint32(m))
	ne.PutUint32(rec[16:], first)
	ne.PutUint32(rec[20:], 0)
	ne.PutUint64(rec[24:], w.Packets)
	ne.PutUint64(rec[32:], w.Bytes)
	return m, rec[counterHead:], (*uint32)(unsafe.Pointer(&rec[8])), nil
}

// dflt records, and publishes, that a table's default action is about to
// change.
func (j *journal) dflt(table uint32) error {
	if !j.active() {
		return nil
	}
	rec, err := j.add(16, jkDefault, 0, 0, 1)
	if err != nil {
		return err
	}
	ne.PutUint32(rec[8:], table)
	j.publish()
	return nil
}

// active reports whether records are being taken: a batch is open and
// the journal is not closed.
func (j *journal) active() bool { return j != nil && j.open && len(j.segs) > 0 }

// journalRec is a record read back; a rows record reads back as one
// journalRec of kind jkRows per row.
type journalRec struct {
	kind  byte
	prev  bool
	lock  bool // rows: the map's values hold a spin lock
	a     uint16
	name  string // name
	key   []byte // rows
	val   []byte // rows, side, ext (the previous value or record), counters (the cells' sums before)
	table uint32 // side, default, ext
	id    sideID // side, ext
	// Counter cells: the first, how many, the value written, and the
	// record itself in the journal's memory (undo updates its state).
	first, count uint32
	written      counterVal
	raw          []byte
}

// pending returns the records of a batch the journal shows begun and not
// committed, in the order they were written, with the batch's sequence
// number; none when the last batch was committed.
func (j *journal) pending() ([]journalRec, uint64, error) {
	h := &j.segs[0]
	seq := atomic.LoadUint64(h.u64(jSeqOff))
	if atomic.LoadUint32(h.u32(jStateOff)) != jStateApplying {
		return nil, seq, nil
	}
	nsegs := int(atomic.LoadUint32(h.u32(jSegsOff)))
	if nsegs < 1 || nsegs > len(j.segs) {
		return nil, seq, fmt.Errorf("%w: the batch uses %d segments, %d are pinned", errJournalRecord, nsegs, len(j.segs))
	}
	var out []journalRec
	for i := range nsegs {
		s := &j.segs[i]
		start := jSegHead
		if i == 0 {
			start = jHeadSize
		}
		end := int(atomic.LoadUint64(s.u64(jUsedOff)))
		if end < start || end > journalSegSize {
			return nil, seq, fmt.Errorf("%w: segment %d ends at %d", errJournalRecord, i, end)
		}
		for off := start; off < end; {
			rs, n, err := decodeJournalRec(s.mem[off:end])
			if err != nil {
				return nil, seq, fmt.Errorf("segment %d offset %d: %w", i, off, err)
			}
			out = append(out, rs...)
			off += n
		}
	}
	return out, seq, nil
}

// decodeJournalRec decodes the record at the start of b (a rows record
// into one journalRec per row) and returns its length.
func decodeJournalRec(b []byte) ([]journalRec, int, error) {
	var r journalRec
	if len(b) < jrecHead {
		return nil, 0, errJournalRecord
	}
	n := int(ne.Uint32(b))
	if n < jrecHead || n%8 != 0 || n > len(b) {
		return nil, 0, fmt.Errorf("%w: length %d", errJournalRecord, n)
	}
	b = b[:n]
	r.kind, r.prev, r.lock, r.a = b[4], b[5]&jfPrev != 0, b[5]&jfLock != 0, ne.Uint16(b[6:])
	p := b[jrecHead:]
	cut := func(off, l int) []byte {
		if off < 0 || l < 0 || off+l > len(p) {
			return nil
		}
		return append([]byte(nil), p[off:off+l]...)
	}
	switch r.kind {
	case jkName:
		if len(p) < 2 {
			return nil, 0, errJournalRecord
		}
		name := cut(2, int(ne.Uint16(p)))
		if name == nil {
			return nil, 0, errJournalRecord
		}
		r.name = string(name)
	case jkRows:
		if len(p) < 8 {
			return nil, 0, errJournalRecord
		}
		ks, vs, count := int(ne.Uint16(p)), int(ne.Uint16(p[2:])), int(ne.Uint32(p[4:]))
		if !r.prev {
			vs = 0
		}
		if ks == 0 || count == 0 || count > (len(p)-8)/(ks+vs) {
			return nil, 0, fmt.Errorf("%w: %d rows of %d+%d bytes in %d", errJournalRecord, count, ks, vs, n)
		}
		out := make([]journalRec, count)
		for i := range out {
			out[i] = r
			out[i].key = cut(8+i*ks, ks)
			if r.prev {
				out[i].val = cut(8+count*ks+i*vs, vs)
			}
		}
		return out, n, nil
	case jkSide, jkExt:
		if len(p) < 32 {
			return nil, 0, errJournalRecord
		}
		r.table = ne.Uint32(p)
		copy(r.id[:], p[4:28])
		if r.prev {
			if r.val = cut(32, int(ne.Uint32(p[28:]))); r.val == nil {
				return nil, 0, errJournalRecord
			}
		}
	case jkDefault:
		if len(p) < 4 {
			return nil, 0, errJournalRecord
		}
		r.table = ne.Uint32(p)
	case jkCounters:
		if len(p) < counterHead-jrecHead {
			return nil, 0, errJournalRecord
		}
		r.count, r.first = ne.Uint32(p[4:]), ne.Uint32(p[8:])
		r.written = counterVal{Packets: ne.Uint64(p[16:]), Bytes: ne.Uint64(p[24:])}
		if r.count == 0 || uint64(r.count) > uint64(len(p)-32)/counterCellSize {
			return nil, 0, fmt.Errorf("%w: %d counter cells in %d", errJournalRecord, r.count, n)
		}
		r.val = cut(32, int(r.count)*counterCellSize)
		r.raw = b
	default:
		return nil, 0, fmt.Errorf("%w: kind %d", errJournalRecord, r.kind)
	}
	return []journalRec{r}, n, nil
}

// JournalState is what a pinned batch journal says (ReadPinnedJournal).
type JournalState struct {
	// Generation is the pipeline generation the journal belongs to.
	Generation uint64
	// Seq is the sequence number of the last batch begun.
	Seq uint64
	// Applying is set while a batch is open: between the Write's first
	// Apply and its commit, or, in a journal a dead p4tcd left, for a
	// batch the next Restore takes back.
	Applying bool
	// Changes counts the changes journaled in the open batch: map rows,
	// side and extern records, default actions, counter cells.
	Changes uint64
}

// ReadPinnedJournal reads the state of the batch journal of the newest
// pipeline generation pinned under pinRoot (the running one but during a
// pipeline change), from any process (like `bpftool map lookup pinned
// <pinRoot>/g<N>/journal/0 key 0 0 0 0`).
func ReadPinnedJournal(pinRoot string) (JournalState, error) {
	b := &Backend{root: pinRoot}
	gs, err := b.gens()
	if err != nil {
		return JournalState{}, err
	}
	if len(gs) == 0 {
		return JournalState{}, fmt.Errorf("read journal: nothing pinned under %s", pinRoot)
	}
	gen := gs[len(gs)-1]
	m, err := ebpf.LoadPinnedMap(filepath.Join(b.genDir(gen), journalDirName, "0"), nil)
	if err != nil {
		return JournalState{}, fmt.Errorf("read journal: %w", err)
	}
	defer m.Close()
	page := make([]byte, 4096)
	if err := m.Lookup(uint32(0), page); err != nil {
		return JournalState{}, fmt.Errorf("read journal: %w", err)
	}
	if ne.Uint32(page[jMagicOff:]) != journalMagic {
		return JournalState{}, fmt.Errorf("read journal: %w: bad magic", errJournalRecord)
	}
	return JournalState{
		Generation: gen, Seq: ne.Uint64(page[jSeqOff:]),
		Applying: ne.Uint32(page[jStateOff:]) == jStateApplying, Changes: ne.Uint64(page[jChangesOff:]),
	}, nil
}

// rollback takes back a batch the journal shows begun and never
// committed, before Restore reads the maps: last record first, each row
// put back as it was (or deleted), each side and extern record put back
// (or removed), each counter cell set back (undoCounters), then the
// default slots of the tables whose default changed rewritten from their
// side records (the program's initial default when there is none). It then marks the batch done and returns its sequence
// number and how many changes it undid (0: nothing was pending). A
// failure leaves the batch pending, so the next Restore tries again.
func (p *pipeline) rollback() (seq uint64, changes int, err error) {
	recs, seq, err := p.jr.pending()
	if err != nil {
		return seq, 0, fmt.Errorf("read journal: %w", err)
	}
	if len(recs) > 0 {
		if err := p.undo(recs); err != nil {
			return seq, 0, fmt.Errorf("roll back batch %d: %w", seq, err)
		}
	}
	atomic.StoreUint32(p.jr.segs[0].u32(jStateOff), jStateIdle)
	for _, r := range recs {
		switch r.kind {
		case jkName:
		case jkCounters:
			changes += int(r.count)
		default:
			changes++
		}
	}
	return seq, changes, nil
}

// undo carries out rollback's records.
func (p *pipeline) undo(recs []journalRec) error {
	maps := map[uint16]*ebpf.Map{}
	defer func() {
		for _, m := range maps {
			m.Close()
		}
	}()
	for _, r := range recs {
		if r.kind != jkName {
			continue
		}
		if !filepath.IsLocal(r.name) {
			return fmt.Errorf("%w: map %q", errJournalRecord, r.name)
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(p.dir, r.name), nil)
		if err != nil {
			return fmt.Errorf("open map %s: %w", r.name, err)
		}
		maps[r.a] = m
	}
	if _, err := p.side.load(); err != nil {
		return err
	}
	if p.ext != nil {
		if _, err := p.ext.store.load(); err != nil {
			return fmt.Errorf("read %s: %w", extStoreName, err)
		}
	}
	dflts := map[uint32]bool{}
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		switch r.kind {
		case jkRows:
			m := maps[r.a]
			if m == nil {
				return fmt.Errorf("%w: row of unnamed map %d", errJournalRecord, r.a)
			}
			flags := ebpf.UpdateAny
			if r.lock {
				flags = ebpf.UpdateLock
			}
			var err error
			if r.prev {
				err = m.Update(r.key, r.val, flags)
			} else if err = m.Delete(r.key); errors.Is(err, ebpf.ErrKeyNotExist) {
				err = nil
			}
			if err != nil {
				return fmt.Errorf("restore a row of map %s: %w", m.String(), err)
			}
		case jkSide:
			ref := sideRef{table: r.table, id: r.id}
			if err := p.side.del([]sideRef{ref}); err != nil {
				return err
			}
			if r.prev {
				if _, err := p.side.put([]sideRef{ref}, [][]byte{r.val}); err != nil {
					return err
				}
			}
		case jkExt:
			if p.ext == nil {
				return fmt.Errorf("%w: an extern record in a pipeline without externs", errJournalRecord)
			}
			ref := sideRef{table: r.table, id: r.id}
			if err := p.ext.store.del([]sideRef{ref}); err != nil {
				return err
			}
			if r.prev {
				if _, err := p.ext.store.put([]sideRef{ref}, [][]byte{r.val}); err != nil {
					return err
				}
			}
		case jkCounters:
			if p.ext == nil {
				return fmt.Errorf("%w: counter cells in a pipeline without externs", errJournalRecord)
			}
			m := maps[r.a]
			if m == nil {
				return fmt.Errorf("%w: counter cells of unnamed map %d", errJournalRecord, r.a)
			}
			if err := p.ext.undoCounters(m, r); err != nil {
				return err
			}
		case jkDefault:
			dflts[r.table] = true
		}
	}
	for table := range dflts {
		if err := p.rewriteDefault(table); err != nil {
			return err
		}
	}
	return nil
}

// rewriteDefault writes a table's default action in every tier from its
// side record, or the program's initial default when it has none.
func (p *pipeline) rewriteDefault(table uint32) error {
	t := p.cfg.Tables[table]
	if t == nil || p.byID[table] == nil {
		return fmt.Errorf("%w: table id %#x is not in the pipeline", errJournalRecord, table)
	}
	ac := t.InitialDefault
	if rec, ok := p.side.recs[sideRef{table: table}]; ok {
		se, _, err := decodeSaved(rec)
		if err != nil {
			return fmt.Errorf("table %s: default record: %w", t.Name, err)
		}
		ac = nil
		if se.ActionID != 0 {
			ar := t.Actions[se.ActionID]
			if ar == nil || len(se.Params) != len(ar.Action.Params) {
				return fmt.Errorf("table %s: the default record does not fit the table", t.Name)
			}
			ac = &translator.ActionCall{Action: ar.Action, Params: se.Params}
		}
	}
	for _, tr := range p.tiers() {
		if err := p.writeDefault(tr.byID[table], ac); err != nil {
			return err
		}
	}
	return nil
}

// BeginBatch opens a batch in the running pipeline's journal
// (translator.BatchJournal): until CommitBatch, Apply journals what undoes
// each map change before making it.
func (b *Backend) BeginBatch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.jr.begin()
	}
}

// CommitBatch marks the open batch done: a restart keeps its effects.
func (b *Backend) CommitBatch() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		b.cur.jr.commit()
	}
}
