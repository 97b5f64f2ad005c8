package translator

import (
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzWrite feeds arbitrary WriteRequest bytes to a Device: it must never
// panic, must answer one result per update, and a failed update must leave
// the store as it was.
func FuzzWrite(f *testing.F) {
	info := loadP4Info(f, "p4runtime-shell-unittest.p4info.pb.txt")
	seed := func(ups ...*p4v1.Update) {
		b, err := proto.Marshal(&p4v1.WriteRequest{Updates: ups})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0))
	}
	tid := func(name string) uint32 {
		for _, t := range info.GetTables() {
			if t.GetPreamble().GetName() == name {
				return t.GetPreamble().GetId()
			}
		}
		f.Fatalf("no table %s", name)
		return 0
	}
	ex := func(v []byte) *p4v1.FieldMatch {
		return &p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}
	}
	actA := &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: 16783703, Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{1}}}}}}
	entry := func(table string, prio int32, ms ...*p4v1.FieldMatch) *p4v1.Entity {
		return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tid(table), Match: ms, Priority: prio, Action: actA}}}
	}
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("ExactOne", 0, ex([]byte{10, 0, 0, 1}))})
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("ExactOne", 0, ex([]byte{1}))},
		&p4v1.Update{Type: p4v1.Update_MODIFY, Entity: entry("ExactOne", 0, ex([]byte{1}))},
		&p4v1.Update{Type: p4v1.Update_DELETE, Entity: entry("ExactOne", 0, ex([]byte{1}))})
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("TernaryOne", 3,
		&p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: []byte{1}, Mask: []byte{0xff}}}})})
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("RangeOne", 3,
		&p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: []byte{1}, High: []byte{9}}}})})
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("LpmOne", 0,
		&p4v1.FieldMatch{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: []byte{10, 0, 0, 0}, PrefixLen: 8}}})})
	seed(&p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tid("ExactOne"), IsDefaultAction: true, Action: actA}}}})
	seed(&p4v1.Update{Type: p4v1.Update_INSERT, Entity: entry("StringMatchKeyTable", 0, ex([]byte("\xff\xfe not utf-8")))})

	f.Fuzz(func(t *testing.T, b []byte, atomicity uint8) {
		var req p4v1.WriteRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		d := NewDevice(NewNoneBackend())
		if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: proto.Clone(info).(*p4configv1.P4Info)}); err != nil {
			t.Fatal(err)
		}
		// First apply the batch, then the same bytes again: the second
		// run exercises ALREADY_EXISTS/NOT_FOUND paths against real state.
		for range 2 {
			var again p4v1.WriteRequest
			if err := proto.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			before := d.st.count()
			errs, err := d.Write(again.GetUpdates(), p4v1.WriteRequest_Atomicity(atomicity%3), nil)
			if err != nil {
				continue
			}
			if errs != nil && len(errs) != len(again.GetUpdates()) {
				t.Fatalf("%d results for %d updates", len(errs), len(again.GetUpdates()))
			}
			failed := 0
			for _, e := range errs {
				if e != nil {
					failed++
					if msg := e.Error(); !isValidUTF8(msg) {
						t.Fatalf("error message is not UTF-8: %q", msg)
					}
				}
			}
			if atomicity%3 != 0 && failed > 0 && d.st.count() != before {
				t.Fatalf("an all-or-nothing batch failed but changed the store from %d to %d entries", before, d.st.count())
			}
			// Every stored entry reads back.
			n := 0
			if _, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}, nil, func(*p4v1.Entity) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n != d.st.count() {
				t.Fatalf("read %d entries, store holds %d", n, d.st.count())
			}
		}
	})
}

// FuzzCompileP4Info feeds arbitrary P4Info bytes to Compile: it must never
// panic, and what it accepts must be consistent.
func FuzzCompileP4Info(f *testing.F) {
	for _, name := range []string{"p4runtime-shell-unittest.p4info.pb.txt", "pi-unittest.p4info.txt", "pi-simple_router.p4info.txt", "pi-customids.p4info.txt"} {
		b, err := proto.Marshal(loadP4Info(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var info p4configv1.P4Info
		if err := proto.Unmarshal(b, &info); err != nil {
			return
		}
		p, err := Compile(&info)
		if err != nil {
			if !isErr(err, ErrInvalid) || !isValidUTF8(err.Error()) {
				t.Fatalf("Compile error %q is not a clean ErrInvalid", err)
			}
			return
		}
		for _, tbl := range p.TableOrder {
			if tbl.Layout != nil && tbl.Layout.Size < len(tbl.Fields) {
				t.Fatalf("table %s: layout of %d bytes for %d fields", tbl.Name, tbl.Layout.Size, len(tbl.Fields))
			}
			if p.Tables[tbl.ID] != tbl {
				t.Fatalf("table %s not indexed by id", tbl.Name)
			}
		}
	})
}
