package server

import (
	"context"
	"errors"
	"io"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// bigTable makes ExactOne hold 20,000 entries.
func bigTable(e *testEnv) {
	for _, tb := range e.info.Tables {
		if tb.GetPreamble().GetName() == "ExactOne" {
			tb.Size = 20000
		}
	}
}

func TestReadLargeTableInChunks(t *testing.T) {
	e := newTestEnv(t)
	bigTable(e)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	const n = 12000
	var ups []*p4v1.Update
	for i := range n {
		ups = append(ups, insert(exactEntry(e, "ExactOne", uint64(i+1), "actionA", uint64(i))))
	}
	if err := e.write(1, 0, ups...); err != nil {
		t.Fatal(err)
	}
	ents, chunks, err := e.readAll(t, tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne")}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != n {
		t.Fatalf("read %d entries, want %d", len(ents), n)
	}
	if chunks < n/2500 {
		t.Errorf("%d entries came in %d responses; want chunks of at most 2500", n, chunks)
	}
	seen := map[string]bool{}
	for _, x := range ents {
		seen[string(x.GetTableEntry().GetMatch()[0].GetExact().GetValue())] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct entries, want %d", len(seen), n)
	}
}

func TestReadChunkBytes(t *testing.T) {
	e := newTestEnv(t, WithReadChunk(1000000, 4096))
	bigTable(e)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	var ups []*p4v1.Update
	for i := range 500 {
		te := exactEntry(e, "ExactOne", uint64(i+1), "actionA", 1)
		te.Metadata = make([]byte, 100)
		ups = append(ups, insert(te))
	}
	if err := e.write(1, 0, ups...); err != nil {
		t.Fatal(err)
	}
	rc, err := e.client.Read(context.Background(), &p4v1.ReadRequest{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{})}})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for {
		r, err := rc.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if sz := proto.Size(r); sz > 4096+200 {
			t.Errorf("a response of %d bytes; limit 4096", sz)
		}
		total += len(r.GetEntities())
	}
	if total != 500 {
		t.Errorf("read %d, want 500", total)
	}
}

// Entries read back in canonical form whatever padding the write used
// (read-write symmetry, §8.3).
func TestReadBackCanonical(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	te := &p4v1.TableEntry{TableId: tableID(e, "TernaryTwo"), Priority: 9,
		Match:  []*p4v1.FieldMatch{ternary(1, be(0x0a000000, 6), be(0xff000000, 4)), ternary(2, be(0x50, 2), be(0xf0, 3))},
		Action: act(actionID(e, "actionA"), be(0x1234, 6)), Metadata: []byte{0xff, 0x00}, ControllerMetadata: 77}
	if err := e.write(1, 0, insert(proto.Clone(te).(*p4v1.TableEntry))); err != nil {
		t.Fatal(err)
	}
	ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{TableId: tableID(e, "TernaryTwo")}))
	if err != nil || len(ents) != 1 {
		t.Fatalf("read: %v %v", ents, err)
	}
	got := ents[0].GetTableEntry()
	want := &p4v1.TableEntry{TableId: te.TableId, Priority: 9,
		Match:  []*p4v1.FieldMatch{ternary(1, canon(0x0a000000), canon(0xff000000)), ternary(2, canon(0x50), canon(0xf0))},
		Action: act(actionID(e, "actionA"), canon(0x1234)), Metadata: []byte{0xff, 0x00}, ControllerMetadata: 77}
	if !proto.Equal(got, want) {
		t.Errorf("read back\n%v\nwant\n%v", got, want)
	}
}

func TestReadFilters(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	tern := func(v uint64, prio int32, action string) *p4v1.TableEntry {
		te := &p4v1.TableEntry{TableId: tableID(e, "TernaryOne"), Priority: prio, Match: []*p4v1.FieldMatch{ternary(1, canon(v), canon(0xff))}}
		te.Action = act(actionID(e, action), canon(1))
		return te
	}
	one := exactEntry(e, "ExactOne", 1, "actionA", 1)
	one.ControllerMetadata = 5
	one.Metadata = []byte("m")
	if err := e.write(1, 0, insert(tern(1, 10, "actionA")), insert(tern(1, 20, "actionA")), insert(tern(2, 10, "actionA")), insert(one),
		insert(exactEntry(e, "ExactOne", 2, "actionB", 1))); err != nil {
		t.Fatal(err)
	}
	tid := tableID(e, "TernaryOne")
	tests := []struct {
		name string
		req  *p4v1.TableEntry
		want int
	}{
		{"all tables", &p4v1.TableEntry{}, 5},
		{"one table", &p4v1.TableEntry{TableId: tid}, 3},
		{"by priority", &p4v1.TableEntry{TableId: tid, Priority: 10}, 2},
		{"by match, any priority", &p4v1.TableEntry{TableId: tid, Match: []*p4v1.FieldMatch{ternary(1, canon(1), canon(0xff))}}, 2},
		{"by match and priority", &p4v1.TableEntry{TableId: tid, Priority: 20, Match: []*p4v1.FieldMatch{ternary(1, canon(1), canon(0xff))}}, 1},
		{"by missing key", &p4v1.TableEntry{TableId: tid, Priority: 20, Match: []*p4v1.FieldMatch{ternary(1, canon(3), canon(0xff))}}, 0},
		{"by action", &p4v1.TableEntry{TableId: tableID(e, "ExactOne"), Action: act(actionID(e, "actionB"))}, 1},
		{"by controller metadata", &p4v1.TableEntry{TableId: tableID(e, "ExactOne"), ControllerMetadata: 5}, 1},
		{"by metadata", &p4v1.TableEntry{TableId: tableID(e, "ExactOne"), Metadata: []byte("m")}, 1},
		{"default entry", &p4v1.TableEntry{TableId: tid, IsDefaultAction: true}, 1},
		{"all default entries", &p4v1.TableEntry{IsDefaultAction: true}, len(e.info.GetTables())},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ents, _, err := e.readAll(t, tableRead(tc.req))
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != tc.want {
				t.Errorf("%d entities, want %d: %v", len(ents), tc.want, ents)
			}
		})
	}
}

func TestReadDefaultEntry(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	tid := tableID(e, "ExactOne")
	readDefault := func() *p4v1.TableEntry {
		ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{TableId: tid, IsDefaultAction: true}))
		if err != nil || len(ents) != 1 {
			t.Fatalf("default read: %v %v", ents, err)
		}
		return ents[0].GetTableEntry()
	}
	// The program's default (NoAction here).
	if got := readDefault(); !got.GetIsDefaultAction() || got.GetAction().GetAction().GetActionId() != actionID(e, "NoAction") {
		t.Errorf("initial default: %v", got)
	}
	set := &p4v1.TableEntry{TableId: tid, IsDefaultAction: true, Action: act(actionID(e, "actionB"), canon(4))}
	if err := e.write(1, 0, modify(set)); err != nil {
		t.Fatal(err)
	}
	if got := readDefault(); got.GetAction().GetAction().GetActionId() != actionID(e, "actionB") {
		t.Errorf("modified default: %v", got)
	}
	// MODIFY without action resets it (§9.1.3).
	if err := e.write(1, 0, modify(&p4v1.TableEntry{TableId: tid, IsDefaultAction: true})); err != nil {
		t.Fatal(err)
	}
	if got := readDefault(); got.GetAction().GetAction().GetActionId() != actionID(e, "NoAction") {
		t.Errorf("reset default: %v", got)
	}
}

func TestReadErrorsPerRequest(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	ents, _, err := e.readAll(t,
		tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne")}),
		&p4v1.Entity{}, // no entity set
		tableRead(&p4v1.TableEntry{TableId: 0x02000999}),
		tableRead(&p4v1.TableEntry{Priority: 3}), // table_id 0 with a filter
		&p4v1.Entity{Entity: &p4v1.Entity_ExternEntry{ExternEntry: &p4v1.ExternEntry{}}},
	)
	if len(ents) != 1 {
		t.Errorf("entities of the good request: %d, want 1", len(ents))
	}
	st, _ := status.FromError(err)
	if st.Code() != codes.Unknown || len(st.Details()) != 5 {
		t.Fatalf("read status %v with %d details", st.Code(), len(st.Details()))
	}
	want := []codes.Code{codes.OK, codes.InvalidArgument, codes.InvalidArgument, codes.InvalidArgument, codes.Unimplemented}
	for i, d := range st.Details() {
		if got := codes.Code(d.(*p4v1.Error).GetCanonicalCode()); got != want[i] {
			t.Errorf("request %d: %v, want %v", i, got, want[i])
		}
	}
}

func TestTableFull(t *testing.T) {
	e := newTestEnv(t)
	for _, tb := range e.info.Tables {
		if tb.GetPreamble().GetName() == "ExactOne" {
			tb.Size = 2
		}
	}
	e.primary(t, 1)
	e.setPipeline(t, 1)
	err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), insert(exactEntry(e, "ExactOne", 2, "actionA", 1)), insert(exactEntry(e, "ExactOne", 3, "actionA", 1)))
	ds := details(t, err)
	if codes.Code(ds[2].GetCanonicalCode()) != codes.ResourceExhausted {
		t.Errorf("third insert into a 2-entry table: %v, want RESOURCE_EXHAUSTED", ds[2])
	}
	// Deleting makes room again.
	if err := e.write(1, 0, del(exactEntry(e, "ExactOne", 1, "actionA", 0)), insert(exactEntry(e, "ExactOne", 3, "actionA", 1))); err != nil {
		t.Errorf("insert after delete: %v", err)
	}
}

// Reads reuse an entry's encoding; a MODIFY makes a new entry, so the next
// Read shows the new action.
func TestReadAfterModify(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 5, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	param := func() string {
		ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne")}))
		if err != nil || len(ents) != 1 {
			t.Fatalf("read: %v %v", ents, err)
		}
		return string(ents[0].GetTableEntry().GetAction().GetAction().GetParams()[0].GetValue())
	}
	if got := param(); got != "\x01" {
		t.Fatalf("param %q", got)
	}
	if got := param(); got != "\x01" { // from the cached encoding
		t.Fatalf("second read: param %q", got)
	}
	if err := e.write(1, 0, modify(exactEntry(e, "ExactOne", 5, "actionA", 2))); err != nil {
		t.Fatal(err)
	}
	if got := param(); got != "\x02" {
		t.Errorf("after MODIFY: param %q, want 0x02", got)
	}
}
