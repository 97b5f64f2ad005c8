package server

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// TestWriteKeepsNothingOfTheRequest: the server decodes every Write into
// memory the next Write reuses, so the entries it stores must keep
// nothing of it. Entries of several match kinds, with metadata,
// modified with and without action and written non-canonically (the
// fallback that keeps a proto), must read back as written after many
// more Writes went through the same memory.
func TestWriteKeepsNothingOfTheRequest(t *testing.T) {
	e := newTestEnv(t)
	bigTable(e)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	exactT, lpmT, ternT := tableID(e, "ExactOne"), tableID(e, "LpmOne"), tableID(e, "TernaryTwo")
	a, b := actionID(e, "actionA"), actionID(e, "actionB")
	want := map[string]*p4v1.TableEntry{}
	key := func(te *p4v1.TableEntry) string {
		k, err := proto.MarshalOptions{Deterministic: true}.Marshal(&p4v1.TableEntry{TableId: te.TableId, Match: te.Match, Priority: te.Priority})
		if err != nil {
			t.Fatal(err)
		}
		return string(k)
	}
	var ups []*p4v1.Update
	for i := range 200 {
		ex := &p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(uint64(i+1)))},
			Action: act(a, canon(uint64(1000+i))), ControllerMetadata: uint64(i), Metadata: []byte{byte(i), 'm'}}
		lp := &p4v1.TableEntry{TableId: lpmT, Match: []*p4v1.FieldMatch{lpm(1, canon(uint64(i+1)<<8), 24)},
			Action: act(a, canon(uint64(i+7)))}
		tn := &p4v1.TableEntry{TableId: ternT, Priority: int32(i + 1),
			Match:  []*p4v1.FieldMatch{ternary(1, canon(uint64(i)<<16), canon(0xffff0000)), ternary(2, canon(0x50), canon(0xf0))},
			Action: act(a, canon(uint64(i)))}
		for _, te := range []*p4v1.TableEntry{ex, lp, tn} {
			want[key(te)] = proto.Clone(te).(*p4v1.TableEntry)
			ups = append(ups, insert(te))
		}
	}
	// Not canonical: stored from a copy, read back canonical.
	nc := &p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, be(5000, 4))}, Action: act(a, be(9, 3))}
	ups = append(ups, insert(nc))
	want[key(&p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(5000))}})] =
		&p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(5000))}, Action: act(a, canon(9))}
	if err := e.write(1, 0, ups...); err != nil {
		t.Fatal(err)
	}
	// MODIFY without action keeps the action; with one, replaces it.
	ups = ups[:0]
	for i := range 50 {
		m := &p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(uint64(i+1)))}, ControllerMetadata: 7}
		w := want[key(m)]
		w.ControllerMetadata, w.Metadata = 7, nil
		ups = append(ups, modify(m))
		m2 := &p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(uint64(i+101)))}, Action: act(b, canon(3))}
		want[key(m2)] = proto.Clone(m2).(*p4v1.TableEntry)
		ups = append(ups, modify(m2))
	}
	if err := e.write(1, 0, ups...); err != nil {
		t.Fatal(err)
	}
	// Churn through the same memory with other values.
	for round := range 6 {
		ups = ups[:0]
		for i := range 400 {
			ups = append(ups, insert(&p4v1.TableEntry{TableId: exactT, Match: []*p4v1.FieldMatch{exact(1, canon(uint64(10000+i)))},
				Action: act(a, canon(uint64(0xabcdef00+round))), Metadata: []byte{0xee, 0xee, 0xee}, ControllerMetadata: 0xdead}))
		}
		if err := e.write(1, 0, ups...); err != nil {
			t.Fatal(err)
		}
		for i := range ups {
			ups[i].Type = p4v1.Update_DELETE
		}
		if err := e.write(1, 0, ups...); err != nil {
			t.Fatal(err)
		}
	}
	ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{}))
	if err != nil {
		t.Fatal(err)
	}
	var nonDefault []*p4v1.TableEntry
	for _, x := range ents {
		if te := x.GetTableEntry(); !te.GetIsDefaultAction() {
			nonDefault = append(nonDefault, te)
		}
	}
	if len(nonDefault) != len(want) {
		t.Fatalf("read %d entries, want %d", len(nonDefault), len(want))
	}
	for _, got := range nonDefault {
		if w := want[key(got)]; !proto.Equal(got, w) {
			t.Fatalf("read back\n%v\nwant\n%v", got, w)
		}
	}
	// Filters read metadata from what was stored.
	ents, _, err = e.readAll(t, tableRead(&p4v1.TableEntry{TableId: exactT, ControllerMetadata: 7}))
	if err != nil || len(ents) != 50 {
		t.Fatalf("read by controller_metadata: %d entries (%v), want 50", len(ents), err)
	}
	ents, _, err = e.readAll(t, tableRead(&p4v1.TableEntry{TableId: exactT, Metadata: []byte{150, 'm'}}))
	if err != nil || len(ents) != 1 || ents[0].GetTableEntry().GetControllerMetadata() != 150 {
		t.Fatalf("read by metadata: %v (%v), want the entry of key 151", ents, err)
	}
}
