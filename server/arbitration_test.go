package server

import (
	"context"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// P4Runtime §5: two and three controllers, failover, downgrade and the
// notifications each one gets.
func TestArbitrationTwoAndThreeControllers(t *testing.T) {
	e := newTestEnv(t)
	a := e.openStream(t)
	a.arbitrate("", eid(10))
	a.wantStatus(code.Code_OK, 10)

	// A lower id joins as backup; only it is told.
	b := e.openStream(t)
	b.arbitrate("", eid(5))
	b.wantStatus(code.Code_ALREADY_EXISTS, 10)
	a.quiet()

	// A higher id takes over: everybody hears it.
	c := e.openStream(t)
	c.arbitrate("", eid(20))
	a.wantStatus(code.Code_ALREADY_EXISTS, 20)
	b.wantStatus(code.Code_ALREADY_EXISTS, 20)
	c.wantStatus(code.Code_OK, 20)

	// The primary leaves: the others learn there is no primary, and the
	// highest id ever seen (20) stays the bar (§5.3, v1.1 semantics).
	c.cancel()
	a.wantStatus(code.Code_NOT_FOUND, 20)
	b.wantStatus(code.Code_NOT_FOUND, 20)

	// A backup re-sending a lower id stays backup.
	a.arbitrate("", eid(15))
	a.wantStatus(code.Code_NOT_FOUND, 20)
	// Only an id >= election_id_past becomes primary.
	b.arbitrate("", eid(20))
	a.wantStatus(code.Code_ALREADY_EXISTS, 20)
	b.wantStatus(code.Code_OK, 20)

	// The primary downgrades itself: everyone is told there is none.
	b.arbitrate("", eid(3))
	a.wantStatus(code.Code_NOT_FOUND, 20)
	b.wantStatus(code.Code_NOT_FOUND, 20)
}

func TestArbitrationPrimaryResendIsAnswered(t *testing.T) {
	// testvectors-runner re-sends its arbitration before every write and
	// waits for OK.
	e := newTestEnv(t)
	a := e.primary(t, 7)
	for range 3 {
		a.arbitrate("", eid(7))
		a.wantStatus(code.Code_OK, 7)
	}
}

func TestArbitrationErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *testEnv, t *testing.T)
		first    *p4v1.MasterArbitrationUpdate
		second   *p4v1.MasterArbitrationUpdate
		wantCode codes.Code
	}{
		{name: "unknown device", first: &p4v1.MasterArbitrationUpdate{DeviceId: 99, ElectionId: eid(1)}, wantCode: codes.NotFound},
		{name: "duplicate election id", setup: func(e *testEnv, t *testing.T) { e.primary(t, 4) },
			first: &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(4)}, wantCode: codes.InvalidArgument},
		{name: "bad role config", first: &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1),
			Role: &p4v1.Role{Name: "r", Config: mustAny(t, &p4v1.Uint128{Low: 1})}}, wantCode: codes.InvalidArgument},
		{name: "device change", first: &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1)},
			second: &p4v1.MasterArbitrationUpdate{DeviceId: 77, ElectionId: eid(1)}, wantCode: codes.FailedPrecondition},
		{name: "role change", first: &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1)},
			second: &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "other"}}, wantCode: codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, WithDeviceIDZero(false))
			if tc.setup != nil {
				tc.setup(e, t)
			}
			s := e.openStream(t)
			send := func(u *p4v1.MasterArbitrationUpdate) {
				if err := s.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: u}}); err != nil {
					t.Fatal(err)
				}
			}
			send(tc.first)
			if tc.second != nil {
				s.next()
				send(tc.second)
			}
			s.closedWith(tc.wantCode)
		})
	}
}

func TestArbitrationStreamLimit(t *testing.T) {
	e := newTestEnv(t, WithMaxControllers(2))
	e.primary(t, 2)
	b := e.openStream(t)
	b.arbitrate("", eid(1))
	b.next()
	c := e.openStream(t)
	c.arbitrate("", eid(3))
	c.closedWith(codes.ResourceExhausted)
}

func TestArbitrationUnsetAndZeroElectionID(t *testing.T) {
	// Unset is lower than any id and never primary; (0,0) is a real id
	// (§5.3 "Unset Election ID").
	e := newTestEnv(t, WithMissingElectionIDAsZero(false))
	u := e.openStream(t)
	u.arbitrate("", nil)
	u.wantStatus(code.Code_NOT_FOUND, 0)
	z := e.openStream(t)
	z.arbitrate("", &p4v1.Uint128{})
	u.wantStatus(code.Code_ALREADY_EXISTS, 0)
	a := z.next()
	if code.Code(a.GetStatus().GetCode()) != code.Code_OK || a.GetElectionId() == nil {
		t.Fatalf("(0,0) controller: %v, want OK with election id (0,0)", a)
	}
}

func TestArbitrationMissingElectionIDCompat(t *testing.T) {
	// PI-style: no election id while nobody is primary acts as (0,0), and
	// Writes without one are then accepted.
	e := newTestEnv(t, WithMissingElectionIDAsZero(true), WithDeviceIDZero(true))
	s := e.openStream(t)
	s.arbitrate("", nil)
	s.wantStatus(code.Code_OK, 0)
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: 0, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: e.info},
	})
	if err != nil {
		t.Fatalf("PTF-style SetForwardingPipelineConfig without election id (device 0): %v", err)
	}
}

func TestRoleIsolation(t *testing.T) {
	e := newTestEnv(t)
	def := e.primary(t, 1)
	r := e.openStream(t)
	cfg := &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{tableID(e, "ExactOne")}}
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "app", Config: mustAny(t, cfg)}}
	if err := r.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		t.Fatal(err)
	}
	// Same election id in another role is fine; the default role is not
	// disturbed.
	a := r.next()
	if code.Code(a.GetStatus().GetCode()) != code.Code_OK || a.GetRole().GetName() != "app" || a.GetRole().GetConfig() == nil {
		t.Fatalf("role app arbitration: %v", a)
	}
	def.quiet()
	e.setPipeline(t, 1)

	appWrite := func(table string) error {
		_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: "app", ElectionId: eid(1),
			Updates: []*p4v1.Update{insert(exactEntry(e, table, 0x0a000001, "actionA", 0xaa))}})
		return err
	}
	if err := appWrite("ExactOne"); err != nil {
		t.Fatalf("role app writing its table: %v", err)
	}
	errs := details(t, appWrite("ExactOneNonAligned"))
	if codes.Code(errs[0].GetCanonicalCode()) != codes.PermissionDenied {
		t.Errorf("role app writing another table: %v, want PERMISSION_DENIED", errs[0])
	}
	// Role app may not push pipelines (can_push_pipeline unset).
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: testDevice, Role: "app", ElectionId: eid(1), Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: e.info}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("role app pushing a pipeline: %v, want PERMISSION_DENIED", err)
	}
	// Writes naming an unknown role are NOT_FOUND.
	_, err = e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: "ghost", ElectionId: eid(1)})
	if status.Code(err) != codes.NotFound {
		t.Errorf("write for unknown role: %v, want NOT_FOUND", err)
	}
	// A Read with role app sees only its table.
	ents, _, err := e.readAll(t, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}})
	if err != nil || len(ents) != 1 {
		t.Fatalf("default-role read: %d entities, %v", len(ents), err)
	}
	rc, err := e.client.Read(context.Background(), &p4v1.ReadRequest{DeviceId: testDevice, Role: "app",
		Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tableID(e, "ExactOneNonAligned")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rc.Recv(); err == nil {
		t.Errorf("role app read another role's table: %v", r)
	}
}

func TestStaleAndBackupWritesRejected(t *testing.T) {
	e := newTestEnv(t)
	old := e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	n := e.openStream(t)
	n.arbitrate("", eid(2))
	old.wantStatus(code.Code_ALREADY_EXISTS, 2)
	n.wantStatus(code.Code_OK, 2)
	// The stale primary's Write and SetForwardingPipelineConfig are refused.
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); status.Code(err) != codes.PermissionDenied {
		t.Errorf("stale primary write: %v, want PERMISSION_DENIED", err)
	}
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: testDevice, ElectionId: eid(1), Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: e.info}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("stale primary set pipeline: %v, want PERMISSION_DENIED", err)
	}
	// A backup can still Read and Get the pipeline and Capabilities.
	if ents, _, err := e.readAll(t, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{}}}); err != nil || len(ents) != 1 {
		t.Errorf("backup read: %d entities, %v", len(ents), err)
	}
	if _, err := e.client.GetForwardingPipelineConfig(context.Background(), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: testDevice}); err != nil {
		t.Errorf("backup get pipeline: %v", err)
	}
	if r, err := e.client.Capabilities(context.Background(), &p4v1.CapabilitiesRequest{}); err != nil || r.GetP4RuntimeApiVersion() != "1.5.0" {
		t.Errorf("capabilities: %v %v", r, err)
	}
	// The new primary writes.
	if err := e.write(2, 0, insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); err != nil {
		t.Errorf("new primary write: %v", err)
	}
}

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
