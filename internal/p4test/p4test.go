// Package p4test builds P4Runtime pipeline configs and updates for tests of
// packages that must not handle protobuf types themselves (backends): they
// pass what this package returns to a translator.Device.
package p4test

import (
	"fmt"
	"os"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// Config is a ForwardingPipelineConfig.
type Config = *p4v1.ForwardingPipelineConfig

// Pipeline reads a P4Info text file and a P4TC introspection json and
// returns the ForwardingPipelineConfig a controller would push, with a
// p4tcd device config carrying tcObject.
func Pipeline(p4infoPath, introspectionPath string, tcObject []byte) (*p4v1.ForwardingPipelineConfig, error) {
	raw, err := os.ReadFile(p4infoPath)
	if err != nil {
		return nil, err
	}
	js, err := os.ReadFile(introspectionPath)
	if err != nil {
		return nil, err
	}
	fpc, err := PipelineText(raw, js, tcObject)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p4infoPath, err)
	}
	return fpc, nil
}

// PipelineText is Pipeline from the files' contents.
func PipelineText(p4info, js, tcObject []byte) (*p4v1.ForwardingPipelineConfig, error) {
	return DeviceText(p4info, js, Device{TCObject: tcObject})
}

// Device is what a p4tcd device config holds beyond the introspection.
type Device struct {
	TCObject, XDPObject []byte
	// Tables are the per-table settings, each a p4tcd.v1.TableConfig in
	// protobuf text format ("table_id: 1 placement: PLACEMENT_HW").
	Tables []string
}

// PipelineDevice is Pipeline with a whole device config.
func PipelineDevice(p4infoPath, introspectionPath string, d Device) (*p4v1.ForwardingPipelineConfig, error) {
	raw, err := os.ReadFile(p4infoPath)
	if err != nil {
		return nil, err
	}
	js, err := os.ReadFile(introspectionPath)
	if err != nil {
		return nil, err
	}
	return DeviceText(raw, js, d)
}

// DeviceText is PipelineDevice from the files' contents.
func DeviceText(p4info, js []byte, d Device) (*p4v1.ForwardingPipelineConfig, error) {
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(p4info, &info); err != nil {
		return nil, fmt.Errorf("p4info: %w", err)
	}
	in, err := translator.ParseIntrospection(js)
	if err != nil {
		return nil, err
	}
	dc := &p4tcdv1.DeviceConfig{
		Format: translator.DeviceConfigFormat, PipelineName: in.PipelineName,
		IntrospectionJson: js, TcObject: d.TCObject, XdpObject: d.XDPObject,
	}
	for i, t := range d.Tables {
		var tc p4tcdv1.TableConfig
		if err := prototext.Unmarshal([]byte(t), &tc); err != nil {
			return nil, fmt.Errorf("table config %d: %w", i, err)
		}
		dc.Tables = append(dc.Tables, &tc)
	}
	b, err := proto.Marshal(dc)
	if err != nil {
		return nil, err
	}
	return &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: b}, nil
}

// CompileText is PipelineText followed by translator.CompileConfig.
func CompileText(p4info, js, tcObject []byte) (*translator.Config, error) {
	fpc, err := PipelineText(p4info, js, tcObject)
	if err != nil {
		return nil, err
	}
	return translator.CompileConfig(fpc)
}

// Compile is Pipeline followed by translator.CompileConfig.
func Compile(p4infoPath, introspectionPath string, tcObject []byte) (*translator.Config, error) {
	fpc, err := Pipeline(p4infoPath, introspectionPath, tcObject)
	if err != nil {
		return nil, err
	}
	return translator.CompileConfig(fpc)
}

// Commit is the SetForwardingPipelineConfig action VERIFY_AND_COMMIT.
const Commit = p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT

// Verify is the SetForwardingPipelineConfig action VERIFY.
const Verify = p4v1.SetForwardingPipelineConfigRequest_VERIFY

// Reconcile is the SetForwardingPipelineConfig action RECONCILE_AND_COMMIT.
const Reconcile = p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT

// Atomicity is a Write request's atomicity.
type Atomicity = p4v1.WriteRequest_Atomicity

// ContinueOnError is the Write atomicity CONTINUE_ON_ERROR.
const ContinueOnError = p4v1.WriteRequest_CONTINUE_ON_ERROR

// RollbackOnError is the Write atomicity ROLLBACK_ON_ERROR.
const RollbackOnError = p4v1.WriteRequest_ROLLBACK_ON_ERROR

// Match is one field match of an entry.
type Match = *p4v1.FieldMatch

// Exact matches field id exactly.
func Exact(id uint32, v []byte) Match {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}
}

// LPM matches a prefix.
func LPM(id uint32, v []byte, plen int32) Match {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v, PrefixLen: plen}}}
}

// Ternary matches value under mask.
func Ternary(id uint32, v, mask []byte) Match {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v, Mask: mask}}}
}

// Range matches [lo, hi].
func Range(id uint32, lo, hi []byte) Match {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: lo, High: hi}}}
}

// Optional matches a value exactly.
func Optional(id uint32, v []byte) Match {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: v}}}
}

// Entry describes a table entry.
type Entry struct {
	Table    uint32
	Priority int32
	Match    []Match
	Action   uint32
	Params   [][]byte
	// Metadata and ControllerMetadata are opaque to the datapath.
	Metadata           []byte
	ControllerMetadata uint64
	// Default makes it the table's default entry.
	Default bool
	// Member or Group is the action of an entry of an indirect table
	// (Action unset); OneShot its one-shot action set.
	Member, Group uint32
	OneShot       []SetAction
	// Counter sets the entry's direct counter (counter_data); Meter its
	// direct meter (meter_config).
	Counter *CounterData
	Meter   *MeterConfig
}

func (e *Entry) proto() *p4v1.TableEntry {
	te := &p4v1.TableEntry{
		TableId: e.Table, Priority: e.Priority, Match: e.Match, IsDefaultAction: e.Default,
		Metadata: e.Metadata, ControllerMetadata: e.ControllerMetadata,
	}
	if e.Action != 0 {
		a := &p4v1.Action{ActionId: e.Action}
		for i, v := range e.Params {
			a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: v})
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
	}
	switch {
	case e.Member != 0:
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: e.Member}}
	case e.Group != 0:
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileGroupId{ActionProfileGroupId: e.Group}}
	case len(e.OneShot) > 0:
		set := &p4v1.ActionProfileActionSet{}
		for _, a := range e.OneShot {
			pa := &p4v1.ActionProfileAction{Action: action(a.Action, a.Params), Weight: a.Weight}
			if a.Watch != 0 {
				pa.WatchKind = &p4v1.ActionProfileAction_WatchPort{WatchPort: portBytes(a.Watch)}
			}
			set.ActionProfileActions = append(set.ActionProfileActions, pa)
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileActionSet{ActionProfileActionSet: set}}
	}
	if e.Counter != nil {
		te.CounterData = &p4v1.CounterData{PacketCount: e.Counter.Packets, ByteCount: e.Counter.Bytes}
	}
	if e.Meter != nil {
		te.MeterConfig = e.Meter.proto()
	}
	return te
}

// Update is one update of a Write.
type Update = *p4v1.Update

func update(t p4v1.Update_Type, e Entry) Update {
	return &p4v1.Update{Type: t, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: e.proto()}}}
}

// Insert inserts e.
func Insert(e Entry) Update { return update(p4v1.Update_INSERT, e) }

// Modify modifies e (a default entry too).
func Modify(e Entry) Update { return update(p4v1.Update_MODIFY, e) }

// Delete deletes e.
func Delete(e Entry) Update { return update(p4v1.Update_DELETE, e) }

// AsDeletes turns updates into deletes of the same entries.
func AsDeletes(us []Update) []Update {
	out := make([]Update, len(us))
	for i, u := range us {
		out[i] = &p4v1.Update{Type: p4v1.Update_DELETE, Entity: u.GetEntity()}
	}
	return out
}

// Write applies updates with CONTINUE_ON_ERROR and returns the first
// error, naming the update.
func Write(d *translator.Device, us ...Update) error {
	return WriteAs(d, nil, us...)
}

// WriteAs is Write by a role's scope (nil: the default role).
func WriteAs(d *translator.Device, sc *translator.Scope, us ...Update) error {
	errs, err := d.Write(us, ContinueOnError, sc)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil {
			return fmt.Errorf("update %d: %w", i, e)
		}
	}
	return nil
}

// ReadTable returns the entries of one table (not its default), with
// time_since_last_hit when sinceHit is set.
func ReadTable(d *translator.Device, tableID uint32, sinceHit bool) ([]ReadEntry, error) {
	req := &p4v1.TableEntry{TableId: tableID}
	if sinceHit {
		req.TimeSinceLastHit = &p4v1.TableEntry_IdleTimeout{}
	}
	var out []ReadEntry
	_, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: req}}}, nil, func(e *p4v1.Entity) error {
		te := e.GetTableEntry()
		re := ReadEntry{Metadata: te.GetMetadata(), IdleTimeoutNs: te.GetIdleTimeoutNs(), SinceLastHitNs: te.GetTimeSinceLastHit().GetElapsedNs()}
		for _, m := range te.GetMatch() {
			re.Match = append(re.Match, m.GetExact().GetValue())
		}
		if a := te.GetAction().GetAction(); a != nil {
			re.Action = a.GetActionId()
			for _, p := range a.GetParams() {
				re.Params = append(re.Params, p.GetValue())
			}
		}
		out = append(out, re)
		return nil
	})
	return out, err
}

// ReadEntry is an entry a Read returned, in plain values: the exact
// match values in field order, the action and its parameters.
type ReadEntry struct {
	Match          [][]byte
	Action         uint32
	Params         [][]byte
	Metadata       []byte
	IdleTimeoutNs  int64
	SinceLastHitNs int64
}

// ReadAll returns every table entry of the device, defaults included, in
// protobuf text form, for comparing states.
func ReadAll(d *translator.Device) ([]string, error) {
	var out []string
	_, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}}, nil, func(e *p4v1.Entity) error {
		out = append(out, prototext.MarshalOptions{}.Format(e))
		return nil
	})
	if err != nil {
		return nil, err
	}
	def := &p4v1.TableEntry{IsDefaultAction: true}
	for _, t := range d.Config().TableOrder {
		def.TableId = t.ID
		if _, err := d.Read([]*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: def}}}, nil, func(e *p4v1.Entity) error {
			out = append(out, prototext.MarshalOptions{}.Format(e))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
