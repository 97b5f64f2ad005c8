package translator

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// Ids of p4tcd-externs.p4info.txt.
const (
	xTDirect   = 0x02000001
	xTProf     = 0x02000003
	xTSel      = 0x02000004
	xSetPort   = 0x01000002
	xProf      = 0x11000001
	xSel       = 0x11000002
	xCPkts     = 0x12000001
	xMTr       = 0x15000001
	xRBit      = 0x16000001
	xRInt      = 0x16000003
	xVsEth     = 0x03000001
	xLearn     = 0x18000001
	xDirectCtr = 0x13000001
)

// recBackend records every op it is handed, in order, and can fail the
// n-th extern op (1-based; 0 never). Its live counters are the written
// value plus liveExtra packets; its registers read as liveReg.
type recBackend struct {
	noneBackend
	ops       []Step
	failExt   int
	nExt      int
	liveExtra int64
	liveReg   []byte
}

func (b *recBackend) Apply(ops []Op) (int, error) {
	for i := range ops {
		op := ops[i]
		b.ops = append(b.ops, Step{Op: &op})
	}
	return len(ops), nil
}

func (b *recBackend) ApplyExterns(ops []ExternOp) (int, error) {
	for i := range ops {
		b.nExt++
		if b.nExt == b.failExt {
			return i, Errorf(ErrFull, "injected failure of %v", ops[i].Kind)
		}
		x := ops[i]
		b.ops = append(b.ops, Step{Extern: &x})
	}
	return len(ops), nil
}

func (b *recBackend) ReadCounters(cells []CounterCell) error {
	for i := range cells {
		cells[i].Data.Packets += b.liveExtra
	}
	return nil
}

func (b *recBackend) ReadRegisters(cells []RegisterCell) error {
	if b.liveReg != nil {
		for i := range cells {
			cells[i].Value = b.liveReg
		}
	}
	return nil
}

// kinds renders the recorded ops as their kinds, and forgets them.
func (b *recBackend) kinds() string {
	var ks []string
	for _, s := range b.ops {
		if s.Op != nil {
			ks = append(ks, "table-"+s.Op.Kind.String())
		} else {
			ks = append(ks, s.Extern.Kind.String())
		}
	}
	b.ops = nil
	return strings.Join(ks, " ")
}

func externDevice(t *testing.T, b Backend, action p4v1.SetForwardingPipelineConfigRequest_Action) *Device {
	t.Helper()
	d := NewDevice(b)
	if err := d.SetPipeline(action, &p4v1.ForwardingPipelineConfig{P4Info: loadP4Info(t, "p4tcd-externs.p4info.txt")}); err != nil {
		t.Fatal(err)
	}
	return d
}

// ups parses updates in text format.
func ups(t *testing.T, texts ...string) []*p4v1.Update {
	t.Helper()
	out := make([]*p4v1.Update, len(texts))
	for i, s := range texts {
		out[i] = &p4v1.Update{}
		if err := prototext.Unmarshal([]byte(s), out[i]); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	return out
}

func mustWrite(t *testing.T, d *Device, texts ...string) {
	t.Helper()
	errs, err := d.Write(ups(t, texts...), p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if err != nil || errs != nil {
		t.Fatalf("write: %v %v", err, errs)
	}
}

func readAll(t *testing.T, d *Device, texts ...string) []*p4v1.Entity {
	t.Helper()
	var ents []*p4v1.Entity
	for _, s := range texts {
		var e p4v1.Entity
		if err := prototext.Unmarshal([]byte(s), &e); err != nil {
			t.Fatal(err)
		}
		ents = append(ents, &e)
	}
	var out []*p4v1.Entity
	errs, err := d.Read(ents, nil, func(e *p4v1.Entity) error { out = append(out, e); return nil })
	if err != nil || errs != nil {
		t.Fatalf("read: %v %v", err, errs)
	}
	return out
}

const (
	oneShot2 = `type: INSERT entity { table_entry { table_id: 0x02000004 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } }
		action { action_profile_action_set {
			action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 1 watch_port: "\x07" }
			action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 2 } } } } }`
	oneShot1 = `type: MODIFY entity { table_entry { table_id: 0x02000004 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } }
		action { action_profile_action_set {
			action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x03" } } weight: 5 } } } } }`
	oneShotDel = `type: DELETE entity { table_entry { table_id: 0x02000004 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } } }`
	profMember = `type: INSERT entity { action_profile_member { action_profile_id: 0x11000001 member_id: 1 action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } } }`
	ctrWrite   = `type: MODIFY entity { counter_entry { counter_id: 0x12000001 index { index: 1 } data { packet_count: 5 } } }`
)

// A one-shot entry reaches the backend as hidden members, a hidden group and
// an entry pointing at the group; replacing or deleting it removes them
// after the entry changed.
func TestOneShotBackendOps(t *testing.T) {
	b := &recBackend{}
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d, oneShot2)
	ops := b.ops
	if got := b.kinds(); got != "insert-member insert-member insert-group table-insert" {
		t.Fatalf("insert: %s", got)
	}
	m1, m2, g, e := ops[0].Extern.Member, ops[1].Extern.Member, ops[2].Extern.Group, ops[3].Op.Entry
	if !m1.OneShot || !g.OneShot || m1.ID == m2.ID || g.Members[0].Member != m1.ID || g.Members[1].Member != m2.ID {
		t.Errorf("hidden members %+v %+v, group %+v", m1, m2, g)
	}
	if g.Members[0].WatchPort != 7 || g.Members[1].Weight != 2 || g.size != 3 {
		t.Errorf("group members %+v (size %d)", g.Members, g.size)
	}
	if e.Indirect == nil || e.Indirect.Group != g.ID || e.Indirect.OneShot == nil || e.Action != nil {
		t.Errorf("entry action %+v", e.Indirect)
	}
	mustWrite(t, d, oneShot1)
	ops = b.ops
	if got := b.kinds(); got != "insert-member insert-group table-modify delete-group delete-member delete-member" {
		t.Fatalf("modify: %s", got)
	}
	if ops[3].Extern.Group.ID != g.ID || ops[2].Op.Entry.Indirect.Group != ops[1].Extern.Group.ID {
		t.Errorf("modify swapped groups wrongly")
	}
	mustWrite(t, d, oneShotDel)
	if got := b.kinds(); got != "table-delete delete-group delete-member" {
		t.Fatalf("delete: %s", got)
	}
	ps := d.st.profiles[xSel]
	if len(ps.members) != 0 || len(ps.groups) != 0 || ps.oneShots != 0 || ps.used != 0 {
		t.Errorf("selector state left: %d members, %d groups, %d one-shots, used %d", len(ps.members), len(ps.groups), ps.oneShots, ps.used)
	}
}

// When the backend fails an op in the middle of an update, the ops of that
// update it already applied are undone in the backend too, and the other
// updates of a CONTINUE_ON_ERROR batch still apply.
func TestExternBackendFailureUndoesTheUpdate(t *testing.T) {
	b := &recBackend{failExt: 4} // the one-shot's group insert
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	errs, err := d.Write(ups(t, profMember, oneShot2, ctrWrite), p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if err != nil || len(errs) != 3 || errs[0] != nil || !isErr(errs[1], ErrFull) || errs[2] != nil {
		t.Fatalf("errs %v, err %v", errs, err)
	}
	if got := b.kinds(); got != "insert-member insert-member insert-member delete-member delete-member write-counter" {
		t.Errorf("backend saw %s", got)
	}
	if ps := d.st.profiles[xSel]; len(ps.members) != 0 || ps.oneShots != 0 || len(d.st.tables[xTSel].entries) != 0 {
		t.Errorf("the failed one-shot left state behind")
	}
	if len(d.st.profiles[xProf].members) != 1 || d.st.counters[xCPkts].get(1).Packets != 5 {
		t.Errorf("the good updates did not apply")
	}
	b.failExt = 0
	mustWrite(t, d, oneShot2)
}

// ROLLBACK_ON_ERROR after the backend applied extern ops hands it their
// inverses, last first; array writes restore the values written before.
func TestExternRollbackInBackend(t *testing.T) {
	b := &recBackend{}
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d, `type: MODIFY entity { counter_entry { counter_id: 0x12000001 index { index: 2 } data { packet_count: 2 } } }`,
		`type: MODIFY entity { meter_entry { meter_id: 0x15000001 config { cir: 1 cburst: 1 pir: 2 pburst: 2 } } }`)
	b.ops = nil
	b.failExt, b.nExt = 7, 0
	batch := ups(t,
		`type: MODIFY entity { counter_entry { counter_id: 0x12000001 data { packet_count: 9 } } }`,
		`type: MODIFY entity { meter_entry { meter_id: 0x15000001 index { index: 1 } } }`,
		`type: INSERT entity { packet_replication_engine_entry { multicast_group_entry { multicast_group_id: 1 replicas { egress_port: 1 } } } }`,
		profMember,
		`type: MODIFY entity { value_set_entry { value_set_id: 0x03000001 members { match { field_id: 1 exact { value: "\x88\xcc" } } } } }`,
		`type: INSERT entity { digest_entry { digest_id: 0x18000001 config { max_list_size: 1 } } }`,
		`type: MODIFY entity { register_entry { register_id: 0x16000001 index { index: 0 } data { bitstring: "\x01" } } }`,
		`type: MODIFY entity { register_entry { register_id: 0x16000001 index { index: 1 } data { bitstring: "\x01" } } }`, // fails
	)
	errs, err := d.Write(batch, p4v1.WriteRequest_ROLLBACK_ON_ERROR, nil)
	if err != nil || !isErr(errs[7], ErrFull) || !isErr(errs[0], ErrAborted) {
		t.Fatalf("errs %v, err %v", errs, err)
	}
	// The batch reached the backend in one flush that failed at the
	// second register write; everything before was undone, last first.
	var got []string
	for _, s := range b.ops {
		x := s.Extern
		switch x.Kind {
		case ExtWriteCounter:
			got = append(got, fmt.Sprintf("%v[%d]=%d", x.Kind, x.Counter.Index, x.Counter.Data.Packets))
		case ExtWriteMeter:
			got = append(got, fmt.Sprintf("%v[%d]=%v", x.Kind, x.Meter.Index, x.Meter.Config != nil))
		case ExtWriteRegister:
			got = append(got, fmt.Sprintf("%v[%d]=%x", x.Kind, x.Register.Index, x.Register.Value))
		default:
			got = append(got, x.Kind.String())
		}
	}
	want := []string{
		"write-counter[-1]=9", "write-meter[1]=false", "insert-multicast", "insert-member", "write-value-set", "write-register[0]=01",
		"write-register[0]=00", "write-value-set", "delete-member", "delete-multicast", "write-meter[1]=true",
		"write-counter[-1]=0", "write-counter[2]=2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("backend saw\n%q\nwant\n%q", got, want)
	}
	if c := d.st.counters[xCPkts]; c.get(2).Packets != 2 || c.get(0).Packets != 0 {
		t.Errorf("counter not restored")
	}
	if len(d.st.digests) != 0 || len(d.st.multicast) != 0 || len(d.st.valueSets[xVsEth].members) != 0 {
		t.Errorf("store not restored")
	}
}

// COMMIT after VERIFY_AND_SAVE replays the externs written meanwhile
// before the entries that use them.
func TestCommitReplaysExterns(t *testing.T) {
	b := &recBackend{}
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE)
	mustWrite(t, d,
		`type: INSERT entity { action_profile_member { action_profile_id: 0x11000002 member_id: 3 action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } } }`,
		`type: INSERT entity { action_profile_group { action_profile_id: 0x11000002 group_id: 4 members { member_id: 3 weight: 1 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000004 match { field_id: 1 lpm { value: "\x0b\x00\x00\x00" prefix_len: 8 } } action { action_profile_group_id: 4 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } counter_data { packet_count: 4 } meter_config { cir: 1 cburst: 1 pir: 1 pburst: 1 } } }`,
		`type: MODIFY entity { counter_entry { counter_id: 0x12000001 data { packet_count: 1 } } }`,
		`type: MODIFY entity { meter_entry { meter_id: 0x15000001 index { index: 3 } config { cir: 1 cburst: 1 pir: 2 pburst: 2 } } }`,
		`type: MODIFY entity { register_entry { register_id: 0x16000003 index { index: 1 } data { bitstring: "\xff" } } }`,
		`type: INSERT entity { packet_replication_engine_entry { clone_session_entry { session_id: 9 replicas { egress_port: 1 } } } }`,
		`type: MODIFY entity { value_set_entry { value_set_id: 0x03000001 members { match { field_id: 1 exact { value: "\x88\xcc" } } } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000005 match { field_id: 1 exact { value: "\x01" } }
			action { action_profile_action_set { action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 1 } } } } }`,
	)
	if len(b.ops) != 0 {
		t.Fatalf("a saved (not committed) config reached the backend: %s", b.kinds())
	}
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_COMMIT, nil); err != nil {
		t.Fatal(err)
	}
	got := b.kinds()
	want := "insert-member insert-group insert-member insert-group insert-clone write-value-set write-counter write-meter write-register table-insert table-insert table-insert"
	if got != want {
		t.Errorf("replay\n%s\nwant\n%s", got, want)
	}
}

// Reads take counters and registers live from the backend, and
// canonicalise what it gives.
func TestLiveReads(t *testing.T) {
	b := &recBackend{liveExtra: 1000, liveReg: []byte{0xff, 0xff}}
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d, ctrWrite,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } counter_data { packet_count: 4 } } }`)
	got := readAll(t, d, `counter_entry { counter_id: 0x12000001 index { index: 1 } }`,
		`table_entry { table_id: 0x02000001 counter_data {} }`,
		`direct_counter_entry { table_entry { table_id: 0x02000001 } }`,
		`register_entry { register_id: 0x16000001 index { index: 0 } }`,
		`register_entry { register_id: 0x16000003 index { index: 0 } }`)
	if p := got[0].GetCounterEntry().GetData().GetPacketCount(); p != 1005 {
		t.Errorf("counter: %d packets, want 1005", p)
	}
	if p := got[1].GetTableEntry().GetCounterData().GetPacketCount(); p != 1004 {
		t.Errorf("table entry counter_data: %d packets, want 1004", p)
	}
	if p := got[2].GetDirectCounterEntry().GetData().GetPacketCount(); p != 1004 {
		t.Errorf("direct counter: %d packets, want 1004", p)
	}
	if v := got[3].GetRegisterEntry().GetData().GetBitstring(); !bytes.Equal(v, []byte{0x0f, 0xff}) {
		t.Errorf("bit<12> register from 0xffff: %x, want 0fff", v)
	}
	if v := got[4].GetRegisterEntry().GetData().GetBitstring(); !bytes.Equal(v, []byte{0xff}) {
		t.Errorf("int<8> register from 0xffff: %x, want ff (-1)", v)
	}
}

func TestCanonicalSigned(t *testing.T) {
	tests := []struct {
		in    []byte
		width int
		want  []byte
		ok    bool
	}{
		{[]byte{0}, 8, []byte{0}, true},
		{[]byte{0x7f}, 8, []byte{0x7f}, true},
		{[]byte{0x80}, 8, []byte{0x80}, true},
		{[]byte{0xff, 0x80}, 8, []byte{0x80}, true},
		{[]byte{0x00, 0x80}, 8, []byte{0x00, 0x80}, false}, // +128 needs 9 bits
		{[]byte{0xff, 0xff, 0xff}, 1, []byte{0xff}, true},  // -1 fits int<1>
		{[]byte{0x01}, 1, []byte{0x01}, false},             // +1 does not
		{[]byte{0xf0}, 5, []byte{0xf0}, true},              // -16
		{[]byte{0xe0}, 5, []byte{0xe0}, false},             // -32
		{nil, 8, nil, false},
	}
	for _, tc := range tests {
		c, ok := canonicalSigned(tc.in, tc.width)
		if ok != tc.ok || (ok && !bytes.Equal(c, tc.want)) {
			t.Errorf("canonicalSigned(%x, %d) = %x, %v; want %x, %v", tc.in, tc.width, c, ok, tc.want, tc.ok)
		}
	}
}

func TestNormalizeCell(t *testing.T) {
	bit12 := &Register{Kind: DataBit, Bits: 12}
	int12 := &Register{Kind: DataInt, Bits: 12}
	b := &Register{Kind: DataBool, Bits: 1}
	tests := []struct {
		r    *Register
		raw  []byte
		want []byte
	}{
		{bit12, []byte{0xff, 0xff}, []byte{0x0f, 0xff}},
		{bit12, []byte{0x00, 0x05}, []byte{0x05}},
		{bit12, []byte{0x05}, []byte{0x05}},
		{bit12, []byte{0xaa, 0x00, 0x01}, []byte{0x01}},
		{int12, []byte{0x08, 0x00}, []byte{0xf8, 0x00}}, // -2048
		{int12, []byte{0x07, 0xff}, []byte{0x07, 0xff}},
		{int12, []byte{0x0f, 0xff}, []byte{0xff}}, // -1
		{b, []byte{0x02}, []byte{0}},              // only the low bit counts
		{b, []byte{0x03}, []byte{1}},
		{bit12, nil, []byte{0}},
	}
	for _, tc := range tests {
		if got := normalizeCell(tc.r, tc.raw); !bytes.Equal(got, tc.want) {
			t.Errorf("normalizeCell(%v<%d>, %x) = %x, want %x", kindName(tc.r.Kind), tc.r.Bits, tc.raw, got, tc.want)
		}
	}
}

// RECONCILE_AND_COMMIT keeps entries with their direct resources and
// digest configs, and refuses when state it cannot carry exists.
func TestReconcileWithExterns(t *testing.T) {
	d := externDevice(t, NewNoneBackend(), p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } counter_data { packet_count: 4 } meter_config { cir: 1 cburst: 1 pir: 1 pburst: 1 } } }`,
		`type: INSERT entity { digest_entry { digest_id: 0x18000001 config { max_list_size: 3 } } }`)
	cfg := &p4v1.ForwardingPipelineConfig{P4Info: loadP4Info(t, "p4tcd-externs.p4info.txt")}
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, cfg); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, d, `table_entry { table_id: 0x02000001 counter_data {} meter_config {} }`)
	if len(got) != 1 || got[0].GetTableEntry().GetCounterData().GetPacketCount() != 4 || got[0].GetTableEntry().GetMeterConfig().GetCir() != 1 {
		t.Errorf("reconciled entry: %v", got)
	}
	if c, ok := d.Digest(xLearn); !ok || c.MaxListSize != 3 {
		t.Errorf("digest config after reconcile: %+v %v", c, ok)
	}
	mustWrite(t, d, profMember)
	err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, cfg)
	if !isErr(err, ErrInvalid) || !strings.Contains(err.Error(), "action profile") {
		t.Errorf("reconcile with members: %v, want INVALID_ARGUMENT naming them", err)
	}
}

// snapBackend is a datapath that outlived the daemon: it hands back snap.
type snapBackend struct {
	noneBackend
	snap *Snapshot
}

func (b *snapBackend) Restore() (*Snapshot, error) { return b.snap, nil }

// snapshotOf is what a backend that kept everything it was given would
// hand back for d.
func snapshotOf(t *testing.T, d *Device) *Snapshot {
	t.Helper()
	raw, err := d.cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := &Snapshot{Config: raw}
	for _, ts := range d.st.tables {
		for _, e := range ts.entries {
			s.Entries = append(s.Entries, e.Saved())
		}
		if ts.deflt.Action != ts.table.InitialDefault || ts.deflt.Direct != nil {
			s.Entries = append(s.Entries, ts.deflt.Saved())
		}
	}
	for _, ps := range d.st.profiles {
		for _, m := range ps.members {
			s.Members = append(s.Members, m.Saved())
		}
		for _, g := range ps.groups {
			s.Groups = append(s.Groups, g.Saved())
		}
	}
	for _, g := range d.st.multicast {
		s.Multicast = append(s.Multicast, *g)
	}
	for _, c := range d.st.clones {
		s.Clones = append(s.Clones, *c)
	}
	for _, vs := range d.st.valueSets {
		if len(vs.members) > 0 {
			s.ValueSets = append(s.ValueSets, (&ValueSetWrite{ValueSet: vs.vs, Members: vs.members}).Saved())
		}
	}
	for _, ms := range d.st.meters {
		for i := range ms.m.Size {
			if c := ms.get(i); c != nil {
				s.Meters = append(s.Meters, SavedMeterCell{MeterID: ms.m.ID, Index: i, Config: *c})
			}
		}
	}
	return s
}

// A restart rebuilds every extern a backend kept, reading back as it was
// written (forms of ports and watch ports included); one-shot entries keep
// the hidden ids the datapath knows them by.
func TestRestoreExterns(t *testing.T) {
	d := externDevice(t, NewNoneBackend(), p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d,
		`type: INSERT entity { action_profile_member { action_profile_id: 0x11000002 member_id: 3 action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } } }`,
		`type: INSERT entity { action_profile_group { action_profile_id: 0x11000002 group_id: 4 max_size: 5 members { member_id: 3 weight: 1 watch: 6 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000004 match { field_id: 1 lpm { value: "\x0b\x00\x00\x00" prefix_len: 8 } } action { action_profile_group_id: 4 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000005 match { field_id: 1 exact { value: "\x01" } }
			action { action_profile_action_set { action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 1 watch_port: "\x09" }
			action_profile_actions { action { action_id: 0x01000002 params { param_id: 1 value: "\x01" } } weight: 1 watch: 2 } } } } }`,
		`type: INSERT entity { action_profile_member { action_profile_id: 0x11000001 member_id: 1 action { action_id: 0x01000004 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000003 match { field_id: 1 exact { value: "\x01" } } action { action_profile_member_id: 1 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } meter_config { cir: 1 cburst: 1 pir: 3 pburst: 3 } } }`,
		`type: MODIFY entity { direct_meter_entry { table_entry { table_id: 0x02000001 is_default_action: true } config { cir: 2 cburst: 2 pir: 2 pburst: 2 } } }`,
		`type: MODIFY entity { meter_entry { meter_id: 0x15000001 index { index: 3 } config { cir: 1 cburst: 1 pir: 2 pburst: 2 } } }`,
		`type: INSERT entity { packet_replication_engine_entry { multicast_group_entry { multicast_group_id: 1 metadata: "m"
			replicas { egress_port: 1 instance: 1 } replicas { port: "\x02" instance: 1 backup_replicas { port: "\x03" instance: 4 } } } } }`,
		`type: INSERT entity { packet_replication_engine_entry { clone_session_entry { session_id: 9 replicas { egress_port: 1 } class_of_service: 3 packet_length_bytes: 64 } } }`,
		`type: MODIFY entity { value_set_entry { value_set_id: 0x03000002 members { match { field_id: 1 ternary { value: "\x06" mask: "\x0f" } } match { field_id: 2 exact { value: "\x01" } } } } }`,
	)
	r := restoreCopy(t, d)
	oneShot := r.st.tables[0x02000005].entries
	for _, e := range oneShot {
		orig := d.st.tables[0x02000005].entries[e.skey]
		if e.Indirect.Group != orig.Indirect.Group || e.Indirect.OneShot.Actions[1].Member != orig.Indirect.OneShot.Actions[1].Member {
			t.Errorf("one-shot ids changed across the restart: %+v vs %+v", e.Indirect, orig.Indirect)
		}
	}
	// The restored references hold: the group is in use, members can't go.
	errs, _ := r.Write(ups(t, `type: DELETE entity { action_profile_group { action_profile_id: 0x11000002 group_id: 4 } }`,
		`type: DELETE entity { action_profile_member { action_profile_id: 0x11000001 member_id: 1 } }`), p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
	if len(errs) != 2 || !isErr(errs[0], ErrPrecondition) || !isErr(errs[1], ErrPrecondition) {
		t.Errorf("deletes of restored objects in use: %v", errs)
	}
	// A snapshot whose entry names a member that was not kept is refused.
	bad := snapshotOf(t, d)
	bad.Members = nil
	if ok, err := NewDevice(&snapBackend{snap: bad}).Restore(); ok || err == nil {
		t.Errorf("Restore of an entry whose member is missing: %v, %v", ok, err)
	}
}

// Initial entries of a device config cannot point at members (none exist
// at commit) nor set direct resources the datapath lacks.
func TestInitialEntriesWithExterns(t *testing.T) {
	info := loadP4Info(t, "p4tcd-externs.p4info.txt")
	cfg := func(entry string) *p4v1.ForwardingPipelineConfig {
		var u p4v1.Update
		if err := prototext.Unmarshal([]byte(entry), &u); err != nil {
			t.Fatal(err)
		}
		dc := &p4tcdv1.DeviceConfig{Format: DeviceConfigFormat, PipelineName: "externs", InitialEntries: []*p4v1.Update{&u}}
		b, err := proto.Marshal(dc)
		if err != nil {
			t.Fatal(err)
		}
		return &p4v1.ForwardingPipelineConfig{P4Info: info, P4DeviceConfig: b}
	}
	indirect := cfg(`type: INSERT entity { table_entry { table_id: 0x02000003 match { field_id: 1 exact { value: "\x01" } } action { action_profile_member_id: 1 } } }`)
	if err := NewDevice(NewNoneBackend()).SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, indirect); !isErr(err, ErrInvalid) {
		t.Errorf("initial entry of an indirect table: %v, want ErrInvalid", err)
	}
	metered := cfg(`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } meter_config { cir: 1 cburst: 1 pir: 1 pburst: 1 } } }`)
	if err := NewDevice(plainBackend{NewNoneBackend()}).SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, metered); !isErr(err, ErrInvalid) {
		t.Errorf("initial entry with a meter on a datapath without meters: %v, want ErrInvalid", err)
	}
	d := NewDevice(NewNoneBackend())
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, metered); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, d, `table_entry { table_id: 0x02000001 meter_config {} }`); len(got) != 1 || got[0].GetTableEntry().GetMeterConfig() == nil {
		t.Errorf("initial entry read back %v", got)
	}
}

// plainBackend is a datapath without extern support.
type plainBackend struct{ Backend }

// Reads run in parallel with each other and with Writes; live counter reads
// reach the backend one at a time and each Read sees whole Writes.
func TestConcurrentExternReads(t *testing.T) {
	b := &serialBackend{}
	d := externDevice(t, b, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	done := make(chan error, 5)
	for range 4 {
		go func() {
			for range 50 {
				var cells []*p4v1.CounterEntry
				errs, err := d.Read(ups2ents(t, `counter_entry { counter_id: 0x12000001 }`), nil, func(e *p4v1.Entity) error {
					cells = append(cells, e.GetCounterEntry())
					return nil
				})
				if err != nil || errs != nil || len(cells) != 8 {
					done <- fmt.Errorf("read: %v %v, %d cells", err, errs, len(cells))
					return
				}
				for _, c := range cells[1:] {
					if c.GetData().GetPacketCount() != cells[0].GetData().GetPacketCount() {
						done <- fmt.Errorf("a read saw half a wildcard write: %v", cells)
						return
					}
				}
			}
			done <- nil
		}()
	}
	go func() {
		for i := range 50 {
			errs, err := d.Write(ups(t, fmt.Sprintf(`type: MODIFY entity { counter_entry { counter_id: 0x12000001 data { packet_count: %d } } }`, i)), 0, nil)
			if err != nil || errs != nil {
				done <- fmt.Errorf("write: %v %v", err, errs)
				return
			}
		}
		done <- nil
	}()
	for range 5 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// serialBackend fails the test's race detector if two live reads overlap.
type serialBackend struct {
	noneBackend
	busy int
}

func (b *serialBackend) ReadCounters(cells []CounterCell) error {
	b.busy++ // a data race if reads overlap
	defer func() { b.busy-- }()
	return nil
}

func ups2ents(t *testing.T, texts ...string) []*p4v1.Entity {
	t.Helper()
	var out []*p4v1.Entity
	for _, s := range texts {
		var e p4v1.Entity
		if err := prototext.Unmarshal([]byte(s), &e); err != nil {
			t.Fatal(err)
		}
		out = append(out, &e)
	}
	return out
}

// A restore keeps the entries whose Read form allows it as wire, as a
// Write would have (compact), and Reads see no difference.
func TestRestoreCompactsEntries(t *testing.T) {
	d := externDevice(t, NewNoneBackend(), p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT)
	mustWrite(t, d,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x01" } } action { action { action_id: 0x01000004 } } controller_metadata: 7 metadata: "m" } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000001 match { field_id: 1 exact { value: "\x02" } } action { action { action_id: 0x01000004 } } meter_config { cir: 1 cburst: 1 pir: 3 pburst: 3 } } }`,
	)
	r := restoreCopy(t, d)
	// The direct meter config lives in the entry (Direct), not in its
	// Read form, so both are kept as wire.
	for _, e := range r.st.tables[0x02000001].entries {
		if e.wire == nil || e.proto != nil {
			t.Errorf("entry %x: not kept as wire after the restore", e.Match[0].Value)
		}
	}
}

// restoreCopy restores a new Device from a snapshot of d's backend
// state, as a restarted daemon would, and checks it holds what d holds.
func restoreCopy(t *testing.T, d *Device) *Device {
	t.Helper()
	want := fuzzState(t, d)
	r := NewDevice(&snapBackend{snap: snapshotOf(t, d)})
	if ok, err := r.Restore(); !ok || err != nil {
		t.Fatalf("Restore: %v, %v", ok, err)
	}
	if got := fuzzState(t, r); got != want {
		t.Errorf("restored state differs:\n got %s\nwant %s", got, want)
	}
	return r
}
