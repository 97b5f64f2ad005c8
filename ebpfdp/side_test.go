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

// TestNeedsSideMatchesSaved checks needsSide, which repeats by hand the
// fields of Saved that a map entry cannot hold, against a predicate on
// e.Saved() itself (its definition before it skipped building the
// SavedEntry): an entry needs a side record when its SavedEntry differs
// from a plain one in anything but what the map entry holds. Each field
// is set in turn on an entry the Device translated; a SavedEntry field
// this test does not know fails it, so that a new field cannot silently
// drop side records.
func TestNeedsSideMatchesSaved(t *testing.T) {
	// What the map entry (key, value, action) holds, and what only a side
	// record does (each set below).
	mapHeld := []string{"TableID", "Match", "Priority", "IsDefault", "ActionID", "Params", "Member", "Group"}
	sideOnly := []string{"ControllerMetadata", "Metadata", "IdleTimeoutNs", "Const", "Origin", "Placement", "Meter", "OneShot"}
	st := reflect.TypeFor[translator.SavedEntry]()
	for i := range st.NumField() {
		if f := st.Field(i).Name; !slices.Contains(mapHeld, f) && !slices.Contains(sideOnly, f) {
			t.Errorf("SavedEntry.%s is new: make needsSide see it if the map entry cannot hold it, and list it here", f)
		}
	}
	plainSaved := translator.SavedEntry{Origin: translator.OriginController, Placement: translator.PlaceBoth}
	savedNeeds := func(e *translator.Entry) bool {
		se := e.Saved()
		v := reflect.ValueOf(&se).Elem()
		for _, f := range mapHeld {
			v.FieldByName(f).SetZero()
		}
		if len(se.Metadata) == 0 {
			se.Metadata = nil
		}
		if len(se.OneShot) == 0 {
			se.OneShot = nil
		}
		return !reflect.DeepEqual(se, plainSaved)
	}

	rec := &recorder{Backend: translator.NewNoneBackend()}
	dev := translator.NewDevice(rec)
	if err := dev.SetPipeline(p4test.Commit, l3Pipeline(t)); err != nil {
		t.Fatal(err)
	}
	nh := func(id uint16) p4test.Entry {
		return p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(id))},
			Action: actForward, Params: [][]byte{macA, macR, u32(1)}}
	}
	cookie, meta := nh(2), nh(3)
	cookie.ControllerMetadata = 99
	meta.Metadata = []byte("m")
	if err := p4test.Write(dev, p4test.Insert(nh(1)), p4test.Insert(cookie), p4test.Insert(meta)); err != nil {
		t.Fatal(err)
	}
	if len(rec.ops) != 3 {
		t.Fatalf("%d ops recorded, want 3", len(rec.ops))
	}
	plain := rec.ops[0].Entry
	with := func(set func(e *translator.Entry)) *translator.Entry {
		e := *plain
		set(&e)
		return &e
	}
	for _, tc := range []struct {
		name string
		e    *translator.Entry
		want bool
	}{
		{"plain", plain, false},
		{"controller metadata", rec.ops[1].Entry, true},
		{"metadata", rec.ops[2].Entry, true},
		{"idle timeout", with(func(e *translator.Entry) { e.IdleTimeoutNs = 5e9 }), true},
		{"const", with(func(e *translator.Entry) { e.Const = true }), true},
		{"origin", with(func(e *translator.Entry) { e.Origin = translator.OriginDatapath }), true},
		{"placement sw", with(func(e *translator.Entry) { e.Placement = translator.PlaceSW }), true},
		{"placement hw", with(func(e *translator.Entry) { e.Placement = translator.PlaceHW }), true},
		{"direct counter only", with(func(e *translator.Entry) {
			e.Direct = &translator.DirectResources{Counter: translator.CounterData{Packets: 1}}
		}), false},
		{"meter", with(func(e *translator.Entry) {
			e.Direct = &translator.DirectResources{Meter: &translator.MeterConfig{CIR: 1, CBurst: 1, PIR: 2, PBurst: 2}}
		}), true},
		{"member", with(func(e *translator.Entry) { e.Action, e.Indirect = nil, &translator.IndirectAction{Member: 4} }), false},
		{"empty one-shot", with(func(e *translator.Entry) {
			e.Indirect = &translator.IndirectAction{Group: 7, OneShot: &translator.ActionSet{}}
		}), false},
		{"one-shot", with(func(e *translator.Entry) {
			e.Indirect = &translator.IndirectAction{Group: 7, OneShot: &translator.ActionSet{
				Actions: []translator.SetAction{{Action: plain.Action, Weight: 1, Member: 9}}}}
		}), true},
	} {
		got, old := needsSide(tc.e), savedNeeds(tc.e)
		if got != old || got != tc.want {
			t.Errorf("%s: needsSide %v, on Saved() %v; want %v", tc.name, got, old, tc.want)
		}
	}
}
