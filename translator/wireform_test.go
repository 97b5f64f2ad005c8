package translator

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// wireP4Info has a table of each common kind: exact with idle timeouts,
// LPM, and a ternary one with more fields than an entryAlloc holds
// inline, and an action with more params than an actionAlloc does.
const wireP4Info = `
tables {
  preamble { id: 1 name: "w.exact" }
  match_fields { id: 1 name: "k" bitwidth: 16 match_type: EXACT }
  action_refs { id: 10 } action_refs { id: 11 }
  size: 64
  idle_timeout_behavior: NOTIFY_CONTROL
}
tables {
  preamble { id: 2 name: "w.lpm" }
  match_fields { id: 1 name: "dst" bitwidth: 32 match_type: LPM }
  action_refs { id: 10 }
  size: 64
}
tables {
  preamble { id: 3 name: "w.tern" }
  match_fields { id: 1 name: "a" bitwidth: 32 match_type: TERNARY }
  match_fields { id: 2 name: "b" bitwidth: 8 match_type: TERNARY }
  match_fields { id: 3 name: "c" bitwidth: 16 match_type: EXACT }
  action_refs { id: 11 }
  size: 64
}
actions { preamble { id: 10 name: "w.fwd" } params { id: 1 name: "port" bitwidth: 8 } params { id: 2 name: "mac" bitwidth: 48 } }
actions { preamble { id: 11 name: "w.many" }
  params { id: 1 name: "p1" bitwidth: 8 } params { id: 2 name: "p2" bitwidth: 16 } params { id: 3 name: "p3" bitwidth: 24 }
  params { id: 4 name: "p4" bitwidth: 32 } params { id: 5 name: "p5" bitwidth: 40 } }
`

func wireDevice(t *testing.T) *Device {
	t.Helper()
	var info p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(wireP4Info), &info); err != nil {
		t.Fatal(err)
	}
	d := NewDevice(NewNoneBackend())
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		&p4v1.ForwardingPipelineConfig{P4Info: &info}); err != nil {
		t.Fatal(err)
	}
	return d
}

func wexact(id uint32, v ...byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}
}

func wlpm(id uint32, plen int32, v ...byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v, PrefixLen: plen}}}
}

func wtern(id uint32, v, m []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v, Mask: m}}}
}

func waction(id uint32, params ...[]byte) *p4v1.TableAction {
	a := &p4v1.Action{ActionId: id}
	for i, p := range params {
		a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: p})
	}
	return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
}

// transientWrite writes tes to d as a server does with WriteWire: each
// TableEntry is decoded from its encoding with its bytes fields aliasing
// that encoding, and once the Write returns both are scribbled over, as
// the next request reusing their memory would. ref gets the same
// updates through Write, which keeps them: what it stores is what d
// must.
func transientWrite(t *testing.T, d, ref *Device, typ p4v1.Update_Type, tes ...*p4v1.TableEntry) {
	t.Helper()
	var refUps []*p4v1.Update
	for _, te := range tes {
		refUps = append(refUps, &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: proto.Clone(te).(*p4v1.TableEntry)}}})
	}
	if errs, err := ref.Write(refUps, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil); err != nil || errs != nil {
		t.Fatalf("write: %v %v", err, errs)
	}
	var buf []byte
	var offs []int
	for _, te := range tes {
		b, err := proto.Marshal(te)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, len(buf))
		buf = append(buf, b...)
	}
	offs = append(offs, len(buf))
	ups := make([]*p4v1.Update, len(tes))
	wires := make([][]byte, len(tes))
	decoded := make([]*p4v1.TableEntry, len(tes))
	for i := range tes {
		wires[i] = buf[offs[i]:offs[i+1]:offs[i+1]]
		decoded[i] = aliasDecode(t, wires[i])
		ups[i] = &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: decoded[i]}}}
	}
	errs, err := d.WriteWire(ups, wires, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if err != nil || errs != nil {
		t.Fatalf("write: %v %v", err, errs)
	}
	for i := range buf {
		buf[i] = 0xa5
	}
	for _, te := range decoded {
		proto.Reset(te)
		te.TableId, te.Priority = 99, 99
	}
}

// wireUpdates returns ups as a server hands them to WriteWire: each
// table entry decoded from its encoding (aliasDecode), with those
// encodings as wires, and a function that scribbles over all of it, as
// the next request reusing the memory would.
func wireUpdates(t *testing.T, ups []*p4v1.Update) ([]*p4v1.Update, [][]byte, func()) {
	t.Helper()
	var buf []byte
	offs := make([]int, len(ups)+1)
	for i, u := range ups {
		offs[i] = len(buf)
		if te := u.GetEntity().GetTableEntry(); te != nil {
			b, err := proto.Marshal(te)
			if err != nil {
				t.Fatal(err)
			}
			buf = append(buf, b...)
		}
	}
	offs[len(ups)] = len(buf)
	out := make([]*p4v1.Update, len(ups))
	wires := make([][]byte, len(ups))
	var decoded []*p4v1.TableEntry
	for i, u := range ups {
		out[i] = u
		if u.GetEntity().GetTableEntry() == nil {
			continue
		}
		wires[i] = buf[offs[i]:offs[i+1]:offs[i+1]]
		te := aliasDecode(t, wires[i])
		decoded = append(decoded, te)
		out[i] = &p4v1.Update{Type: u.GetType(), Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	}
	return out, wires, func() {
		for i := range buf {
			buf[i] = 0xa5
		}
		for _, te := range decoded {
			proto.Reset(te)
			te.TableId, te.Priority = 99, 99
		}
	}
}

// aliasDecode decodes a TableEntry whose match values, action params and
// metadata alias b, as the server's decoder leaves them.
func aliasDecode(t *testing.T, b []byte) *p4v1.TableEntry {
	t.Helper()
	te := &p4v1.TableEntry{}
	if err := proto.Unmarshal(b, te); err != nil {
		t.Fatal(err)
	}
	// Point every bytes field at its copy inside b.
	at := func(v []byte) []byte {
		if len(v) == 0 {
			return v
		}
		i := bytes.Index(b, v)
		if i < 0 {
			t.Fatalf("% x not in % x", v, b)
		}
		return b[i : i+len(v) : i+len(v)]
	}
	for _, m := range te.Match {
		switch x := m.FieldMatchType.(type) {
		case *p4v1.FieldMatch_Exact_:
			x.Exact.Value = at(x.Exact.Value)
		case *p4v1.FieldMatch_Lpm:
			x.Lpm.Value = at(x.Lpm.Value)
		case *p4v1.FieldMatch_Ternary_:
			x.Ternary.Value, x.Ternary.Mask = at(x.Ternary.Value), at(x.Ternary.Mask)
		}
	}
	for _, p := range te.GetAction().GetAction().GetParams() {
		p.Value = at(p.Value)
	}
	for _, a := range te.GetAction().GetActionProfileActionSet().GetActionProfileActions() {
		for _, p := range a.GetAction().GetParams() {
			p.Value = at(p.Value)
		}
	}
	te.Metadata = at(te.Metadata)
	return te
}

// storedState renders what the store holds of every entry — Read form,
// match, params, key blob, Saved metadata — for comparing before and
// after the request's memory is reused.
func storedState(d *Device) string {
	var out []string
	for _, id := range []uint32{1, 2, 3} {
		for _, e := range d.st.tables[id].entries {
			cookie, meta := e.metadata()
			s := fmt.Sprintf("%s %v key=%x mask=%x cookie=%d meta=%q", prototext.Format(e.readProto()), e.Match, e.Key, e.Mask, cookie, meta)
			if e.Action != nil {
				s += fmt.Sprintf(" params=%x", e.Action.Params)
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return fmt.Sprint(out)
}

func wireReadAll(t *testing.T, d *Device) []*p4v1.TableEntry {
	t.Helper()
	var out []*p4v1.TableEntry
	errs, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}, nil, func(e *p4v1.Entity) error {
		if !e.GetTableEntry().GetIsDefaultAction() {
			out = append(out, e.GetTableEntry())
		}
		return nil
	})
	if err != nil || errs != nil {
		t.Fatalf("read: %v %v", err, errs)
	}
	return out
}

// TestWriteWireKeepsNothingOfTheRequest: entries written with their
// wires keep nothing of the request's memory — exact, LPM, ternary, with
// params, metadata and idle timeouts, MODIFY with and without action —
// non-canonical input is kept re-encoded, and input with unknown fields
// falls back to a copy of the proto.
func TestWriteWireKeepsNothingOfTheRequest(t *testing.T) {
	d, ref := wireDevice(t), wireDevice(t)
	mac := []byte{2, 0, 0, 0, 0, 9}
	many := func(x byte) *p4v1.TableAction {
		return waction(11, []byte{x}, []byte{x, 1}, []byte{x, 0, 2}, []byte{x, 0, 0, 3}, []byte{x, 0, 0, 0, 4})
	}
	ins := []*p4v1.TableEntry{
		{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}, Action: waction(10, []byte{7}, mac),
			ControllerMetadata: 5, Metadata: []byte("meta"), IdleTimeoutNs: 1e9},
		{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x35)}, Action: many(1)},
		{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 1, 0, 0)}, Action: waction(10, []byte{1}, mac)},
		{TableId: 3, Priority: 3, Match: []*p4v1.FieldMatch{wtern(1, []byte{10, 0, 0, 0}, []byte{255, 0, 0, 0}),
			wtern(2, []byte{0x50}, []byte{0xf0}), wexact(3, 0x0b, 0xcd)}, Action: many(2)},
	}
	transientWrite(t, d, ref, p4v1.Update_INSERT, ins...)
	for _, id := range []uint32{1, 2, 3} {
		for _, e := range d.st.tables[id].entries {
			if e.wire == nil || e.proto != nil {
				t.Errorf("table %d: canonical entry kept as a proto, not its wire", id)
			}
		}
	}
	// Non-canonical values, unknown fields: the store keeps a copy.
	odd := &p4v1.TableEntry{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 2, 0, 0)}, Action: waction(10, []byte{1}, mac)}
	odd.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	transientWrite(t, d, ref, p4v1.Update_INSERT,
		&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0, 0, 0x40)}, Action: waction(10, []byte{0, 3}, mac)},
		&p4v1.TableEntry{TableId: 3, Priority: 4, Match: []*p4v1.FieldMatch{wtern(1, []byte{0, 10, 0, 0, 0}, []byte{0, 255, 0, 0, 0}),
			wexact(3, 0, 1)}, Action: many(3)},
		odd)
	for _, e := range d.st.tables[2].entries {
		if kept := e.proto != nil; kept != (e.Match[0].Value[1] == 2) {
			t.Errorf("lpm entry %x: kept as a proto: %v; want only the one with unknown fields", e.Match[0].Value, kept)
		}
	}
	for _, e := range d.st.tables[3].entries {
		if e.wire == nil {
			t.Errorf("ternary entry %x: not kept as wire", e.Match[0].Value)
		}
	}
	// MODIFY without action keeps the action; with one, replaces it.
	transientWrite(t, d, ref, p4v1.Update_MODIFY,
		&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}, ControllerMetadata: 6, IdleTimeoutNs: 2e9},
		&p4v1.TableEntry{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 1, 0, 0)}, Action: waction(10, []byte{2}, mac), Metadata: []byte("m2")})
	transientWrite(t, d, ref, p4v1.Update_DELETE, &p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x35)}})

	want := []*p4v1.TableEntry{
		{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}, Action: waction(10, []byte{7}, mac),
			ControllerMetadata: 6, IdleTimeoutNs: 2e9},
		{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 1, 0, 0)}, Action: waction(10, []byte{2}, mac), Metadata: []byte("m2")},
		ins[3],
		{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x40)}, Action: waction(10, []byte{3}, mac)},
		{TableId: 3, Priority: 4, Match: []*p4v1.FieldMatch{wtern(1, []byte{10, 0, 0, 0}, []byte{255, 0, 0, 0}), wexact(3, 1)}, Action: many(3)},
		{TableId: 2, Match: []*p4v1.FieldMatch{wlpm(1, 16, 10, 2, 0, 0)}, Action: waction(10, []byte{1}, mac)},
	}
	check := func() {
		t.Helper()
		got := wireReadAll(t, d)
		if len(got) != len(want) {
			t.Fatalf("read %d entries, want %d", len(got), len(want))
		}
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || proto.Equal(g, w)
			}
			if !found {
				t.Errorf("entry not read back:\n%v\nread:\n%v", w, got)
			}
		}
	}
	check()
	if got, want := storedState(d), storedState(ref); got != want {
		t.Errorf("stored from wires:\n%s\nfrom kept requests:\n%s", got, want)
	}
	before := storedState(d)
	// The request memory is gone; what the store holds must not change
	// when it is reused.
	for range 3 {
		transientWrite(t, d, ref, p4v1.Update_INSERT,
			&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x77, 0x77)}, Action: waction(10, []byte{0x77}, mac)})
		transientWrite(t, d, ref, p4v1.Update_DELETE,
			&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x77, 0x77)}})
	}
	if after := storedState(d); after != before {
		t.Errorf("the store changed with the request's memory:\nbefore %s\nafter  %s", before, after)
	}
	check()

	// Reads that decode the stored form: filters, idle notifications.
	var n int
	if _, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: 2, Metadata: []byte("m2")}}}}, nil,
		func(*p4v1.Entity) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("read by metadata: %d entries (%v), want 1", n, err)
	}
	var idle []IdleEntry
	for _, e := range d.st.tables[1].entries {
		idle = append(idle, IdleEntry{Entry: e})
	}
	notes := d.idleEntries(idle)
	if len(notes) != 1 || notes[0].GetControllerMetadata() != 6 || notes[0].GetIdleTimeoutNs() != 2e9 ||
		!bytes.Equal(notes[0].GetMatch()[0].GetExact().GetValue(), []byte{0x12, 0x34}) {
		t.Errorf("idle notifications: %v", notes)
	}
	// Saved, as backends journal it.
	for _, e := range d.st.tables[2].entries {
		if se := e.Saved(); string(e.Match[0].Value) == string([]byte{10, 1, 0, 0}) && string(se.Metadata) != "m2" {
			t.Errorf("saved metadata %q, want m2", se.Metadata)
		}
	}
}

// TestAppendReadForm: appendReadForm encodes what proto.Marshal does, byte
// for byte, for every field a Read form has; metadata finds in it what
// proto.Unmarshal does, repeated fields included.
func TestAppendReadForm(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 200) // lengths of two-byte varints
	tes := []*p4v1.TableEntry{
		{},
		{TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, 0x12, 0x34)}, Action: waction(10, []byte{7}, []byte{2, 0, 0, 0, 0, 9}),
			ControllerMetadata: 5, Metadata: []byte("meta"), IdleTimeoutNs: 1e9},
		{TableId: 0x02000003, Priority: 1 << 20, Match: []*p4v1.FieldMatch{wtern(1, []byte{10}, []byte{255}), wlpm(2, 24, 1, 2, 3),
			{FieldId: 3, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: []byte{1}, High: []byte{9}}}},
			{FieldId: 4, FieldMatchType: &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: []byte{4}}}},
			{FieldId: 5, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{}}}},
			Action: waction(0x01000001, big, nil, []byte{1})},
		{TableId: 7, Match: []*p4v1.FieldMatch{wexact(300, big...)}, Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{}}},
			Metadata: big, Priority: -1},
	}
	for _, te := range tes {
		want, err := proto.Marshal(te)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendReadForm([]byte{0xff}, te); !bytes.Equal(got[1:], want) || got[0] != 0xff {
			t.Errorf("%v:\nappendReadForm % x\nproto.Marshal  % x", te, got, want)
		}
		// Written twice: the last wins.
		twice := append(slices.Clip(want), protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 77)...)
		twice = append(twice, want...)
		for _, w := range [][]byte{want, twice} {
			var e Entry
			e.own(w)
			cookie, meta := e.metadata()
			var dec p4v1.TableEntry
			if err := proto.Unmarshal(w, &dec); err != nil {
				t.Fatal(err)
			}
			if cookie != dec.GetControllerMetadata() || !bytes.Equal(meta, dec.GetMetadata()) {
				t.Errorf("% x: metadata %d %q, want %d %q", w, cookie, meta, dec.GetControllerMetadata(), dec.GetMetadata())
			}
			if !proto.Equal(e.readProto(), &dec) {
				t.Errorf("% x: readProto %v, want %v", w, e.readProto(), &dec)
			}
		}
	}
}

// TestWriteWireRetryKeepsCanonical: an update tried again after a backend
// failure (CONTINUE_ON_ERROR) was canonicalised in place by its first
// parse, so the second cannot see that its wire, which still holds what
// the client sent, is not its Read form; it must be re-encoded anyway.
// Run with and without the pre-parse, which treats first parses apart.
func TestWriteWireRetryKeepsCanonical(t *testing.T) {
	for _, pre := range []bool{false, true} {
		t.Run(fmt.Sprintf("preparse=%v", pre), func(t *testing.T) {
			d, b := preDevice(t, wireP4Info, pre)
			b.failAt = 0
			te := func(k []byte, port []byte) *p4v1.Update {
				return &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
					TableId: 1, Match: []*p4v1.FieldMatch{wexact(1, k...)}, Action: waction(10, port, []byte{2, 0, 0, 0, 0, 1})}}}}
			}
			ups, wires, scribble := wireUpdates(t, []*p4v1.Update{te([]byte{1}, []byte{1}), te([]byte{0, 5}, []byte{0, 7})})
			errs, err := d.WriteWire(ups, wires, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
			if err != nil || len(errs) != 2 || errs[0] == nil || errs[1] != nil {
				t.Fatalf("write: %v %v; want the first update to fail in the backend", err, errs)
			}
			scribble()
			got := wireReadAll(t, d)
			want := te([]byte{5}, []byte{7}).GetEntity().GetTableEntry()
			if len(got) != 1 || !proto.Equal(got[0], want) {
				t.Errorf("read %v, want only %v", got, want)
			}
		})
	}
}
