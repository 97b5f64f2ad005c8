package translator

import (
	"slices"
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// FuzzWrite feeds arbitrary WriteRequest bytes to a Device on one of two
// pipelines (p4runtime-shell's unittest P4Info, p4tcd's externs P4Info): it
// must never panic, must answer one result per update, and a failed
// all-or-nothing batch must leave every entity of every kind as it was.
// A second Device gets the same batches through WriteWire, as the server
// sends them, with their memory scribbled over once written: it must
// answer and hold exactly what the first does. The first Device parses
// table entries before taking its lock (preparse), the second under it;
// a third takes WriteWire with the pre-parse. Three more take the table
// entries as the server's codec hands them over, each in the bytes the
// request gave (not re-encoded): a tree decoded from them (as the codec
// did for every entry), the bytes alone and their views for plain
// entries, with the pre-parse (WriteParsed, as the server does now), and
// the bytes alone for every entry, without (WriteWire parses them); the
// last two must also store exactly the Read forms the first stores.
func FuzzWrite(f *testing.F) {
	infos := []*p4configv1.P4Info{
		loadP4Info(f, "p4runtime-shell-unittest.p4info.pb.txt"),
		loadP4Info(f, "p4tcd-externs.p4info.txt"),
	}
	seed := func(pipe uint8, texts ...string) {
		var req p4v1.WriteRequest
		for i, s := range texts {
			var u p4v1.Update
			if err := prototext.Unmarshal([]byte(s), &u); err != nil {
				f.Fatalf("seed update %d: %v", i, err)
			}
			req.Updates = append(req.Updates, &u)
		}
		b, err := proto.Marshal(&req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(0), pipe)
	}
	const (
		actA    = `action { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } }`
		exact1  = `table_id: 33582705 match { field_id: 1 exact { value: "\x0a\x00\x00\x01" } }`
		member1 = `type: INSERT entity { action_profile_member { action_profile_id: 285237193 member_id: 1 action { action_id: 16783703 params { param_id: 1 value: "\x01" } } } }`
	)
	// Table entries (p4runtime-shell's unittest P4Info).
	seed(0, `type: INSERT entity { table_entry { `+exact1+` `+actA+` } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33582705 match { field_id: 1 exact { value: "\x01" } } `+actA+` } }`,
		`type: MODIFY entity { table_entry { table_id: 33582705 match { field_id: 1 exact { value: "\x01" } } `+actA+` } }`,
		`type: DELETE entity { table_entry { table_id: 33582705 match { field_id: 1 exact { value: "\x01" } } } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33584148 match { field_id: 1 ternary { value: "\x01" mask: "\xff" } } priority: 3 `+actA+` } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33603558 match { field_id: 1 range { low: "\x01" high: "\x09" } } priority: 3 `+actA+` } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33567650 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } `+actA+` } }`)
	seed(0, `type: MODIFY entity { table_entry { table_id: 33582705 is_default_action: true `+actA+` } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33554507 match { field_id: 1 exact { value: "\xff\xfe not utf-8" } } `+actA+` } }`)
	// Action profile members, groups, indirect and one-shot entries.
	seed(0, member1,
		`type: INSERT entity { action_profile_group { action_profile_id: 285237193 group_id: 1 members { member_id: 1 weight: 2 watch_port: "\x07" } } }`,
		`type: INSERT entity { table_entry { table_id: 33586946 match { field_id: 1 exact { value: "\x01" } } action { action_profile_group_id: 1 } } }`,
		`type: INSERT entity { table_entry { table_id: 33586946 match { field_id: 1 exact { value: "\x02" } } action { action_profile_member_id: 1 } } }`,
		`type: DELETE entity { action_profile_member { action_profile_id: 285237193 member_id: 1 } }`)
	seed(0, `type: INSERT entity { table_entry { table_id: 33586946 match { field_id: 1 exact { value: "\x01" } } action { action_profile_action_set {
		action_profile_actions { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } weight: 1 }
		action_profile_actions { action { action_id: 16783703 params { param_id: 1 value: "\x01" } } weight: 1 watch: 3 } } } } }`,
		`type: DELETE entity { table_entry { table_id: 33586946 match { field_id: 1 exact { value: "\x01" } } } }`)
	// Counters, meters and direct resources.
	seed(0, `type: MODIFY entity { counter_entry { counter_id: 302055013 index { index: 3 } data { packet_count: 10 } } }`,
		`type: MODIFY entity { counter_entry { counter_id: 302055013 data { byte_count: 1 } } }`)
	seed(0, `type: MODIFY entity { meter_entry { meter_id: 335597387 index { index: 1 } config { cir: 1 cburst: 2 pir: 3 pburst: 4 } } }`,
		`type: MODIFY entity { meter_entry { meter_id: 335597387 } }`)
	seed(0, `type: INSERT entity { table_entry { `+exact1+` `+actA+` counter_data { packet_count: 1 } meter_config { cir: 1 cburst: 1 pir: 1 pburst: 1 } } }`,
		`type: MODIFY entity { direct_counter_entry { table_entry { `+exact1+` } data { byte_count: 7 } } }`,
		`type: MODIFY entity { direct_meter_entry { table_entry { `+exact1+` } config { cir: 5 cburst: 5 pir: 6 pburst: 6 } } }`)
	// Packet replication and digests.
	seed(0, `type: INSERT entity { packet_replication_engine_entry { multicast_group_entry { multicast_group_id: 1 replicas { egress_port: 1 instance: 1 } replicas { port: "\x02" instance: 1 backup_replicas { port: "\x03" } } metadata: "\xff" } } }`,
		`type: INSERT entity { packet_replication_engine_entry { clone_session_entry { session_id: 5 replicas { egress_port: 1 } class_of_service: 2 packet_length_bytes: 128 } } }`,
		`type: DELETE entity { packet_replication_engine_entry { multicast_group_entry { multicast_group_id: 1 } } }`)
	seed(0, `type: INSERT entity { digest_entry { digest_id: 385901477 config { max_timeout_ns: 1000 max_list_size: 10 ack_timeout_ns: 5 } } }`,
		`type: MODIFY entity { digest_entry { digest_id: 385901477 config { max_list_size: 1 } } }`,
		`type: DELETE entity { digest_entry { digest_id: 385901477 } }`)
	// Registers, value sets and sum_of_members selectors (p4tcd's P4Info).
	seed(1, `type: MODIFY entity { register_entry { register_id: 0x16000001 index { index: 1 } data { bitstring: "\x0f\xff" } } }`,
		`type: MODIFY entity { register_entry { register_id: 0x16000003 data { bitstring: "\xff\x80" } } }`,
		`type: MODIFY entity { register_entry { register_id: 0x16000004 index { index: 0 } data { bool: true } } }`)
	seed(1, `type: MODIFY entity { value_set_entry { value_set_id: 0x03000002 members { match { field_id: 1 ternary { value: "\x06" mask: "\xff" } } match { field_id: 2 exact { value: "\x01" } } } } }`)
	seed(1, `type: INSERT entity { table_entry { table_id: 0x02000005 match { field_id: 1 exact { value: "\x01" } } action { action_profile_action_set {
		action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 4 } } } } }`)

	f.Fuzz(func(t *testing.T, b []byte, atomicity uint8, pipe uint8) {
		var req p4v1.WriteRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		d, dw, dp := NewDevice(NewNoneBackend()), NewDevice(NewNoneBackend()), NewDevice(NewNoneBackend())
		d.preparseMin, dw.preparseMin, dp.preparseMin = 1, -1, 1
		// Raw wires: as a tree, plain ones alone, all alone.
		dr, dlp, dl := NewDevice(NewNoneBackend()), NewDevice(NewNoneBackend()), NewDevice(NewNoneBackend())
		dr.preparseMin, dlp.preparseMin, dl.preparseMin = 1, 1, -1
		info := infos[int(pipe)%len(infos)]
		for _, d := range []*Device{d, dw, dp, dr, dlp, dl} {
			if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: proto.Clone(info).(*p4configv1.P4Info)}); err != nil {
				t.Fatal(err)
			}
		}
		// First apply the batch, then the same bytes again: the second
		// run exercises ALREADY_EXISTS/NOT_FOUND paths against real state.
		for range 2 {
			var again p4v1.WriteRequest
			if err := proto.Unmarshal(b, &again); err != nil {
				t.Fatal(err)
			}
			before := fuzzState(t, d)
			errs, err := d.Write(again.GetUpdates(), p4v1.WriteRequest_Atomicity(atomicity%3), nil)
			for _, dw := range []*Device{dw, dp} {
				var viaWire p4v1.WriteRequest
				if err := proto.Unmarshal(b, &viaWire); err != nil {
					t.Fatal(err)
				}
				ups, wires, scribble := wireUpdates(t, viaWire.GetUpdates())
				werrs, werr := dw.WriteWire(ups, wires, p4v1.WriteRequest_Atomicity(atomicity%3), nil)
				scribble()
				if (err == nil) != (werr == nil) || len(errs) != len(werrs) {
					t.Fatalf("Write: %v %v; WriteWire: %v %v", errs, err, werrs, werr)
				}
				for i := range errs {
					if (errs[i] == nil) != (werrs[i] == nil) || errs[i] != nil && errs[i].Error() != werrs[i].Error() {
						t.Fatalf("update %d: Write: %v; WriteWire: %v", i, errs[i], werrs[i])
					}
				}
				if got, want := fuzzState(t, dw), fuzzState(t, d); got != want {
					t.Fatalf("WriteWire stored\n%s\nWrite stored\n%s", got, want)
				}
			}
			for k, dw := range []*Device{dr, dlp, dl} {
				var viaWire p4v1.WriteRequest
				if err := proto.Unmarshal(b, &viaWire); err != nil {
					t.Fatal(err)
				}
				var ups []*p4v1.Update
				var wires [][]byte
				var views []EntryView
				var scribble func()
				if k == 0 {
					var raw [][]byte
					ups, raw, _, scribble = lazyUpdates(t, b, viaWire.GetUpdates(), true)
					// The tree of every raw wire, as the codec gave.
					for i, w := range raw {
						if w != nil && ups[i].GetEntity() == nil {
							ups[i] = &p4v1.Update{Type: ups[i].GetType(), Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: aliasDecode(t, w)}}}
						}
					}
					wires = raw
				} else {
					ups, wires, views, scribble = lazyUpdates(t, b, viaWire.GetUpdates(), k == 1)
					if k == 2 {
						views = nil
					}
				}
				werrs, werr := dw.WriteParsed(ups, wires, views, p4v1.WriteRequest_Atomicity(atomicity%3), nil)
				scribble()
				if (err == nil) != (werr == nil) || len(errs) != len(werrs) {
					t.Fatalf("raw %d: Write: %v %v; WriteWire: %v %v", k, errs, err, werrs, werr)
				}
				for i := range errs {
					if (errs[i] == nil) != (werrs[i] == nil) || errs[i] != nil && errs[i].Error() != werrs[i].Error() {
						t.Fatalf("raw %d: update %d: Write: %v; WriteWire: %v", k, i, errs[i], werrs[i])
					}
				}
				if got, want := fuzzState(t, dw), fuzzState(t, d); got != want {
					t.Fatalf("raw %d: WriteWire stored\n%s\nWrite stored\n%s", k, got, want)
				}
				if k > 0 {
					if got, want := encodedState(t, dw), encodedState(t, dr); got != want {
						t.Fatalf("raw %d: Read forms\n%s\nwant (from the tree)\n%s", k, got, want)
					}
				}
			}
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
			if atomicity%3 != 0 && failed > 0 {
				if after := fuzzState(t, d); after != before {
					t.Fatalf("an all-or-nothing batch failed but changed the state:\nbefore %s\nafter  %s", before, after)
				}
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

// fuzzState renders every entity of every kind, sorted.
func fuzzState(t *testing.T, d *Device) string {
	t.Helper()
	filters := []*p4v1.Entity{
		{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}}},
		{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{IsDefaultAction: true, CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}}},
		{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{}}},
		{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: &p4v1.ActionProfileGroup{}}},
		{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{}}},
		{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{}}},
		{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: &p4v1.RegisterEntry{}}},
		{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: &p4v1.MulticastGroupEntry{}}}}},
		{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{}}}}},
		{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: &p4v1.ValueSetEntry{}}},
		{Entity: &p4v1.Entity_DigestEntry{DigestEntry: &p4v1.DigestEntry{}}},
	}
	var ss []string
	errs, err := d.Read(filters, nil, func(e *p4v1.Entity) error {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		ss = append(ss, string(b))
		return nil
	})
	if err != nil || errs != nil {
		t.Fatalf("state read: %v %v", err, errs)
	}
	slices.Sort(ss)
	return strings.Join(ss, "|")
}

// FuzzCompileP4Info feeds arbitrary P4Info bytes to Compile: it must never
// panic, and what it accepts must be consistent.
func FuzzCompileP4Info(f *testing.F) {
	for _, name := range []string{"p4runtime-shell-unittest.p4info.pb.txt", "pi-unittest.p4info.txt", "pi-simple_router.p4info.txt", "pi-customids.p4info.txt", "p4tcd-externs.p4info.txt"} {
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
