package ebpfdp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

func TestSavedRoundTrip(t *testing.T) {
	for _, se := range []translator.SavedEntry{
		{TableID: 0x02000001, IsDefault: true, ActionID: 0x01000004},
		{TableID: 7, Priority: 42, ActionID: 9, Params: [][]byte{{1, 2}, {3}},
			Match: []translator.FieldMatch{{}, {Set: true, Value: []byte{1}, Mask: []byte{0xff}},
				{Set: true, Value: []byte{0x03, 0xe8}, High: []byte{0x07, 0xd0}}, {Set: true, Value: []byte{10}, PrefixLen: 8}},
			Const: true, Origin: translator.OriginDatapath, ControllerMetadata: 1 << 60,
			Metadata: []byte("cookie"), IdleTimeoutNs: -5, Placement: translator.PlaceHW},
		{TableID: 3, ActionID: 1, Placement: translator.PlaceSW},
	} {
		b := encodeSaved(&se, 77)
		got, h, err := decodeSaved(b)
		if err != nil || h != 77 || !reflect.DeepEqual(got, se) {
			t.Errorf("round trip of %+v: %+v handle %d err %v", se, got, h, err)
		}
		if _, _, err := decodeSaved(b[:len(b)-1]); err == nil {
			t.Errorf("truncated record decoded")
		}
	}
}

func FuzzDecodeSaved(f *testing.F) {
	se := translator.SavedEntry{TableID: 1, Match: []translator.FieldMatch{{Set: true, Value: []byte{1}}}, Params: [][]byte{{2}}}
	f.Add(encodeSaved(&se, 3))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		se, h, err := decodeSaved(b)
		if err != nil {
			return
		}
		if again, h2, err := decodeSaved(encodeSaved(&se, h)); err != nil || h2 != h || !reflect.DeepEqual(again, se) {
			t.Fatalf("re-encoding %+v: %+v %v", se, again, err)
		}
	})
}

func TestSideRows(t *testing.T) {
	ref := sideRef{table: 5, id: sideID{1, 2, 3}}
	for _, n := range []int{0, 1, sideChunkData, sideChunkData + 1, 3*sideChunkData + 7} {
		rec := make([]byte, n)
		for i := range rec {
			rec[i] = byte(i)
		}
		keys, vals := sideRows(ref, rec, nil, nil)
		want := max(1, (n+sideChunkData-1)/sideChunkData)
		if len(keys) != want {
			t.Errorf("%d bytes: %d chunks, want %d", n, len(keys), want)
		}
		var back []byte
		for i, v := range vals {
			if ne.Uint32(keys[i][4:]) != uint32(i) || ne.Uint32(v[0:]) != uint32(n) {
				t.Fatalf("%d bytes: chunk %d header wrong", n, i)
			}
			back = append(back, v[8:]...)
		}
		if string(back[:n]) != string(rec) {
			t.Errorf("%d bytes: data differs", n)
		}
	}
}

func TestEntryIDDistinguishes(t *testing.T) {
	a := []translator.FieldMatch{{Set: true, Value: []byte{1}, Mask: []byte{0xff}}}
	b := []translator.FieldMatch{{Set: true, Value: []byte{1}, Mask: []byte{0xfe}}}
	if entryID(a, 1) == entryID(b, 1) || entryID(a, 1) == entryID(a, 2) || entryID(a, 1) != entryID(a, 1) {
		t.Errorf("entry ids do not tell entries apart")
	}
}

// TestEntryIDStable pins entry ids: they key side records pinned by
// earlier versions, which a restart must find.
func TestEntryIDStable(t *testing.T) {
	wide := make([]byte, 300) // wider than entryID's stack buffer
	for i := range wide {
		wide[i] = byte(i)
	}
	for _, tc := range []struct {
		match []translator.FieldMatch
		prio  int32
		want  string
	}{
		{[]translator.FieldMatch{{Set: true, Value: []byte{0x0a, 0, 1, 0}, PrefixLen: 24}}, 0,
			"12517f9bead650eb80babad25ffb2c30de71b9197d7d5230"},
		{[]translator.FieldMatch{{}, {Set: true, Value: []byte{1}, Mask: []byte{0xff}}, {Set: true, Value: []byte{3}, High: []byte{7}}}, 9,
			"9bad50d0b1cf60d131c56a020414130bdf9382308bfea93d"},
		{[]translator.FieldMatch{{Set: true, Value: wide}}, -1,
			"1c99924dfb7b47ada8bc5e8d618d46a442b4d2ef21daa5b9"},
	} {
		id := entryID(tc.match, tc.prio)
		if got := hex.EncodeToString(id[:]); got != tc.want {
			t.Errorf("entryID(%v, %d) = %s, want %s", tc.match, tc.prio, got, tc.want)
		}
	}
	m := []translator.FieldMatch{{Set: true, Value: []byte{1, 2}}}
	if n := testing.AllocsPerRun(100, func() { entryID(m, 0) }); n != 0 {
		t.Errorf("entryID allocates %v times", n)
	}
}

func TestMapError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("batch update: %w", unix.E2BIG), translator.ErrFull},
		{unix.ENOSPC, translator.ErrFull},
		{unix.ENOMEM, translator.ErrFull},
		{ebpf.ErrKeyExist, translator.ErrExists},
		{fmt.Errorf("x: %w", ebpf.ErrKeyNotExist), translator.ErrNotFound},
		{unix.ENOENT, translator.ErrNotFound},
		{unix.EPERM, translator.ErrInternal},
	} {
		if got := mapError(tc.err, "table t"); !errors.Is(got, tc.want) {
			t.Errorf("mapError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestPrivilegedSideRecordCount follows the per-table record count that
// lets writes to tables without records skip entry ids: records come with
// metadata and go with it, with the entry, and across a restart.
func TestPrivilegedSideRecordCount(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t, true)
	nh := func(id uint16, meta string) p4test.Entry {
		e := p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(id))},
			Action: actForward, Params: [][]byte{macA, macR, u32(1)}}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		return e
	}
	records := func(want int) {
		t.Helper()
		side := &sw.b.cur.side
		n := 0
		for ref := range side.recs {
			if ref.table == tblNexthop {
				n++
			}
		}
		if n != want || side.tableHas(tblNexthop) != (want > 0) {
			t.Fatalf("%d records of the next-hop table, tableHas %v; want %d", n, side.tableHas(tblNexthop), want)
		}
	}
	sw.write(t, p4test.Insert(nh(1, "")), p4test.Insert(nh(2, "")))
	records(0)
	sw.write(t, p4test.Modify(nh(1, "one")))
	records(1)
	sw.write(t, p4test.Insert(nh(3, "three")))
	records(2)
	sw.write(t, p4test.Modify(nh(1, "")), p4test.Delete(nh(2, "")))
	records(1)
	before := readAll(t, sw.dev)

	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	sw.open(t, sw.ports, true)
	if restored, err := sw.dev.Restore(); err != nil || !restored {
		t.Fatalf("restore: %v %v", restored, err)
	}
	records(1)
	if after := readAll(t, sw.dev); !slices.Equal(before, after) {
		t.Errorf("restored entries differ:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	sw.write(t, p4test.Delete(nh(3, "")))
	records(0)
}
