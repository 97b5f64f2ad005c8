package server

import (
	"bytes"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/p4tcd/p4tcd/translator"
)

// writeRequestSeeds are requests of every shape the fast decoder handles
// and some it hands to proto.
func writeRequestSeeds(t testing.TB) []*p4v1.WriteRequest {
	te := func(ms ...*p4v1.FieldMatch) *p4v1.Update {
		return insert(&p4v1.TableEntry{TableId: 7, Match: ms, Priority: -3, ControllerMetadata: 9, Metadata: []byte{0},
			IsDefaultAction: true, IdleTimeoutNs: 5, IsConst: true, Action: act(1, []byte{1, 2}, nil)})
	}
	return []*p4v1.WriteRequest{
		{DeviceId: 1, Role: "r", ElectionId: &p4v1.Uint128{High: 1, Low: 2}, Atomicity: 2, Updates: []*p4v1.Update{
			te(exact(1, []byte{1}), lpm(2, []byte{10}, 8), ternary(3, []byte{1}, []byte{3}), rangeM(4, []byte{1}, []byte{9}), optional(5, []byte{7})),
			del(&p4v1.TableEntry{TableId: 7}),
			{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: 3}}}},
			insert(&p4v1.TableEntry{TableId: 1, CounterData: &p4v1.CounterData{PacketCount: 4}}),
			insert(&p4v1.TableEntry{TableId: 1, Action: &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: 3}}}),
			insert(&p4v1.TableEntry{TableId: 1, Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Other{Other: &anypb.Any{TypeUrl: "x"}}}}}),
			{Type: p4v1.Update_INSERT},
			{},
		}},
		{},
	}
}

// materialise gives each update of wr that the codec left undecoded (a
// nil Entity with a wire: a plain table entry) the entity its wire
// decodes to, so that wr can be compared with what proto.Unmarshal
// gives, and returns how many it gave one. It fails when such a wire is
// not plain or does not decode: the codec must never leave undecoded
// what proto.Unmarshal refuses. Call it before release.
func materialise(tb testing.TB, wr *p4v1.WriteRequest) int {
	tb.Helper()
	wires := heldWires(wr)
	n := 0
	for i, u := range wr.GetUpdates() {
		if u.GetEntity() != nil || wires == nil || wires[i] == nil {
			continue
		}
		if !translator.PlainTableEntry(wires[i]) {
			tb.Fatalf("update %d: left undecoded, but its wire % x is not a plain entry", i, wires[i])
		}
		te := &p4v1.TableEntry{}
		if err := proto.Unmarshal(wires[i], te); err != nil {
			tb.Fatalf("update %d: left undecoded, but proto.Unmarshal refuses its wire: %v", i, err)
		}
		u.Entity = &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}
		n++
	}
	return n
}

func TestCodecMatchesProto(t *testing.T) {
	c := newCodec()
	for i, want := range writeRequestSeeds(t) {
		b, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		var got p4v1.WriteRequest
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if n := materialise(t, &got); i == 0 && n != 1 {
			t.Errorf("seed %d: %d updates left undecoded, want 1 (the DELETE)", i, n)
		}
		if !proto.Equal(&got, want) {
			t.Errorf("seed %d: decoded\n%v\nwant\n%v", i, &got, want)
		}
	}
}

// TestCodecRuns checks the repeated fields the decoder carves from shared
// chunks: many entries (runs that cross chunks), matches on both sides of
// other fields, and entries that fall back to proto.Unmarshal half way
// through a run.
func TestCodecRuns(t *testing.T) {
	var b []byte
	for i := range 400 {
		var te []byte
		var err error
		switch i % 4 {
		case 0: // three params, two matches
			te, err = proto.Marshal(&p4v1.TableEntry{TableId: 7, Match: []*p4v1.FieldMatch{exact(1, []byte{byte(i)}), exact(2, []byte{1, byte(i)})},
				Action: act(1, []byte{1}, []byte{2, byte(i)}, []byte{3})})
		case 1: // a match after the action: proto appends it
			te, err = proto.Marshal(&p4v1.TableEntry{TableId: 7, Match: []*p4v1.FieldMatch{exact(1, []byte{byte(i)})},
				Action: act(1, []byte{byte(i)})})
			extra, merr := proto.Marshal(exact(3, []byte{9}))
			if merr != nil {
				t.Fatal(merr)
			}
			te = protowire.AppendBytes(protowire.AppendTag(te, 2, protowire.BytesType), extra)
		case 2: // a param with an unknown field: the entry falls back
			a := act(1, []byte{1}, []byte{byte(i)})
			a.GetAction().Params[1].ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
			te, err = proto.Marshal(&p4v1.TableEntry{TableId: 7, Match: []*p4v1.FieldMatch{exact(1, []byte{byte(i)})}, Action: a})
		case 3: // no match, no params
			te, err = proto.Marshal(&p4v1.TableEntry{TableId: 7, Action: act(2)})
		}
		if err != nil {
			t.Fatal(err)
		}
		u, err := proto.Marshal(&p4v1.Update{Type: p4v1.Update_INSERT})
		if err != nil {
			t.Fatal(err)
		}
		ent := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), te)
		u = protowire.AppendBytes(protowire.AppendTag(u, 2, protowire.BytesType), ent)
		b = protowire.AppendBytes(protowire.AppendTag(b, 4, protowire.BytesType), u)
	}
	var want p4v1.WriteRequest
	if err := proto.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	var got p4v1.WriteRequest
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
		t.Fatal(err)
	}
	// Plain entries are left undecoded; the others (case 2) are not.
	if n := materialise(t, &got); n != 300 {
		t.Errorf("%d entries left undecoded, want 300", n)
	}
	if !proto.Equal(&got, &want) {
		t.Fatalf("codec decoded\n%v\nproto decoded\n%v", &got, &want)
	}
	if n := len(got.Updates[1].GetEntity().GetTableEntry().GetMatch()); n != 2 {
		t.Errorf("a match after the action: %d matches, want 2", n)
	}
}

// TestCodecReuse: a request's memory serves the next request once
// released, whatever its updates, and each update's wire is the encoding
// of its table entry (what the translator keeps a copy of).
func TestCodecReuse(t *testing.T) {
	c := newCodec()
	batch := func(typ p4v1.Update_Type, base int) []byte {
		wr := &p4v1.WriteRequest{DeviceId: 1}
		for i := range 300 {
			te := &p4v1.TableEntry{TableId: 7, Match: []*p4v1.FieldMatch{exact(1, []byte{byte(base), byte(i)})},
				Action: act(1, []byte{byte(base)}, []byte{byte(i), 2})}
			wr.Updates = append(wr.Updates, upd(typ, te))
		}
		// Not a table entry: no wire.
		wr.Updates = append(wr.Updates, &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{
			CounterEntry: &p4v1.CounterEntry{CounterId: 3}}}})
		b, err := proto.Marshal(wr)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	decode := func(b []byte) *p4v1.WriteRequest {
		t.Helper()
		var wr, want p4v1.WriteRequest
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &wr); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if n := materialise(t, &wr); n != 300 {
			t.Fatalf("%d entries left undecoded, want 300", n)
		}
		if !proto.Equal(&wr, &want) {
			t.Fatalf("decoded\n%v\nwant\n%v", &wr, &want)
		}
		wires := heldWires(&wr)
		if len(wires) != len(wr.Updates) {
			t.Fatalf("%d wires for %d updates", len(wires), len(wr.Updates))
		}
		for i, u := range wr.Updates {
			te := u.GetEntity().GetTableEntry()
			if te == nil {
				if wires[i] != nil {
					t.Fatalf("update %d is no table entry but has a wire", i)
				}
				continue
			}
			var got p4v1.TableEntry
			if err := proto.Unmarshal(wires[i], &got); err != nil || !proto.Equal(&got, te) {
				t.Fatalf("update %d: wire decodes to %v (%v), want %v", i, &got, err, te)
			}
		}
		return &wr
	}
	for round, typ := range []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_MODIFY, p4v1.Update_DELETE, p4v1.Update_INSERT} {
		release(decode(batch(typ, round)))
	}
	// Once warm, a request allocates little: no slabs, no copy; only
	// proto's decoding of the counter entry.
	for _, typ := range []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_DELETE} {
		enc := batch(typ, 1)
		allocs := testing.AllocsPerRun(20, func() {
			var wr p4v1.WriteRequest
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(enc)}, &wr); err != nil {
				t.Fatal(err)
			}
			release(&wr)
		})
		if allocs > 10 && !raceEnabled {
			t.Errorf("decoding 300 %vs in reused memory: %v allocations", typ, allocs)
		}
	}
}

// FuzzWriteRequestCodec: whatever the bytes, the server codec decodes a
// WriteRequest exactly as proto.Unmarshal does, and fails when it fails,
// once the table entries it leaves undecoded are decoded from their wires
// (materialise, which checks they are plain and decode); the wires it
// gives with a request decode to its table entries.
func FuzzWriteRequestCodec(f *testing.F) {
	for _, r := range writeRequestSeeds(f) {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := newCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		var want p4v1.WriteRequest
		werr := proto.Unmarshal(b, &want)
		// Twice, the second time in the memory the first one gave back.
		for range 2 {
			var got p4v1.WriteRequest
			gerr := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b...))}, &got)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("proto.Unmarshal error %v, codec error %v", werr, gerr)
			}
			materialise(t, &got)
			if werr == nil && !proto.Equal(&got, &want) {
				t.Fatalf("codec decoded\n%v\nproto decoded\n%v", &got, &want)
			}
			if wires := heldWires(&got); wires != nil {
				for i, u := range got.Updates {
					if i >= len(wires) || wires[i] == nil {
						continue
					}
					var te p4v1.TableEntry
					if err := proto.Unmarshal(wires[i], &te); err != nil || !proto.Equal(&te, u.GetEntity().GetTableEntry()) {
						t.Fatalf("update %d: wire decodes to %v (%v), want %v", i, &te, err, u.GetEntity().GetTableEntry())
					}
				}
				if len(wires) != len(got.Updates) {
					t.Fatalf("%d wires for %d updates", len(wires), len(got.Updates))
				}
			}
			release(&got)
		}
	})
}

// TestFieldFastPath: field's inline reading of one-byte tags and lengths
// agrees with protowire on every two-byte header, whatever follows.
func TestFieldFastPath(t *testing.T) {
	for _, tail := range [][]byte{nil, {1}, bytes.Repeat([]byte{0x80}, 200), bytes.Repeat([]byte{7}, 127)} {
		for h := range 1 << 16 {
			b := append([]byte{byte(h >> 8), byte(h)}, tail...)
			num, typ, v, val, rest, err := field(b)
			snum, styp, sv, sval, srest, serr := fieldSlow(b)
			if (err == nil) != (serr == nil) || err == nil && (num != snum || typ != styp || v != sv ||
				!bytes.Equal(val, sval) || (val == nil) != (sval == nil) || !bytes.Equal(rest, srest)) {
				t.Fatalf("% x: field = %v %v %v % x % x %v, protowire: %v %v %v % x % x %v",
					b[:min(len(b), 8)], num, typ, v, val, rest[:min(len(rest), 8)], err, snum, styp, sv, sval, srest[:min(len(srest), 8)], serr)
			}
		}
	}
}

// BenchmarkDecodeWrite measures the codec on 1,000-entry Writes of an
// exact table (one match, a three-param action), released after each as
// Server.Write does: INSERTs and DELETEs, both decoded into reused memory.
func BenchmarkDecodeWrite(b *testing.B) {
	for _, typ := range []p4v1.Update_Type{p4v1.Update_INSERT, p4v1.Update_DELETE} {
		b.Run(typ.String(), func(b *testing.B) {
			wr := &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 1}}
			for i := range 1000 {
				wr.Updates = append(wr.Updates, upd(typ, &p4v1.TableEntry{TableId: 0x02000003,
					Match:  []*p4v1.FieldMatch{exact(1, []byte{byte(i >> 8), byte(i)})},
					Action: act(0x01000003, []byte{2, 0, 0, 0, 0, 1}, []byte{2, 0, 0, 0, 0, 2}, []byte{1})}))
			}
			enc, err := proto.Marshal(wr)
			if err != nil {
				b.Fatal(err)
			}
			c := newCodec()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var got p4v1.WriteRequest
				if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(enc)}, &got); err != nil {
					b.Fatal(err)
				}
				release(&got)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(1000*b.N), "ns/entry")
		})
	}
}

// TestCodecDecodesWholeWhenNotHeld: a request the codec cannot hold (the
// held map is full) has no views and no wires for the Write to find, so
// its plain table entries must be decoded into a tree like any other.
func TestCodecDecodesWholeWhenNotHeld(t *testing.T) {
	held.Lock()
	saved := held.m
	held.m = map[*p4v1.WriteRequest]*request{}
	for range maxHeld {
		held.m[&p4v1.WriteRequest{}] = nil
	}
	held.Unlock()
	t.Cleanup(func() {
		held.Lock()
		held.m = saved
		held.Unlock()
	})
	want := &p4v1.WriteRequest{DeviceId: 1, Updates: []*p4v1.Update{
		insert(&p4v1.TableEntry{TableId: 7, Match: []*p4v1.FieldMatch{exact(1, []byte{1})}, Action: act(1, []byte{2})}),
	}}
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got p4v1.WriteRequest
	if err := newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
		t.Fatal(err)
	}
	if heldWires(&got) != nil {
		t.Fatal("a request decoded with the held map full is held")
	}
	if !proto.Equal(&got, want) {
		t.Errorf("decoded with the held map full:\n%v\nwant\n%v", &got, want)
	}
}

// heldWires returns the table entry encodings of wr's updates when wr
// lives in reusable memory (heldParts).
func heldWires(wr *p4v1.WriteRequest) [][]byte {
	wires, _ := heldParts(wr)
	return wires
}
