package p4test

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/p4tcd/p4tcd/translator"
)

// CounterData is a counter cell's value.
type CounterData struct{ Packets, Bytes int64 }

// MeterConfig is a meter config (rates per second, bursts in the meter's
// unit).
type MeterConfig struct{ CIR, CBurst, PIR, PBurst, EBurst int64 }

func (m *MeterConfig) proto() *p4v1.MeterConfig {
	if m == nil {
		return nil
	}
	return &p4v1.MeterConfig{Cir: m.CIR, Cburst: m.CBurst, Pir: m.PIR, Pburst: m.PBurst, Eburst: m.EBurst}
}

func entity(t p4v1.Update_Type, e *p4v1.Entity) Update { return &p4v1.Update{Type: t, Entity: e} }

// Op is an update type for the extern helpers.
type Op = p4v1.Update_Type

// Update types.
const (
	OpInsert = p4v1.Update_INSERT
	OpModify = p4v1.Update_MODIFY
	OpDelete = p4v1.Update_DELETE
)

func action(id uint32, params [][]byte) *p4v1.Action {
	a := &p4v1.Action{ActionId: id}
	for i, v := range params {
		a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: v})
	}
	return a
}

// Member writes an action profile member.
func Member(op Op, profile, id, act uint32, params ...[]byte) Update {
	return entity(op, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{
		ActionProfileId: profile, MemberId: id, Action: action(act, params)}}})
}

// SetAction is an action of a one-shot action set.
type SetAction struct {
	Action uint32
	Params [][]byte
	Weight int32
	Watch  uint32
}

// GroupMember is a member of a group: weight and watch port (0: none).
type GroupMember struct {
	ID, Watch uint32
	Weight    int32
}

// Group writes an action selector group.
func Group(op Op, profile, id uint32, members ...GroupMember) Update {
	g := &p4v1.ActionProfileGroup{ActionProfileId: profile, GroupId: id}
	for _, m := range members {
		gm := &p4v1.ActionProfileGroup_Member{MemberId: m.ID, Weight: m.Weight}
		if m.Watch != 0 {
			gm.WatchKind = &p4v1.ActionProfileGroup_Member_WatchPort{WatchPort: portBytes(m.Watch)}
		}
		g.Members = append(g.Members, gm)
	}
	return entity(op, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g}})
}

func portBytes(p uint32) []byte {
	b := []byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)}
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func index(i int64) *p4v1.Index {
	if i < 0 {
		return nil
	}
	return &p4v1.Index{Index: i}
}

// Counter writes cell index (-1: every cell) of an indexed counter.
func Counter(id uint32, idx int64, d CounterData) Update {
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
		CounterId: id, Index: index(idx), Data: &p4v1.CounterData{PacketCount: d.Packets, ByteCount: d.Bytes}}}})
}

// DirectCounter writes the direct counter of the entry e names.
func DirectCounter(e Entry, d CounterData) Update {
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{
		TableEntry: e.key(), Data: &p4v1.CounterData{PacketCount: d.Packets, ByteCount: d.Bytes}}}})
}

// Meter configures cell index (-1: every cell) of an indexed meter; nil
// resets it.
func Meter(id uint32, idx int64, c *MeterConfig) Update {
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{
		MeterId: id, Index: index(idx), Config: c.proto()}}})
}

// DirectMeter configures the direct meter of the entry e names.
func DirectMeter(e Entry, c *MeterConfig) Update {
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_DirectMeterEntry{DirectMeterEntry: &p4v1.DirectMeterEntry{
		TableEntry: e.key(), Config: c.proto()}}})
}

func (e *Entry) key() *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: e.Table, Match: e.Match, Priority: e.Priority, IsDefaultAction: e.Default}
}

// Register writes cell index (-1: every cell) of a register.
func Register(id uint32, idx int64, v []byte) Update {
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: &p4v1.RegisterEntry{
		RegisterId: id, Index: index(idx), Data: &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: v}}}}})
}

// Replica is a PRE replica: port and instance.
type Replica struct{ Port, Instance uint32 }

func replicas(rs []Replica) []*p4v1.Replica {
	var out []*p4v1.Replica
	for _, r := range rs {
		out = append(out, &p4v1.Replica{Instance: r.Instance, PortKind: &p4v1.Replica_Port{Port: portBytes(r.Port)}})
	}
	return out
}

// Multicast writes a multicast group.
func Multicast(op Op, id uint32, rs ...Replica) Update {
	return entity(op, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
		Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: &p4v1.MulticastGroupEntry{
			MulticastGroupId: id, Replicas: replicas(rs)}}}}})
}

// Clone writes a clone session.
func Clone(op Op, id, cos uint32, rs ...Replica) Update {
	return entity(op, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
		Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{
			SessionId: id, ClassOfService: cos, Replicas: replicas(rs)}}}}})
}

// ValueSet replaces the members of a value set: each member an exact
// match of the set's one field (id 1).
func ValueSet(id uint32, members ...[]byte) Update {
	ve := &p4v1.ValueSetEntry{ValueSetId: id}
	for _, m := range members {
		ve.Members = append(ve.Members, &p4v1.ValueSetMember{Match: []*p4v1.FieldMatch{Exact(1, m)}})
	}
	return entity(OpModify, &p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: ve}})
}

func read(d *translator.Device, e *p4v1.Entity, each func(*p4v1.Entity)) error {
	errs, err := d.Read([]*p4v1.Entity{e}, nil, func(x *p4v1.Entity) error { each(x); return nil })
	if err != nil {
		return err
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// ReadCounter reads cells of an indexed counter (idx -1: every cell), by
// index.
func ReadCounter(d *translator.Device, id uint32, idx int64) (map[int64]CounterData, error) {
	out := map[int64]CounterData{}
	err := read(d, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: id, Index: index(idx)}}},
		func(x *p4v1.Entity) {
			c := x.GetCounterEntry()
			out[c.GetIndex().GetIndex()] = CounterData{Packets: c.GetData().GetPacketCount(), Bytes: c.GetData().GetByteCount()}
		})
	return out, err
}

// ReadDirectCounter reads the direct counter of the entry e names.
func ReadDirectCounter(d *translator.Device, e Entry) (CounterData, error) {
	var out CounterData
	err := read(d, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{TableEntry: e.key()}}},
		func(x *p4v1.Entity) {
			c := x.GetDirectCounterEntry().GetData()
			out = CounterData{Packets: c.GetPacketCount(), Bytes: c.GetByteCount()}
		})
	return out, err
}

// ReadTableCounters reads a table's entries with their direct counters
// (counter_data), as ONOS polls them: by the first match value.
func ReadTableCounters(d *translator.Device, table uint32) (map[string]CounterData, error) {
	out := map[string]CounterData{}
	err := read(d, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: table, CounterData: &p4v1.CounterData{}}}},
		func(x *p4v1.Entity) {
			te := x.GetTableEntry()
			var k string
			if len(te.GetMatch()) > 0 {
				m := te.GetMatch()[0]
				k = string(m.GetExact().GetValue()) + string(m.GetLpm().GetValue()) + string(m.GetTernary().GetValue())
			}
			out[k] = CounterData{Packets: te.GetCounterData().GetPacketCount(), Bytes: te.GetCounterData().GetByteCount()}
		})
	return out, err
}

// ReadRegister reads cells of a register (idx -1: every cell), by index.
func ReadRegister(d *translator.Device, id uint32, idx int64) (map[int64][]byte, error) {
	out := map[int64][]byte{}
	err := read(d, &p4v1.Entity{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: &p4v1.RegisterEntry{RegisterId: id, Index: index(idx)}}},
		func(x *p4v1.Entity) {
			r := x.GetRegisterEntry()
			out[r.GetIndex().GetIndex()] = r.GetData().GetBitstring()
		})
	return out, err
}

// ReadMeter reads a meter cell's config (nil: the default).
func ReadMeter(d *translator.Device, id uint32, idx int64) (*MeterConfig, error) {
	var out *MeterConfig
	err := read(d, &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{MeterId: id, Index: index(idx)}}},
		func(x *p4v1.Entity) {
			if c := x.GetMeterEntry().GetConfig(); c != nil {
				out = &MeterConfig{CIR: c.GetCir(), CBurst: c.GetCburst(), PIR: c.GetPir(), PBurst: c.GetPburst(), EBurst: c.GetEburst()}
			}
		})
	return out, err
}

// ReadEntities reads every entity of a kind and returns them in text
// form: "members", "groups", "multicast", "clones", "value_sets",
// "meters" (for comparing states).
func ReadEntities(d *translator.Device, kind string) ([]string, error) {
	var e *p4v1.Entity
	switch kind {
	case "members":
		e = &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{}}}
	case "groups":
		e = &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: &p4v1.ActionProfileGroup{}}}
	case "multicast":
		e = &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: &p4v1.MulticastGroupEntry{}}}}}
	case "clones":
		e = &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{}}}}}
	case "value_sets":
		e = &p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: &p4v1.ValueSetEntry{}}}
	case "meters":
		e = &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{}}}
	}
	var out []string
	err := read(d, e, func(x *p4v1.Entity) { out = append(out, prototext.Format(x)) })
	return out, err
}
