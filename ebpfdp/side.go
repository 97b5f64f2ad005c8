package ebpfdp

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// The side map keeps, next to the datapath maps and pinned with them, what
// those maps cannot hold but a restarted p4tcd must give back
// (translator.SavedEntry): controller metadata, metadata, idle timeouts,
// const and origin flags, and the whole of every ternary entry (range
// bounds, optional fields and entries that lose their masked key to a
// higher priority are not in the TSS hash as they were written). Records
// are p4tcd's own binary encoding of a SavedEntry, split in chunks.
//
// Key: struct { u32 table; u32 chunk; u8 id[24]; }  (table: P4Info id)
// Value: struct { u32 len; u32 reserved; u8 data[248]; }  (len in chunk 0)
const (
	sideKeySize   = 32
	sideValueSize = 256
	sideChunkData = sideValueSize - 8
	// sideMapName names the side map in bpffs (p4tcd's, not the datapath's).
	sideMapName = "p4tcd_side"
)

// sideID identifies an entry within its table: a digest of its match and
// priority. The default entry's id is all zero.
type sideID [24]byte

// sideRef names one record.
type sideRef struct {
	table uint32
	id    sideID
}

type sideRow = [sideKeySize]byte
type sideVal = [sideValueSize]byte

// entryID computes the side id of an entry from its match and priority.
// Every write to an exact or LPM table computes one, so the digest input
// is built on the stack (a key wider than the buffer spills to the heap,
// with the same result) and hashed without a hasher object.
func entryID(match []translator.FieldMatch, prio int32) sideID {
	var buf [256]byte
	b := buf[:0]
	for i := range match {
		fm := &match[i]
		if !fm.Set {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendBytes(b, fm.Value)
		b = appendBytes(b, fm.Mask)
		b = appendBytes(b, fm.High)
		b = binary.AppendUvarint(b, uint64(fm.PrefixLen))
	}
	b = binary.AppendVarint(b, int64(prio))
	sum := sha256.Sum256(b)
	var id sideID
	copy(id[:], sum[:])
	return id
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// needsSide reports whether an exact or LPM entry carries anything its map
// entry cannot hold (a placement other than both included: an entry
// placed hw is only in the XDP tier's map).
//
// It asks e for what Saved would hold, without building the SavedEntry:
// it runs for every entry stored, and the metadata, the one part found by
// walking the Read form, comes last and is often known absent
// (HasMetadata).
func needsSide(e *translator.Entry) bool {
	if e.IdleTimeoutNs != 0 || e.Const || e.Origin != translator.OriginController || e.Placement != translator.PlaceBoth {
		return true
	}
	if e.Direct != nil && e.Direct.Meter != nil {
		return true
	}
	if ind := e.Indirect; ind != nil && ind.OneShot != nil && len(ind.OneShot.Actions) > 0 {
		return true
	}
	return e.HasMetadata()
}

const sideVersion = 1

// encodeSaved encodes a SavedEntry and, for ternary entries, the handle it
// owns TSS slots with.
func encodeSaved(se *translator.SavedEntry, handle uint32) []byte {
	return encodeSavedCell(se, handle, 0)
}

// encodeSavedCell is encodeSaved with the entry's direct cell (ternary
// entries of direct tables: their values are rebuilt from the record).
func encodeSavedCell(se *translator.SavedEntry, handle, cell uint32) []byte {
	b := []byte{sideVersion}
	var flags byte
	if se.IsDefault {
		flags |= 1
	}
	if se.Const {
		flags |= 2
	}
	flags |= byte(se.Placement) << 2 // bits 2-3; 0 (both) in older records
	b = append(b, flags, byte(se.Origin))
	b = binary.AppendUvarint(b, uint64(se.TableID))
	b = binary.AppendVarint(b, int64(se.Priority))
	b = binary.AppendUvarint(b, uint64(se.ActionID))
	b = binary.AppendUvarint(b, uint64(len(se.Params)))
	for _, p := range se.Params {
		b = appendBytes(b, p)
	}
	b = binary.AppendUvarint(b, uint64(len(se.Match)))
	for i := range se.Match {
		fm := &se.Match[i]
		if !fm.Set {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		b = appendBytes(b, fm.Value)
		b = appendBytes(b, fm.Mask)
		b = appendBytes(b, fm.High)
		b = binary.AppendUvarint(b, uint64(fm.PrefixLen))
	}
	b = binary.AppendUvarint(b, se.ControllerMetadata)
	b = appendBytes(b, se.Metadata)
	b = binary.AppendVarint(b, se.IdleTimeoutNs)
	b = binary.AppendUvarint(b, uint64(handle))
	return appendSavedExt(b, se, cell)
}

var errSideRecord = errors.New("malformed side record")

// decodeSaved decodes encodeSaved's output.
func decodeSaved(b []byte) (se translator.SavedEntry, handle uint32, err error) {
	se, handle, _, err = decodeSavedCell(b)
	return se, handle, err
}

// decodeSavedCell decodes encodeSavedCell's output.
func decodeSavedCell(b []byte) (se translator.SavedEntry, handle, cell uint32, err error) {
	d := decoder{b: b}
	if v := d.byte(); v != sideVersion {
		return se, 0, 0, fmt.Errorf("%w: version %d", errSideRecord, v)
	}
	flags := d.byte()
	se.IsDefault, se.Const = flags&1 != 0, flags&2 != 0
	se.Placement = translator.Placement(flags >> 2 & 3)
	if se.Placement > translator.PlaceHW {
		return se, 0, 0, fmt.Errorf("%w: placement %d", errSideRecord, se.Placement)
	}
	se.Origin = translator.Origin(d.byte())
	se.TableID = uint32(d.uvarint())
	se.Priority = int32(d.varint())
	se.ActionID = uint32(d.uvarint())
	if n := d.count(); n > 0 {
		se.Params = make([][]byte, n)
		for i := range se.Params {
			se.Params[i] = d.bytes()
		}
	}
	if n := d.count(); n > 0 {
		se.Match = make([]translator.FieldMatch, n)
		for i := range se.Match {
			if d.byte() == 0 {
				continue
			}
			fm := &se.Match[i]
			fm.Set = true
			fm.Value, fm.Mask, fm.High = d.bytes(), d.bytes(), d.bytes()
			fm.PrefixLen = int(d.uvarint())
		}
	}
	se.ControllerMetadata = d.uvarint()
	se.Metadata = d.bytes()
	se.IdleTimeoutNs = d.varint()
	handle = uint32(d.uvarint())
	if len(d.b) > 0 {
		cell = d.savedExt(&se)
	}
	if d.err != nil || len(d.b) != 0 {
		return translator.SavedEntry{}, 0, 0, errSideRecord
	}
	return se, handle, cell, nil
}

// decoder reads encodeSaved's format; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() { d.err, d.b = errSideRecord, nil }

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	x := d.b[0]
	d.b = d.b[1:]
	return x
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

// count reads a length that must fit in what is left.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil || n == 0 {
		return nil
	}
	v := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return v
}

// sideRows splits a record into the side map's rows.
func sideRows(ref sideRef, rec []byte, keys []sideRow, vals []sideVal) ([]sideRow, []sideVal) {
	for c := range sideChunks(len(rec)) {
		var k sideRow
		ne.PutUint32(k[0:], ref.table)
		ne.PutUint32(k[4:], uint32(c))
		copy(k[8:], ref.id[:])
		var v sideVal
		ne.PutUint32(v[0:], uint32(len(rec)))
		copy(v[8:], rec[min(len(rec), c*sideChunkData):])
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals
}

func sideRowKey(ref sideRef, chunk int) sideRow {
	var k sideRow
	ne.PutUint32(k[0:], ref.table)
	ne.PutUint32(k[4:], uint32(chunk))
	copy(k[8:], ref.id[:])
	return k
}

// sideStore writes and deletes side records and keeps a copy of each
// (what the journal needs to put one back). It belongs to one pipeline;
// the Backend's mutex guards it.
type sideStore struct {
	m    *ebpf.Map
	recs map[sideRef][]byte
	// perTable counts the records of each table: a table that has none
	// (most exact and LPM tables) skips computing entry ids on writes
	// that leave no record.
	perTable map[uint32]int
	// jr is the pipeline's batch journal: changes made while a batch is
	// open are journaled first.
	jr *journal
}

// sideChunks is the number of rows a record of n bytes takes.
func sideChunks(n int) int { return max(1, (n+sideChunkData-1)/sideChunkData) }

// put writes records (ref i gets rec i). It returns how many records were
// written entirely. recs must not change afterwards.
func (s *sideStore) put(refs []sideRef, recs [][]byte) (int, error) {
	var keys []sideRow
	var vals []sideVal
	ends := make([]int, len(refs)) // row index after each record
	for i, ref := range refs {
		keys, vals = sideRows(ref, recs[i], keys, vals)
		ends[i] = len(keys)
	}
	if s.jr.active() {
		for _, ref := range refs {
			if err := s.jr.side(ref, s.recs[ref]); err != nil {
				return 0, err
			}
		}
		s.jr.publish()
	}
	n, err := s.m.BatchUpdate(keys, vals, nil)
	if err != nil && n >= len(keys) {
		n = 0 // refused before the first element
	}
	done := 0
	for done < len(refs) && ends[done] <= n {
		done++
	}
	for i := 0; i < done; i++ {
		ref := refs[i]
		old, had := s.recs[ref]
		s.recs[ref] = recs[i]
		if !had {
			if s.perTable == nil {
				s.perTable = map[uint32]int{}
			}
			s.perTable[ref.table]++
		}
		for c := sideChunks(len(recs[i])); had && c < sideChunks(len(old)); c++ {
			k := sideRowKey(ref, c)
			_ = s.m.Delete(&k) // a shorter record: drop its old tail
		}
	}
	if err != nil {
		return done, mapError(err, "write side records")
	}
	return done, nil
}

// has reports whether ref has a record.
func (s *sideStore) has(ref sideRef) bool {
	_, ok := s.recs[ref]
	return ok
}

// tableHas reports whether any entry of a table (default aside or not)
// has a record.
func (s *sideStore) tableHas(table uint32) bool {
	return s.perTable[table] > 0
}

// del removes the records of refs that exist.
func (s *sideStore) del(refs []sideRef) error {
	var keys []sideRow
	for _, ref := range refs {
		rec, ok := s.recs[ref]
		if !ok {
			continue
		}
		if err := s.jr.side(ref, rec); err != nil {
			return err
		}
		for c := range sideChunks(len(rec)) {
			keys = append(keys, sideRowKey(ref, c))
		}
		delete(s.recs, ref)
		s.perTable[ref.table]--
	}
	if len(keys) == 0 {
		return nil
	}
	s.jr.publish()
	if _, err := s.m.BatchDelete(keys, nil); err != nil {
		return mapError(err, "delete side records")
	}
	return nil
}

// load reads every record of the side map, keyed by ref, and keeps a copy
// of each.
func (s *sideStore) load() (map[sideRef][]byte, error) {
	type part struct {
		n    int // total length
		data map[int][]byte
	}
	parts := map[sideRef]*part{}
	var k sideRow
	var v sideVal
	it := s.m.Iterate()
	for it.Next(&k, &v) {
		ref := sideRef{table: ne.Uint32(k[0:])}
		copy(ref.id[:], k[8:])
		pt := parts[ref]
		if pt == nil {
			pt = &part{data: map[int][]byte{}}
			parts[ref] = pt
		}
		c := int(ne.Uint32(k[4:]))
		pt.data[c] = append([]byte(nil), v[8:]...)
		if c == 0 {
			pt.n = int(ne.Uint32(v[0:]))
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read side map: %w", err)
	}
	out := make(map[sideRef][]byte, len(parts))
	var broken []sideRow
	for ref, pt := range parts {
		rec := make([]byte, 0, pt.n)
		for c := 0; len(rec) < pt.n; c++ {
			d, ok := pt.data[c]
			if !ok {
				break
			}
			rec = append(rec, d[:min(len(d), pt.n-len(rec))]...)
		}
		if _, ok := pt.data[0]; !ok || len(rec) < pt.n {
			// A write that failed half way: its op failed too.
			for c := range pt.data {
				broken = append(broken, sideRowKey(ref, c))
			}
			continue
		}
		out[ref] = rec
	}
	if len(broken) > 0 {
		if _, err := s.m.BatchDelete(broken, nil); err != nil {
			return nil, fmt.Errorf("drop incomplete side records: %w", err)
		}
	}
	s.recs = make(map[sideRef][]byte, len(out))
	s.perTable = map[uint32]int{}
	for ref, rec := range out {
		s.recs[ref] = rec
		s.perTable[ref.table]++
	}
	return out, nil
}

// rows views buf as a slice of size-byte arrays, the form cilium/ebpf's
// batch operations take, without copying.
func rows(buf []byte, size int) any {
	n := len(buf) / size
	row := reflect.ArrayOf(size, reflect.TypeFor[byte]())
	if n == 0 {
		return reflect.MakeSlice(reflect.SliceOf(row), 0, 0).Interface()
	}
	return reflect.NewAt(reflect.ArrayOf(n, row), unsafe.Pointer(unsafe.SliceData(buf))).Elem().Slice(0, n).Interface()
}
