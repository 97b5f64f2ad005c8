package translator_test

import (
	"errors"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// kindsP4Info has an exact table with idle timeouts (ct) and an LPM table
// (routes).
const kindsP4Info = `
tables {
  preamble { id: 1 name: "c.ct" }
  match_fields { id: 1 name: "k" bitwidth: 16 match_type: EXACT }
  action_refs { id: 10 }
  size: 8
  idle_timeout_behavior: NOTIFY_CONTROL
}
tables {
  preamble { id: 2 name: "c.routes" }
  match_fields { id: 1 name: "dst" bitwidth: 32 match_type: LPM }
  action_refs { id: 10 }
  size: 8
}
actions { preamble { id: 10 name: "c.fwd" } params { id: 1 name: "port" bitwidth: 8 } }
`

// kindsBackend records ops and plays a datapath that created entries in
// table 1 and tracks hits.
type kindsBackend struct {
	ops     []translator.Op
	created map[uint16]translator.DatapathEntry
	lastHit map[uint16]time.Duration // by key
}

func (*kindsBackend) Verify(*translator.Config) error                         { return nil }
func (*kindsBackend) Commit(*translator.Config) error                         { return nil }
func (*kindsBackend) Reconcile(*translator.Config, []*translator.Entry) error { return nil }
func (*kindsBackend) Close() error                                            { return nil }
func (b *kindsBackend) Apply(ops []translator.Op) (int, error) {
	b.ops = append(b.ops, ops...)
	for _, op := range ops {
		if op.Kind == translator.OpDelete && op.Entry.Origin == translator.OriginDatapath {
			delete(b.created, keyOf(op.Entry.Match))
		}
	}
	return len(ops), nil
}

func keyOf(m []translator.FieldMatch) uint16 {
	v := m[0].Value
	k := uint16(v[len(v)-1])
	if len(v) > 1 {
		k |= uint16(v[len(v)-2]) << 8
	}
	return k
}

func (b *kindsBackend) DatapathEntries(tableID uint32) ([]translator.DatapathEntry, error) {
	var out []translator.DatapathEntry
	for _, de := range b.created {
		if de.TableID == tableID {
			out = append(out, de)
		}
	}
	return out, nil
}

func (b *kindsBackend) LookupDatapathEntry(tableID uint32, m []translator.FieldMatch) (*translator.DatapathEntry, error) {
	de, ok := b.created[keyOf(m)]
	if !ok || de.TableID != tableID {
		return nil, nil
	}
	return &de, nil
}

func (b *kindsBackend) SinceLastHit(e *translator.Entry) (time.Duration, bool) {
	d, ok := b.lastHit[keyOf(e.Match)]
	return d, ok
}

func (b *kindsBackend) create(k uint16, port byte) {
	b.created[k] = translator.DatapathEntry{
		SavedEntry: translator.SavedEntry{
			TableID: 1, Origin: translator.OriginDatapath, ActionID: 10, Params: [][]byte{{port}},
			Match:         []translator.FieldMatch{{Value: []byte{byte(k >> 8), byte(k)}, Set: true}},
			IdleTimeoutNs: int64(2 * time.Second),
		},
		SinceLastHit: 3 * time.Millisecond,
	}
}

func newKinds(t *testing.T, tables ...*p4tcdv1.TableConfig) (*translator.Device, *kindsBackend) {
	t.Helper()
	var info p4configv1.P4Info
	if err := prototext.Unmarshal([]byte(kindsP4Info), &info); err != nil {
		t.Fatal(err)
	}
	dc, err := proto.Marshal(&p4tcdv1.DeviceConfig{Format: translator.DeviceConfigFormat, PipelineName: "kinds", Tables: tables})
	if err != nil {
		t.Fatal(err)
	}
	b := &kindsBackend{created: map[uint16]translator.DatapathEntry{}, lastHit: map[uint16]time.Duration{}}
	d := translator.NewDevice(b)
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		&p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc}); err != nil {
		t.Fatal(err)
	}
	return d, b
}

func ctEntry(k uint16, port byte) *p4v1.TableEntry {
	return &p4v1.TableEntry{
		TableId: 1,
		Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{
			Exact: &p4v1.FieldMatch_Exact{Value: []byte{byte(k >> 8), byte(k)}}}}},
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{
			ActionId: 10, Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{port}}}}}},
	}
}

func routeEntry(dst byte) *p4v1.TableEntry {
	return &p4v1.TableEntry{
		TableId: 2,
		Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{
			Lpm: &p4v1.FieldMatch_LPM{Value: []byte{10, dst, 0, 0}, PrefixLen: 16}}}},
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{
			ActionId: 10, Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{1}}}}}},
	}
}

func write(d *translator.Device, sc *translator.Scope, typ p4v1.Update_Type, tes ...*p4v1.TableEntry) []error {
	us := make([]*p4v1.Update, len(tes))
	for i, te := range tes {
		us[i] = &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	}
	errs, err := d.Write(us, p4v1.WriteRequest_CONTINUE_ON_ERROR, sc)
	if err != nil {
		return []error{err}
	}
	return errs
}

func read(t *testing.T, d *translator.Device, req *p4v1.TableEntry) []*p4v1.TableEntry {
	t.Helper()
	var out []*p4v1.TableEntry
	errs, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: req}}}, nil, func(e *p4v1.Entity) error {
		out = append(out, e.GetTableEntry())
		return nil
	})
	if err != nil || errs != nil {
		t.Fatalf("read: %v %v", err, errs)
	}
	return out
}

// Placement: the table's from the device config, overridden by the
// writer's role; MODIFY keeps where the entry lives; Saved carries it.
func TestPlacement(t *testing.T) {
	d, b := newKinds(t, &p4tcdv1.TableConfig{TableId: 2, Placement: p4tcdv1.Placement_PLACEMENT_SW})
	hw := translator.PlaceHW
	if errs := write(d, nil, p4v1.Update_INSERT, routeEntry(1), ctEntry(1, 1)); errs != nil {
		t.Fatal(errs)
	}
	if errs := write(d, &translator.Scope{Role: "r", Placement: &hw}, p4v1.Update_INSERT, routeEntry(2)); errs != nil {
		t.Fatal(errs)
	}
	if errs := write(d, nil, p4v1.Update_MODIFY, routeEntry(2)); errs != nil {
		t.Fatal(errs)
	}
	if errs := write(d, nil, p4v1.Update_DELETE, routeEntry(2)); errs != nil {
		t.Fatal(errs)
	}
	want := []translator.Placement{translator.PlaceSW, translator.PlaceBoth, translator.PlaceHW, translator.PlaceHW, translator.PlaceHW}
	if len(b.ops) != len(want) {
		t.Fatalf("%d ops, want %d", len(b.ops), len(want))
	}
	for i, op := range b.ops {
		if op.Entry.Placement != want[i] {
			t.Errorf("op %d (%v): placement %v, want %v", i, op.Kind, op.Entry.Placement, want[i])
		}
		if se := op.Entry.Saved(); se.Placement != want[i] {
			t.Errorf("op %d: saved placement %v", i, se.Placement)
		}
	}
	// Reads return every entry whatever its placement.
	if got := read(t, d, &p4v1.TableEntry{}); len(got) != 2 {
		t.Errorf("wildcard read: %d entries, want 2", len(got))
	}
}

// Datapath-created entries: listed by Reads with the marker metadata and
// their time since last hit, deletable, not modifiable; the marker cannot
// be written.
func TestDatapathCreatedEntries(t *testing.T) {
	d, b := newKinds(t, &p4tcdv1.TableConfig{TableId: 1, DatapathPoolSize: 4, TimerProfilesMs: []uint32{2000}})
	if errs := write(d, nil, p4v1.Update_INSERT, ctEntry(1, 1)); errs != nil {
		t.Fatal(errs)
	}
	b.create(7, 2)
	b.create(8, 2)
	got := read(t, d, &p4v1.TableEntry{TableId: 1, TimeSinceLastHit: &p4v1.TableEntry_IdleTimeout{}})
	if len(got) != 3 {
		t.Fatalf("read %d entries, want 3 (1 controller, 2 datapath)", len(got))
	}
	n := 0
	for _, te := range got {
		if string(te.GetMetadata()) != translator.DatapathMetadata {
			continue
		}
		n++
		if te.GetIdleTimeoutNs() != int64(2*time.Second) || te.GetTimeSinceLastHit().GetElapsedNs() != int64(3*time.Millisecond) {
			t.Errorf("datapath entry: idle_timeout_ns %d, time_since_last_hit %v", te.GetIdleTimeoutNs(), te.GetTimeSinceLastHit())
		}
	}
	if n != 2 {
		t.Errorf("%d entries carry the datapath marker, want 2", n)
	}
	// Filter on the marker; read one by key.
	if got := read(t, d, &p4v1.TableEntry{TableId: 1, Metadata: []byte(translator.DatapathMetadata)}); len(got) != 2 {
		t.Errorf("marker filter: %d entries", len(got))
	}
	k := ctEntry(7, 0)
	k.Action = nil
	if got := read(t, d, k); len(got) != 1 || got[0].GetAction().GetAction().GetParams()[0].GetValue()[0] != 2 {
		t.Errorf("read by key: %v", got)
	}

	if errs := write(d, nil, p4v1.Update_MODIFY, ctEntry(7, 1)); !errors.Is(errs[0], translator.ErrUnsupported) {
		t.Errorf("MODIFY of a datapath entry: %v", errs)
	}
	if errs := write(d, nil, p4v1.Update_INSERT, &p4v1.TableEntry{TableId: 1, Match: ctEntry(9, 0).Match,
		Action: ctEntry(9, 0).Action, Metadata: []byte(translator.DatapathMetadata)}); !errors.Is(errs[0], translator.ErrInvalid) {
		t.Errorf("INSERT with the marker: %v", errs)
	}
	b.ops = nil
	if errs := write(d, nil, p4v1.Update_DELETE, ctEntry(7, 0)); errs != nil {
		t.Fatalf("DELETE of a datapath entry: %v", errs)
	}
	if len(b.ops) != 1 || b.ops[0].Entry.Origin != translator.OriginDatapath {
		t.Fatalf("ops %+v", b.ops)
	}
	if got := read(t, d, &p4v1.TableEntry{TableId: 1}); len(got) != 2 {
		t.Errorf("after DELETE: %d entries, want 2", len(got))
	}
	if errs := write(d, nil, p4v1.Update_DELETE, ctEntry(7, 0)); !errors.Is(errs[0], translator.ErrNotFound) {
		t.Errorf("second DELETE: %v", errs)
	}
}

// time_since_last_hit comes from the backend that tracks hits.
func TestTimeSinceLastHitFromBackend(t *testing.T) {
	d, b := newKinds(t)
	te := ctEntry(1, 1)
	te.IdleTimeoutNs = int64(time.Second)
	if errs := write(d, nil, p4v1.Update_INSERT, te); errs != nil {
		t.Fatal(errs)
	}
	b.lastHit[1] = 42 * time.Millisecond
	got := read(t, d, &p4v1.TableEntry{TableId: 1, TimeSinceLastHit: &p4v1.TableEntry_IdleTimeout{}})
	if len(got) != 1 || got[0].GetTimeSinceLastHit().GetElapsedNs() != int64(42*time.Millisecond) {
		t.Fatalf("time_since_last_hit: %v", got)
	}
}
