package translator

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// viewPipelines are the pipelines FuzzEntryView parses against.
func viewPipelines(tb testing.TB) []*Pipeline {
	var wi p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(wireP4Info), &wi); err != nil {
		tb.Fatal(err)
	}
	var ps []*Pipeline
	for _, info := range []*p4configv1.P4Info{loadP4Info(tb, "p4runtime-shell-unittest.p4info.pb.txt"), &wi, loadP4Info(tb, "p4tcd-externs.p4info.txt")} {
		p, err := Compile(info)
		if err != nil {
			tb.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// describeEntry renders everything a parse puts in an Entry, its Read
// form included.
func describeEntry(e *Entry) string {
	if e == nil {
		return "<nil>"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "table %s prio %d default %v const %v idle %d origin %v place %v written %d\n", e.Table.Name, e.Priority, e.IsDefault, e.Const, e.IdleTimeoutNs, e.Origin, e.Placement, e.written)
	for i, m := range e.Match {
		fmt.Fprintf(&b, "match %d: set %v value %x (nil %v) mask %x (nil %v) high %x (nil %v) plen %d\n", i, m.Set, m.Value, m.Value == nil, m.Mask, m.Mask == nil, m.High, m.High == nil, m.PrefixLen)
	}
	fmt.Fprintf(&b, "key %x mask %x skey %x\n", e.Key, e.Mask, e.skey)
	if e.Action != nil {
		fmt.Fprintf(&b, "action %s params %x\n", e.Action.Action.Name, e.Action.Params)
	}
	fmt.Fprintf(&b, "indirect %v direct %v proto %v\nwire %x\n", e.Indirect != nil, e.Direct != nil, e.proto != nil, e.wire)
	return b.String()
}

// TestHasMetadata: an entry written plain without metadata answers
// HasMetadata from its block, and so do its copies; one with metadata,
// a copy whose Read form moved to a proto, and a re-encoded one answer
// from the Read form.
func TestHasMetadata(t *testing.T) {
	p := viewPipelines(t)[0]
	parse := func(s string) *Entry {
		t.Helper()
		var te p4v1.TableEntry
		if err := prototext.Unmarshal([]byte(s), &te); err != nil {
			t.Fatal(err)
		}
		b, err := proto.Marshal(&te)
		if err != nil {
			t.Fatal(err)
		}
		var v entryView
		if !v.parse(b) {
			t.Fatalf("%s: not plain", s)
		}
		e, err := p.parseEntryView(&v, b, opInsert, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	const entry = `table_id: 33582705 match { field_id: 1 exact { value: "\x0a\x00\x00\x01" } } action { action { action_id: 16783703 params { param_id: 1 value: "\x00\x01" } } }`
	bare := parse(entry)
	if bare.alloc.bare == 0 || bare.HasMetadata() {
		t.Fatalf("bare entry: mark %d, HasMetadata %v", bare.alloc.bare, bare.HasMetadata())
	}
	cp := *bare
	if cp.HasMetadata() {
		t.Error("copy of a bare entry has metadata")
	}
	cp.materialise().ControllerMetadata = 5
	if !cp.HasMetadata() || bare.HasMetadata() {
		t.Errorf("materialised copy given a cookie: HasMetadata %v (original %v)", cp.HasMetadata(), bare.HasMetadata())
	}
	for _, s := range []string{entry + ` controller_metadata: 7`, entry + ` metadata: "m"`} {
		if e := parse(s); e.alloc.bare != 0 || !e.HasMetadata() {
			t.Errorf("%s: mark %d, HasMetadata %v", s, e.alloc.bare, e.HasMetadata())
		}
	}
	// A Read form carved anew (compact) is not the one marked.
	re := parse(entry)
	pr := re.materialise()
	pr.Metadata = []byte("x")
	re.compact(nil)
	if re.wire == nil || !re.HasMetadata() {
		t.Errorf("compacted entry with metadata: wire %v, HasMetadata %v", re.wire != nil, re.HasMetadata())
	}
}

// FuzzEntryView: whatever the bytes of a TableEntry, parseEntryView, when
// the bytes are a plain entry and it takes them, gives exactly what
// parseTableEntryWire gives for the tree they decode to (and the same
// wire): the same error, or the same Entry with the same Read form, for
// a first parse and a parse again, from the same view.
func FuzzEntryView(f *testing.F) {
	seeds := []string{
		`table_id: 33582705 match { field_id: 1 exact { value: "\x0a\x00\x00\x01" } } action { action { action_id: 16783703 params { param_id: 1 value: "\x00\x01" } } } controller_metadata: 7 metadata: "m"`,
		`table_id: 33584148 match { field_id: 1 ternary { value: "\x01" mask: "\xff" } } priority: 3 action { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } }`,
		`table_id: 33603558 match { field_id: 1 range { low: "\x01" high: "\x09" } } priority: 3 action { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } }`,
		`table_id: 33567650 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } action { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } }`,
		`table_id: 33586946 match { field_id: 1 exact { value: "\x01" } }`,
		`table_id: 33586946 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 16783703 } }`,
		`table_id: 33554507 match { field_id: 1 exact { value: "\xff\xfe not utf-8" } } action { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } }`,
		`table_id: 1 match { field_id: 1 exact { value: "\x00\x07" } } action { action { action_id: 11 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x00\x02" } params { param_id: 3 value: "\x03" } params { param_id: 4 value: "\x04" } params { param_id: 5 value: "\x00\x00\x05" } } } idle_timeout_ns: 1000`,
		`table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } action { action { action_id: 10 params { param_id: 2 value: "\x01" } params { param_id: 1 value: "\x02" } } }`,
		`table_id: 3 match { field_id: 2 ternary { value: "\x00\x01" mask: "\x00\xff" } } match { field_id: 3 exact { value: "\x01" } } priority: 9 action { action { action_id: 11 } }`,
		`table_id: 3 match { field_id: 3 exact { value: "\x01" } } match { field_id: 3 exact { value: "\x02" } } priority: 1`,
		`table_id: 1 metadata: "p4tcd:datapath-created" match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 } }`,
	}
	for _, s := range seeds {
		var te p4v1.TableEntry
		if err := prototext.Unmarshal([]byte(s), &te); err != nil {
			f.Fatalf("%s: %v", s, err)
		}
		b, err := proto.Marshal(&te)
		if err != nil {
			f.Fatal(err)
		}
		for op := range 3 {
			for pipe := range 3 {
				f.Add(b, uint8(op), uint8(pipe))
			}
		}
	}
	// Fields twice, out of order, and explicit zeros: proto keeps the
	// last of a scalar and appends repeated ones.
	odd := protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 0)
	odd = protowire.AppendVarint(protowire.AppendTag(odd, 1, protowire.VarintType), 9)
	odd = protowire.AppendVarint(protowire.AppendTag(odd, 1, protowire.VarintType), 1)
	f.Add(odd, uint8(0), uint8(1))
	// The view parse's error branches (TestEntryViewErrors), on
	// wireP4Info; the keyless and @defaultonly tables are not there.
	for _, c := range viewErrorShapes {
		var te p4v1.TableEntry
		if err := prototext.Unmarshal([]byte(c.text), &te); err != nil {
			f.Fatalf("%s: %v", c.text, err)
		}
		b, err := proto.Marshal(&te)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(c.op), uint8(1))
	}
	ps := viewPipelines(f)
	f.Fuzz(func(t *testing.T, b []byte, op uint8, pipe uint8) {
		var v entryView
		if !v.parse(b) {
			return
		}
		if !PlainTableEntry(b) {
			t.Fatal("parse takes what PlainTableEntry refuses")
		}
		var te p4v1.TableEntry
		if err := proto.Unmarshal(b, &te); err != nil {
			t.Fatalf("a plain entry proto.Unmarshal refuses: %v", err)
		}
		if !readForm(&te) || te.GetIsDefaultAction() {
			t.Fatalf("a plain entry that is not in its Read form: %v", &te)
		}
		p := ps[int(pipe)%len(ps)]
		wop := writeOp(op % 3)
		for pass := range 2 {
			// The same view both times: parsing must not change it, and
			// a parse again gives what the first gave (the tree is a
			// fresh one each time, as a first parse).
			var enc []byte
			wire := append([]byte(nil), b...)
			got, gerr := p.parseEntryView(&v, wire, wop, nil, &enc)
			if gerr == errNotPlain {
				return
			}
			tree := proto.Clone(&te).(*p4v1.TableEntry)
			var wenc []byte
			want, werr := p.parseTableEntryWire(tree, b, wop, nil, &wenc, false)
			if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
				t.Fatalf("pass %d: view: %v; tree: %v", pass, gerr, werr)
			}
			if gerr != nil {
				continue
			}
			if g, w := describeEntry(got), describeEntry(want); g != w {
				t.Fatalf("pass %d: view parsed\n%s\ntree parsed\n%s", pass, g, w)
			}
			if wop == opDelete {
				continue // a deleted key lives as long as the Write
			}
			// HasMetadata's shortcut agrees with the Read form.
			for _, e := range []*Entry{got, want} {
				c, m := e.metadata()
				if has := c != 0 || len(m) > 0; e.HasMetadata() != has || has != (te.GetControllerMetadata() != 0 || len(te.GetMetadata()) > 0) {
					t.Fatalf("pass %d: HasMetadata %v; Read form has %d %q; request %d %q", pass, e.HasMetadata(), c, m, te.GetControllerMetadata(), te.GetMetadata())
				}
			}
			// An entry to store keeps nothing of the wire.
			for i := range wire {
				wire[i] = 0xa5
			}
			if g, w := describeEntry(got), describeEntry(want); g != w {
				t.Fatalf("pass %d: once the wire is gone, view parsed\n%s\ntree parsed\n%s", pass, g, w)
			}
		}
	})
}

// rawTableEntries returns, for each update of the WriteRequest encoding
// b (which proto.Unmarshal accepts), the bytes of its table entry as the
// server's codec hands them over: nil unless its entity is exactly one
// table entry.
func rawTableEntries(t *testing.T, b []byte) [][]byte {
	t.Helper()
	// only returns the value of the one field of b, when it is bytes
	// field num.
	only := func(b []byte, num protowire.Number) []byte {
		var val []byte
		n := 0
		for len(b) > 0 {
			fnum, typ, l := protowire.ConsumeTag(b)
			if l < 0 {
				t.Fatal("malformed")
			}
			b = b[l:]
			l = protowire.ConsumeFieldValue(fnum, typ, b)
			if fnum == num && typ == protowire.BytesType {
				val, _ = protowire.ConsumeBytes(b)
			}
			n++
			b = b[l:]
		}
		if n != 1 {
			return nil
		}
		return val
	}
	var out [][]byte
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		b = b[l:]
		l = protowire.ConsumeFieldValue(num, typ, b)
		if num == 4 && typ == protowire.BytesType {
			u, _ := protowire.ConsumeBytes(b)
			// The Update's entity, if it is given once.
			var ent []byte
			ents := 0
			for u := u; len(u) > 0; {
				unum, utyp, ul := protowire.ConsumeTag(u)
				u = u[ul:]
				ul = protowire.ConsumeFieldValue(unum, utyp, u)
				if unum == 2 && utyp == protowire.BytesType {
					ent, _ = protowire.ConsumeBytes(u)
					ents++
				}
				u = u[ul:]
			}
			var wire []byte
			if ents == 1 {
				wire = only(ent, 2)
			}
			out = append(out, wire)
		}
		b = b[l:]
	}
	return out
}

// lazyUpdates returns ups, each table entry update with its raw wire
// given by that wire alone, as the server's codec does for plain ones
// (all of them unless plainOnly), the wires, the views of the plain ones
// (as the codec parses them), and a func that scribbles over the wires'
// and views' memory.
func lazyUpdates(t *testing.T, b []byte, ups []*p4v1.Update, plainOnly bool) ([]*p4v1.Update, [][]byte, []EntryView, func()) {
	t.Helper()
	buf := append([]byte(nil), b...)
	raw := rawTableEntries(t, buf)
	if len(raw) != len(ups) {
		t.Fatalf("%d raw entries for %d updates", len(raw), len(ups))
	}
	out := make([]*p4v1.Update, len(ups))
	views := make([]EntryView, len(ups))
	var decoded []*p4v1.TableEntry
	for i, u := range ups {
		out[i] = u
		if raw[i] == nil {
			continue
		}
		if plain := views[i].Parse(raw[i]); plain || !plainOnly {
			out[i] = &p4v1.Update{Type: u.GetType()}
			continue
		}
		te := aliasDecode(t, raw[i])
		decoded = append(decoded, te)
		out[i] = &p4v1.Update{Type: u.GetType(), Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	}
	return out, raw, views, func() {
		for i := range buf {
			buf[i] = 0xa5
		}
		for i := range views {
			views[i].v.tableID, views[i].v.nMatch = 99, 99
		}
		for _, te := range decoded {
			proto.Reset(te)
			te.TableId, te.Priority = 99, 99
		}
	}
}

// encodedState renders every table entry of d as ReadEncoded sends it.
func encodedState(t *testing.T, d *Device) string {
	t.Helper()
	var lines []string
	for _, def := range []bool{false, true} {
		filter := []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{IsDefaultAction: def}}}}
		errs, err := d.ReadEncoded(filter, nil, func(e *p4v1.Entity, wire []byte) error {
			if wire == nil {
				mo := proto.MarshalOptions{Deterministic: true}
				var err error
				if wire, err = mo.Marshal(e); err != nil {
					return err
				}
			}
			lines = append(lines, fmt.Sprintf("%x", wire))
			return nil
		})
		if err != nil || errs != nil {
			t.Fatalf("read: %v %v", err, errs)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// viewErrorShapes are plain entries the view parse refuses, one for each
// of its error branches, on wireP4Info (viewErrorP4Info adds tables 4
// and 5), with the op that reaches the branch.
var viewErrorShapes = []struct {
	op   writeOp
	text string
}{
	{opInsert, `match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x02" } } }`},
	{opDelete, `table_id: 99 match { field_id: 1 exact { value: "\x01" } }`},
	{opInsert, `table_id: 4 action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x02" } } }`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } priority: 5 action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x02" } } }`},
	{opDelete, `table_id: 3 match { field_id: 3 exact { value: "\x01" } }`},
	{opDelete, `table_id: 1 match { field_id: 9 exact { value: "\x01" } }`},
	{opDelete, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } match { field_id: 1 exact { value: "\x02" } }`},
	{opDelete, `table_id: 1 match { field_id: 1 lpm { value: "\x01\x00" prefix_len: 8 } }`},
	{opDelete, `table_id: 1 match { field_id: 1 exact { value: "\x01\x02\x03" } }`},
	{opDelete, `table_id: 1 match { field_id: 1 exact { } }`},
	{opDelete, `table_id: 1`},
	{opDelete, `table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x01" prefix_len: 8 } }`},
	{opDelete, `table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 33 } }`},
	{opDelete, `table_id: 3 match { field_id: 1 ternary { value: "\x01" mask: "\x00" } } match { field_id: 3 exact { value: "\x01" } } priority: 1`},
	{opDelete, `table_id: 3 match { field_id: 1 ternary { value: "\x03" mask: "\x01" } } match { field_id: 3 exact { value: "\x01" } } priority: 1`},
	{opInsert, `table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } idle_timeout_ns: 5 action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x02" } } }`},
	{opModify, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } idle_timeout_ns: -1`},
	{opModify, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } metadata: "p4tcd:datapath-created"`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } }`},
	{opInsert, `table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } action { action { action_id: 11 } }`},
	{opInsert, `table_id: 2 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } action { action { action_id: 77 } }`},
	{opInsert, `table_id: 5 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 2 value: "\x02" } } }`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 9 value: "\x01" } } }`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "\x01" } params { param_id: 1 value: "\x02" } } }`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "\x01\x02" } params { param_id: 2 value: "\x02" } } }`},
	{opInsert, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "" } params { param_id: 2 value: "\x02" } } }`},
	{opModify, `table_id: 1 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 10 params { param_id: 1 value: "\x01" } } }`},
}

// viewErrorP4Info is wireP4Info with a keyless table (4) and a table
// whose only action is @defaultonly (5).
const viewErrorP4Info = wireP4Info + `
tables {
  preamble { id: 4 name: "w.keyless" }
  action_refs { id: 10 }
  size: 1
}
tables {
  preamble { id: 5 name: "w.defonly" }
  match_fields { id: 1 name: "k" bitwidth: 8 match_type: EXACT }
  action_refs { id: 10 scope: DEFAULT_ONLY }
  size: 8
}
`

// TestEntryViewErrors: for each of the view parse's error branches,
// parseEntryView refuses the entry with the same code and message as
// parseTableEntryWire refuses the tree it decodes to. FuzzEntryView
// checks the same and more, but only under -fuzz; this runs in go test.
func TestEntryViewErrors(t *testing.T) {
	var info p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(viewErrorP4Info), &info); err != nil {
		t.Fatal(err)
	}
	p, err := Compile(&info)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range viewErrorShapes {
		var te p4v1.TableEntry
		if err := prototext.Unmarshal([]byte(c.text), &te); err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		b, err := proto.Marshal(&te)
		if err != nil {
			t.Fatal(err)
		}
		var v entryView
		if !v.parse(b) {
			t.Fatalf("%s: not plain", c.text)
		}
		_, gerr := p.parseEntryView(&v, b, c.op, nil, nil)
		_, werr := p.parseTableEntryWire(&te, b, c.op, nil, nil, false)
		if gerr == nil || gerr == errNotPlain {
			t.Errorf("%s: view parse: %v, want an error", c.text, gerr)
			continue
		}
		var gc, wc *codedError
		if !errors.As(gerr, &gc) || !errors.As(werr, &wc) || gc.sentinel != wc.sentinel || gc.msg != wc.msg {
			t.Errorf("%s:\nview: %v (%#v)\ntree: %v (%#v)", c.text, gerr, gc, werr, wc)
			continue
		}
		if seen[gc.msg] {
			t.Errorf("%s: %q again: the shape reaches no new branch", c.text, gc.msg)
		}
		seen[gc.msg] = true
	}
}
