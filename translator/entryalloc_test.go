package translator

import (
	"bytes"
	"testing"
	"unsafe"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// TestEntryAllocSize: an entryAlloc fills its size class exactly (a
// field added elsewhere must come out of entryMem, or the block moves up
// a class), and mem is its last field, so that no pointer follows the
// bytes and the collector stops before them.
func TestEntryAllocSize(t *testing.T) {
	var a entryAlloc
	if got := unsafe.Sizeof(a); got != entryBlock {
		t.Errorf("entryAlloc is %d bytes, want %d: set entryMem to %d", got, entryBlock, entryMem+int(entryBlock)-int(got))
	}
	if end := unsafe.Offsetof(a.mem) + unsafe.Sizeof(a.mem); end != unsafe.Sizeof(a) {
		t.Errorf("entryAlloc.mem ends at %d of %d bytes: it must be the last field", end, unsafe.Sizeof(a))
	}
}

// inMem reports whether b lies in the mem of the block e was allocated
// in.
func inMem(e *Entry, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(&e.alloc.mem[0]))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(b)) <= lo+entryMem
}

// TestEntryOwnBytes: an entry written from a reused request keeps its
// blobs, store key, Read form and values in its own block, one
// allocation; the store key, a view of those bytes, stays the key its
// map slot is filed under while the request memory is reused and other
// entries come and go; a copy of an entry cannot carve more bytes from
// the original's block.
func TestEntryOwnBytes(t *testing.T) {
	d, ref := wireDevice(t), wireDevice(t)
	mac := []byte{2, 0, 0, 0, 0, 9}
	transientWrite(t, d, ref, p4v1.Update_INSERT,
		&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}, Action: waction(10, []byte{7}, mac)},
		&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0, 0x35)}, Action: waction(10, []byte{0, 8}, mac)},
		&p4v1.TableEntry{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 1, 0, 0)}, Action: waction(10, []byte{1}, mac)})
	type saved struct {
		e         *Entry
		skey, key string
	}
	var kept []saved
	for _, id := range []uint32{1, 2} {
		for k, e := range d.st.tables[id].entries {
			if e.alloc == nil || &e.alloc.Entry != e {
				t.Fatalf("table %d: entry %x not in its own block", id, e.Key)
			}
			parts := [][]byte{e.Key, e.Mask, e.wire, unsafe.Slice(unsafe.StringData(e.skey), len(e.skey))}
			for _, fm := range e.Match {
				parts = append(parts, fm.Value, fm.Mask, fm.High)
			}
			parts = append(parts, e.Action.Params...)
			for i, p := range parts {
				if !inMem(e, p) {
					t.Errorf("table %d: entry %x: part %d (%x) is not in the entry's block", id, e.Key, i, p)
				}
			}
			if k != e.skey || e.skey != storeKey(e.Table, e.Match, e.Priority) {
				t.Errorf("table %d: filed under %x, skey %x, want %x", id, k, e.skey, storeKey(e.Table, e.Match, e.Priority))
			}
			kept = append(kept, saved{e, string([]byte(e.skey)), string(e.Key)})
			c := *e
			if c.ownBytes(1) != nil {
				t.Errorf("table %d: a copy of an entry carved its block", id)
			}
		}
	}
	before := storedState(d)
	// Other entries come and go, a delete fails and rolls back, on
	// request memory that is reused each time.
	for i := range 3 {
		transientWrite(t, d, ref, p4v1.Update_INSERT,
			&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x77, byte(i))}, Action: waction(10, []byte{0x77}, mac)})
		transientWrite(t, d, ref, p4v1.Update_DELETE,
			&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x77, byte(i))}})
		ups := []*p4v1.Update{
			{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}}}}},
			{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x66)}}}}},
		}
		if errs, err := d.Write(ups, p4v1.WriteRequest_ROLLBACK_ON_ERROR, nil); err == nil && errs == nil {
			t.Fatal("a batch with a missing entry succeeded")
		}
	}
	if after := storedState(d); after != before {
		t.Errorf("the store changed:\nbefore %s\nafter  %s", before, after)
	}
	for _, s := range kept {
		ts := d.st.tables[s.e.Table.ID]
		if got := ts.entries[s.skey]; got != s.e {
			t.Errorf("entry %x: found %p under its key, want %p", s.key, got, s.e)
		}
		if s.e.skey != s.skey || !bytes.Equal(s.e.Key, []byte(s.key)) {
			t.Errorf("entry %x: skey %x key %x changed", s.key, s.e.skey, s.e.Key)
		}
	}
	for k, e := range d.st.tables[1].entries {
		if k != e.skey {
			t.Errorf("table 1: filed under %x, skey %x", k, e.skey)
		}
	}
}
