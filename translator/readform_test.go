package translator_test

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Reads serve an inserted entry in canonical form with only the fields a
// stored entry keeps, whether the Device kept the request's message (the
// common case) or a copy of it (unknown fields to drop); a MODIFY without
// action keeps the action; a request message written again after its
// entry was deleted reads back the same.
func TestReadFormOfInsertedEntries(t *testing.T) {
	d, _ := newKinds(t)
	plain := routeEntry(1)
	plain.Match[0].GetLpm().Value = []byte{0, 10, 1, 0, 0} // canonicalised in place
	plain.ControllerMetadata, plain.Metadata = 7, []byte("m")
	odd := routeEntry(2)
	odd.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	if errs := write(d, nil, p4v1.Update_INSERT, plain, odd); errs != nil {
		t.Fatal(errs)
	}
	want := map[byte]*p4v1.TableEntry{1: routeEntry(1), 2: routeEntry(2)}
	want[1].ControllerMetadata, want[1].Metadata = 7, []byte("m")
	check := func() {
		t.Helper()
		got := read(t, d, &p4v1.TableEntry{TableId: 2})
		if len(got) != len(want) {
			t.Fatalf("read %d entries, want %d", len(got), len(want))
		}
		for _, te := range got {
			w := want[te.GetMatch()[0].GetLpm().GetValue()[1]]
			if !proto.Equal(te, w) || len(te.ProtoReflect().GetUnknown()) != 0 {
				t.Errorf("read\n%v\nwant\n%v", te, w)
			}
		}
	}
	check()

	mod := routeEntry(1)
	mod.Action = nil
	if errs := write(d, nil, p4v1.Update_MODIFY, mod); errs != nil {
		t.Fatal(errs)
	}
	want[1].ControllerMetadata, want[1].Metadata = 0, nil
	check()

	if errs := write(d, nil, p4v1.Update_DELETE, routeEntry(2)); errs != nil {
		t.Fatal(errs)
	}
	delete(want, 2)
	check()
	if errs := write(d, nil, p4v1.Update_INSERT, odd); errs != nil {
		t.Fatal(errs)
	}
	want[2] = routeEntry(2)
	check()
}
