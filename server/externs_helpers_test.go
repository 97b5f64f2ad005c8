package server

import (
	"fmt"
	"os"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/translator"
)

// externsP4Info is p4tcd's own P4Info with every extern kind.
const externsP4Info = "testdata/p4tcd-externs.p4info.txt"

func loadInfo(t testing.TB, path string) *p4configv1.P4Info {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// newExternEnv is a server on backend b (nil: none) with the externs
// pipeline committed and a primary with election id 1.
func newExternEnv(t testing.TB, b translator.Backend) *testEnv {
	t.Helper()
	if b == nil {
		b = translator.NewNoneBackend()
	}
	e := newTestEnvWith(t, b)
	e.info = loadInfo(t, externsP4Info)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	return e
}

// id finds a P4 object of the pipeline by alias.
func (e *testEnv) id(alias string) uint32 {
	i := e.info
	var pres []*p4configv1.Preamble
	for _, x := range i.GetTables() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetActions() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetActionProfiles() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetCounters() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetDirectCounters() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetMeters() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetDirectMeters() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetRegisters() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetValueSets() {
		pres = append(pres, x.GetPreamble())
	}
	for _, x := range i.GetDigests() {
		pres = append(pres, x.GetPreamble())
	}
	for _, p := range pres {
		if p.GetAlias() == alias || p.GetName() == alias {
			return p.GetId()
		}
	}
	panic("no P4 object " + alias)
}

// ent wraps an entity message.
func ent(m proto.Message) *p4v1.Entity {
	switch x := m.(type) {
	case *p4v1.TableEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: x}}
	case *p4v1.ActionProfileMember:
		return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: x}}
	case *p4v1.ActionProfileGroup:
		return &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: x}}
	case *p4v1.CounterEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: x}}
	case *p4v1.DirectCounterEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: x}}
	case *p4v1.MeterEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: x}}
	case *p4v1.DirectMeterEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_DirectMeterEntry{DirectMeterEntry: x}}
	case *p4v1.RegisterEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: x}}
	case *p4v1.MulticastGroupEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: x}}}}
	case *p4v1.CloneSessionEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: x}}}}
	case *p4v1.ValueSetEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: x}}
	case *p4v1.DigestEntry:
		return &p4v1.Entity{Entity: &p4v1.Entity_DigestEntry{DigestEntry: x}}
	}
	panic(fmt.Sprintf("ent: %T", m))
}

func ins(m proto.Message) *p4v1.Update { return &p4v1.Update{Type: p4v1.Update_INSERT, Entity: ent(m)} }
func mod(m proto.Message) *p4v1.Update { return &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: ent(m)} }
func rm(m proto.Message) *p4v1.Update  { return &p4v1.Update{Type: p4v1.Update_DELETE, Entity: ent(m)} }

// action is an action call by alias.
func (e *testEnv) action(name string, params ...[]byte) *p4v1.Action {
	a := &p4v1.Action{ActionId: e.id(name)}
	for i, p := range params {
		a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: p})
	}
	return a
}

func (e *testEnv) member(prof string, id uint32, a *p4v1.Action) *p4v1.ActionProfileMember {
	return &p4v1.ActionProfileMember{ActionProfileId: e.id(prof), MemberId: id, Action: a}
}

func (e *testEnv) group(prof string, id uint32, maxSize int32, ms ...*p4v1.ActionProfileGroup_Member) *p4v1.ActionProfileGroup {
	return &p4v1.ActionProfileGroup{ActionProfileId: e.id(prof), GroupId: id, MaxSize: maxSize, Members: ms}
}

func gm(id uint32, w int32) *p4v1.ActionProfileGroup_Member {
	return &p4v1.ActionProfileGroup_Member{MemberId: id, Weight: w}
}

func gmPort(id uint32, w int32, port []byte) *p4v1.ActionProfileGroup_Member {
	return &p4v1.ActionProfileGroup_Member{MemberId: id, Weight: w, WatchKind: &p4v1.ActionProfileGroup_Member_WatchPort{WatchPort: port}}
}

func gmWatch(id uint32, w, watch int32) *p4v1.ActionProfileGroup_Member {
	return &p4v1.ActionProfileGroup_Member{MemberId: id, Weight: w, WatchKind: &p4v1.ActionProfileGroup_Member_Watch{Watch: watch}}
}

// te is an entry of a one-field table.
func (e *testEnv) te(table string, key *p4v1.FieldMatch, a *p4v1.TableAction) *p4v1.TableEntry {
	t := &p4v1.TableEntry{TableId: e.id(table), Action: a}
	if key != nil {
		t.Match = []*p4v1.FieldMatch{key}
	}
	return t
}

func direct(a *p4v1.Action) *p4v1.TableAction {
	return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
}

func memberRef(id uint32) *p4v1.TableAction {
	return &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: id}}
}

func groupRef(id uint32) *p4v1.TableAction {
	return &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileGroupId{ActionProfileGroupId: id}}
}

func oneShot(acts ...*p4v1.ActionProfileAction) *p4v1.TableAction {
	return &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileActionSet{ActionProfileActionSet: &p4v1.ActionProfileActionSet{ActionProfileActions: acts}}}
}

func osa(a *p4v1.Action, w int32) *p4v1.ActionProfileAction {
	return &p4v1.ActionProfileAction{Action: a, Weight: w}
}

func ix(i int64) *p4v1.Index { return &p4v1.Index{Index: i} }

func cdata(bytes, pkts int64) *p4v1.CounterData {
	return &p4v1.CounterData{ByteCount: bytes, PacketCount: pkts}
}

func (e *testEnv) counter(name string, i *p4v1.Index, d *p4v1.CounterData) *p4v1.CounterEntry {
	return &p4v1.CounterEntry{CounterId: e.id(name), Index: i, Data: d}
}

func mcfg(cir, cburst, pir, pburst, eburst int64) *p4v1.MeterConfig {
	return &p4v1.MeterConfig{Cir: cir, Cburst: cburst, Pir: pir, Pburst: pburst, Eburst: eburst}
}

func (e *testEnv) meter(name string, i *p4v1.Index, c *p4v1.MeterConfig) *p4v1.MeterEntry {
	return &p4v1.MeterEntry{MeterId: e.id(name), Index: i, Config: c}
}

func (e *testEnv) reg(name string, i *p4v1.Index, d *p4v1.P4Data) *p4v1.RegisterEntry {
	return &p4v1.RegisterEntry{RegisterId: e.id(name), Index: i, Data: d}
}

func bitsData(b []byte) *p4v1.P4Data { return &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: b}} }
func boolData(v bool) *p4v1.P4Data   { return &p4v1.P4Data{Data: &p4v1.P4Data_Bool{Bool: v}} }

func mcast(id uint32, reps ...*p4v1.Replica) *p4v1.MulticastGroupEntry {
	return &p4v1.MulticastGroupEntry{MulticastGroupId: id, Replicas: reps}
}

func cloneS(id, cos uint32, plen int32, reps ...*p4v1.Replica) *p4v1.CloneSessionEntry {
	return &p4v1.CloneSessionEntry{SessionId: id, ClassOfService: cos, PacketLengthBytes: plen, Replicas: reps}
}

// repE is a replica in the deprecated egress_port form; repP in the port
// form.
func repE(port, inst uint32) *p4v1.Replica {
	return &p4v1.Replica{PortKind: &p4v1.Replica_EgressPort{EgressPort: port}, Instance: inst}
}

func repP(port []byte, inst uint32, backups ...*p4v1.BackupReplica) *p4v1.Replica {
	return &p4v1.Replica{PortKind: &p4v1.Replica_Port{Port: port}, Instance: inst, BackupReplicas: backups}
}

func backup(port []byte, inst uint32) *p4v1.BackupReplica {
	return &p4v1.BackupReplica{Port: port, Instance: inst}
}

func (e *testEnv) vset(name string, ms ...*p4v1.ValueSetMember) *p4v1.ValueSetEntry {
	return &p4v1.ValueSetEntry{ValueSetId: e.id(name), Members: ms}
}

func vsm(ms ...*p4v1.FieldMatch) *p4v1.ValueSetMember { return &p4v1.ValueSetMember{Match: ms} }

func (e *testEnv) digest(name string, c *p4v1.DigestEntry_Config) *p4v1.DigestEntry {
	return &p4v1.DigestEntry{DigestId: e.id(name), Config: c}
}

func dcfg(timeout int64, size int32, ack int64) *p4v1.DigestEntry_Config {
	return &p4v1.DigestEntry_Config{MaxTimeoutNs: timeout, MaxListSize: size, AckTimeoutNs: ack}
}

// allState reads every entity of every kind with wildcards and renders it
// sorted: a failed write must leave it unchanged.
func allState(t testing.TB, e *testEnv) string {
	t.Helper()
	ents, _, err := e.readAll(t,
		tableRead(&p4v1.TableEntry{CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}),
		tableRead(&p4v1.TableEntry{IsDefaultAction: true, CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}),
		ent(&p4v1.ActionProfileMember{}), ent(&p4v1.ActionProfileGroup{}),
		ent(&p4v1.CounterEntry{}), ent(&p4v1.DirectCounterEntry{}),
		ent(&p4v1.MeterEntry{}), ent(&p4v1.DirectMeterEntry{}),
		ent(&p4v1.RegisterEntry{}), ent(&p4v1.MulticastGroupEntry{}), ent(&p4v1.CloneSessionEntry{}),
		ent(&p4v1.ValueSetEntry{}), ent(&p4v1.DigestEntry{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	var ss []string
	for _, x := range ents {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(x)
		ss = append(ss, string(b))
	}
	sortStrings(ss)
	return fmt.Sprintf("%q", ss)
}
