package server

import (
	"context"
	"fmt"
	"sync"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// A batch with failures answers UNKNOWN with one p4.v1.Error per update in
// grpc-status-details-bin, OK ones carrying nothing but code 0 (§12.5).
func TestWriteErrorDetailsFromTrailer(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	good := exactEntry(e, "ExactOne", 1, "actionA", 1)
	err := e.write(1, p4v1.WriteRequest_CONTINUE_ON_ERROR,
		insert(good),
		insert(exactEntry(e, "ExactOne", 1, "actionA", 2)), // duplicate
		insert(exactEntry(e, "ExactOne", 2, "actionA", 2)),
		del(exactEntry(e, "ExactOne", 99, "actionA", 0)), // missing
	)
	ds := details(t, err)
	want := []codes.Code{codes.OK, codes.AlreadyExists, codes.OK, codes.NotFound}
	if len(ds) != len(want) {
		t.Fatalf("%d details, want %d", len(ds), len(want))
	}
	for i, d := range ds {
		if codes.Code(d.GetCanonicalCode()) != want[i] {
			t.Errorf("update %d: %v, want %v", i, d, want[i])
		}
		if want[i] == codes.OK && (d.GetMessage() != "" || d.GetSpace() != "") {
			t.Errorf("update %d: OK detail carries %v", i, d)
		}
	}
	// CONTINUE_ON_ERROR applied the good ones.
	if n := countEntries(t, e); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

func TestWriteInOrder(t *testing.T) {
	// fabric-p4test tears down with one batch in reverse order; a batch
	// that inserts, modifies and deletes the same key must see each step.
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	err := e.write(1, 0,
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)),
		modify(exactEntry(e, "ExactOne", 1, "actionA", 2)),
		del(exactEntry(e, "ExactOne", 1, "actionA", 0)),
		insert(exactEntry(e, "ExactOne", 1, "actionA", 3)),
	)
	if err != nil {
		t.Fatal(err)
	}
	ents, _, _ := e.readAll(t, tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne")}))
	if len(ents) != 1 || string(ents[0].GetTableEntry().GetAction().GetAction().GetParams()[0].GetValue()) != "\x03" {
		t.Fatalf("after the batch: %v", ents)
	}
}

func TestWriteRollbackOnErrorLeavesNoTrace(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 7, "actionA", 7))); err != nil {
		t.Fatal(err)
	}
	before := readState(t, e)
	err := e.write(1, p4v1.WriteRequest_ROLLBACK_ON_ERROR,
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)),
		modify(exactEntry(e, "ExactOne", 7, "actionA", 8)),
		del(exactEntry(e, "ExactOne", 7, "actionA", 0)),
		modify(&p4v1.TableEntry{TableId: tableID(e, "ExactOne"), IsDefaultAction: true, Action: act(actionID(e, "actionB"), canon(5))}),
		insert(exactEntry(e, "ExactOne", 7, "actionA", 9)),
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), // duplicate of update 0: fails
		insert(exactEntry(e, "ExactOne", 3, "actionA", 3)),
	)
	ds := details(t, err)
	for i, d := range ds {
		want := codes.Aborted
		if i == 5 {
			want = codes.AlreadyExists
		}
		if codes.Code(d.GetCanonicalCode()) != want {
			t.Errorf("update %d: %v, want %v", i, d, want)
		}
	}
	if after := readState(t, e); after != before {
		t.Errorf("ROLLBACK_ON_ERROR left a trace:\nbefore %s\nafter  %s", before, after)
	}
}

func TestWriteDataplaneAtomic(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	before := readState(t, e)
	err := e.write(1, p4v1.WriteRequest_DATAPLANE_ATOMIC,
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)),
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), // duplicate: the batch fails
	)
	ds := details(t, err)
	if codes.Code(ds[0].GetCanonicalCode()) != codes.Aborted || codes.Code(ds[1].GetCanonicalCode()) != codes.AlreadyExists {
		t.Errorf("DATAPLANE_ATOMIC failure details: %v", ds)
	}
	if after := readState(t, e); after != before {
		t.Errorf("failed DATAPLANE_ATOMIC batch changed state")
	}
	if err := e.write(1, p4v1.WriteRequest_DATAPLANE_ATOMIC,
		insert(exactEntry(e, "ExactOne", 1, "actionA", 1)),
		insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); err != nil {
		t.Fatalf("good DATAPLANE_ATOMIC batch: %v", err)
	}
	if n := countEntries(t, e); n != 2 {
		t.Errorf("%d entries, want 2", n)
	}
}

// readState renders every entry and default entry, sorted, for comparison.
func readState(t testing.TB, e *testEnv) string {
	t.Helper()
	ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{}), tableRead(&p4v1.TableEntry{IsDefaultAction: true}))
	if err != nil {
		t.Fatal(err)
	}
	var ss []string
	for _, x := range ents {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(x)
		ss = append(ss, string(b))
	}
	sortStrings(ss)
	return fmt.Sprintf("%q", ss)
}

func TestWriteRPCChecks(t *testing.T) {
	e := newTestEnv(t, WithDeviceIDZero(false))
	// No primary at all.
	if err := e.write(1, 0); status.Code(err) != codes.PermissionDenied {
		t.Errorf("write with no primary: %v, want PERMISSION_DENIED", err)
	}
	e.primary(t, 1)
	// Wrong device.
	_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: 2, ElectionId: eid(1)})
	if status.Code(err) != codes.NotFound {
		t.Errorf("write to device 2: %v, want NOT_FOUND", err)
	}
	// Before a pipeline.
	if err := e.write(1, 0, insert(&p4v1.TableEntry{TableId: 1})); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("write before pipeline: %v, want FAILED_PRECONDITION", err)
	}
	// Read before a pipeline.
	if _, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{})); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("read before pipeline: %v, want FAILED_PRECONDITION", err)
	}
	e.setPipeline(t, 1)
	// Unknown atomicity.
	if err := e.write(1, 7); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown atomicity: %v, want INVALID_ARGUMENT", err)
	}
}

// Writes and Reads in parallel: every Read sees each Write batch whole or
// not at all (§13.4).
func TestReadSeesWholeWrites(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	const batch = 50
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := range 10 { // ExactOne holds 512
			var ups []*p4v1.Update
			for i := range batch {
				ups = append(ups, insert(exactEntry(e, "ExactOne", uint64(round*batch+i+1), "actionA", 1)))
			}
			if err := e.write(1, 0, ups...); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 40 {
		if n := countEntries(t, e); n%batch != 0 {
			t.Fatalf("a Read saw %d entries: part of a batch", n)
		}
	}
	wg.Wait()
}
