package server

import (
	"context"
	"slices"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// arbitrateRole sends a MasterArbitrationUpdate for role with a role config
// (nil: none).
func (s *stream) arbitrateRole(role string, low uint64, rc *p4tcdv1.RoleConfig) {
	s.t.Helper()
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(low), Role: &p4v1.Role{Name: role}}
	if rc != nil {
		upd.Role.Config = mustAny(s.t, rc)
	}
	if err := s.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		s.t.Fatal(err)
	}
}

// rolePrimary opens a stream and makes it the primary of role with config rc.
func (e *testEnv) rolePrimary(t testing.TB, role string, low uint64, rc *p4tcdv1.RoleConfig) *stream {
	t.Helper()
	s := e.openStream(t)
	s.arbitrateRole(role, low, rc)
	s.wantStatus(code.Code_OK, low)
	return s
}

// Stratum's P4RoleConfig rules, checked on every arbitration update: an id
// one role holds exclusively is nobody else's, the default role has no
// config, a PacketIn filter needs PacketIns, a metadata id and a value.
func TestRoleConfigArbitration(t *testing.T) {
	const t1, t2, t3 = 0x02000101, 0x02000102, 0x02000103
	excl := func(ids ...uint32) *p4tcdv1.RoleConfig { return &p4tcdv1.RoleConfig{ExclusiveP4Ids: ids} }
	shared := func(ids ...uint32) *p4tcdv1.RoleConfig { return &p4tcdv1.RoleConfig{SharedP4Ids: ids} }
	filter := func(recv bool, id uint32, v []byte) *p4tcdv1.RoleConfig {
		return &p4tcdv1.RoleConfig{ReceivesPacketIns: recv, PacketInFilter: &p4tcdv1.RoleConfig_PacketFilter{MetadataId: id, Value: v}}
	}
	tests := []struct {
		name string
		// setup makes primaries of other roles.
		setup    func(e *testEnv, t *testing.T)
		role     string
		config   *p4tcdv1.RoleConfig
		wantCode codes.Code
	}{
		{name: "disjoint exclusive ids", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, excl(t1)) },
			role: "b", config: excl(t2), wantCode: codes.OK},
		{name: "exclusive id of another role", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, excl(t1, t2)) },
			role: "b", config: excl(t3, t2), wantCode: codes.InvalidArgument},
		{name: "exclusive claim of a shared id", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, shared(t1)) },
			role: "b", config: excl(t1), wantCode: codes.InvalidArgument},
		{name: "shared claim of an exclusive id", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, excl(t1)) },
			role: "b", config: shared(t1), wantCode: codes.InvalidArgument},
		{name: "shared by two roles", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, shared(t1)) },
			role: "b", config: shared(t1), wantCode: codes.OK},
		{name: "same role takes over with the same ids", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, excl(t1)) },
			role: "a", config: excl(t1), wantCode: codes.OK},
		{name: "the claim outlives its controller", setup: func(e *testEnv, t *testing.T) {
			s := e.rolePrimary(t, "a", 1, excl(t1))
			s.cancel()
			<-s.done
		}, role: "b", config: excl(t1), wantCode: codes.InvalidArgument},
		{name: "released by the role's next primary", setup: func(e *testEnv, t *testing.T) {
			e.rolePrimary(t, "a", 1, excl(t1))
			e.rolePrimary(t, "a", 2, excl(t2))
		}, role: "b", config: excl(t1), wantCode: codes.OK},
		{name: "role without config beside exclusive ids", setup: func(e *testEnv, t *testing.T) { e.rolePrimary(t, "a", 1, excl(t1)) },
			role: "b", wantCode: codes.OK},
		{name: "default role with a config", role: "", config: excl(t1), wantCode: codes.InvalidArgument},
		{name: "filter without packet-ins", role: "r", config: filter(false, 1, []byte{1}), wantCode: codes.InvalidArgument},
		{name: "filter without metadata id", role: "r", config: filter(true, 0, []byte{1}), wantCode: codes.InvalidArgument},
		{name: "filter with empty value", role: "r", config: filter(true, 1, nil), wantCode: codes.InvalidArgument},
		{name: "filter", role: "r", config: filter(true, 1, []byte{0, 0, 7}), wantCode: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tc.setup != nil {
				tc.setup(e, t)
			}
			s := e.openStream(t)
			s.arbitrateRole(tc.role, 10, tc.config)
			if tc.wantCode != codes.OK {
				s.closedWith(tc.wantCode)
				return
			}
			s.wantStatus(code.Code_OK, 10)
		})
	}
}

// A backup's role config is checked too, although only a primary's takes
// effect.
func TestRoleConfigBackupConflict(t *testing.T) {
	e := newTestEnv(t)
	e.rolePrimary(t, "a", 1, &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{7}})
	e.rolePrimary(t, "b", 5, &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{8}})
	s := e.openStream(t)
	s.arbitrateRole("b", 1, &p4tcdv1.RoleConfig{SharedP4Ids: []uint32{7}})
	s.closedWith(codes.InvalidArgument)
}

// Shared ids are writable by each role that lists them, exclusive ids only
// by their role, and a config that lists nothing allows nothing.
func TestRoleSharedAndExclusiveWrites(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	e.setPipeline(t, 1)
	shared, ta, tb := tableID(e, "ExactOne"), tableID(e, "IdleTimeoutTable"), tableID(e, "ExactOneNonAligned")
	e.rolePrimary(t, "a", 1, &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{ta}, SharedP4Ids: []uint32{shared}})
	e.rolePrimary(t, "b", 1, &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{tb}, SharedP4Ids: []uint32{shared}})
	e.rolePrimary(t, "none", 1, &p4tcdv1.RoleConfig{ReceivesPacketIns: true})

	tests := []struct {
		role     string
		table    string
		key      uint64
		wantCode codes.Code
	}{
		{role: "a", table: "ExactOne", key: 1, wantCode: codes.OK},
		{role: "b", table: "ExactOne", key: 2, wantCode: codes.OK},
		{role: "a", table: "IdleTimeoutTable", key: 3, wantCode: codes.OK},
		{role: "b", table: "IdleTimeoutTable", key: 4, wantCode: codes.PermissionDenied},
		{role: "a", table: "ExactOneNonAligned", key: 5, wantCode: codes.PermissionDenied},
		{role: "b", table: "ExactOneNonAligned", key: 6, wantCode: codes.OK},
		{role: "none", table: "ExactOne", key: 7, wantCode: codes.PermissionDenied},
		{role: "", table: "ExactOneNonAligned", key: 8, wantCode: codes.OK}, // the default role has full access
	}
	for _, tc := range tests {
		t.Run(tc.role+"/"+tc.table, func(t *testing.T) {
			te := exactEntry(e, tc.table, tc.key, "actionA", 1)
			_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: tc.role, ElectionId: eid(1),
				Updates: []*p4v1.Update{insert(te)}})
			got := codes.OK
			if err != nil {
				got = codes.Code(details(t, err)[0].GetCanonicalCode())
			}
			if got != tc.wantCode {
				t.Fatalf("role %q writing %s: %v (%v), want %v", tc.role, tc.table, got, err, tc.wantCode)
			}
		})
	}

	// Reads filter by role: each sees its own and the shared table.
	for role, want := range map[string][]uint32{"a": {shared, shared, ta}, "b": {shared, shared, tb, tb}, "none": nil} {
		rc, err := e.client.Read(context.Background(), &p4v1.ReadRequest{DeviceId: testDevice, Role: role, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{})}})
		if err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for {
			r, err := rc.Recv()
			if err != nil {
				break
			}
			for _, ent := range r.GetEntities() {
				got = append(got, ent.GetTableEntry().GetTableId())
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("role %q reads tables %x, want %x", role, got, want)
		}
	}
}

// packetInTargets picks the primary of each role that receives a PacketIn
// with the given metadata; backups never receive PacketIns.
func TestPacketInTargets(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 5)
	backup := e.openStream(t)
	backup.arbitrate("", eid(1))
	backup.wantStatus(code.Code_ALREADY_EXISTS, 5)
	e.rolePrimary(t, "port5", 1, &p4tcdv1.RoleConfig{ReceivesPacketIns: true,
		PacketInFilter: &p4tcdv1.RoleConfig_PacketFilter{MetadataId: 1, Value: []byte{0, 5}}})
	e.rolePrimary(t, "all", 1, &p4tcdv1.RoleConfig{ReceivesPacketIns: true})
	e.rolePrimary(t, "deaf", 1, &p4tcdv1.RoleConfig{SharedP4Ids: []uint32{1}})
	gone := e.rolePrimary(t, "gone", 2, nil)
	watcher := e.openStream(t)
	watcher.arbitrateRole("gone", 1, nil)
	watcher.wantStatus(code.Code_ALREADY_EXISTS, 2)
	gone.cancel()
	watcher.wantStatus(code.Code_NOT_FOUND, 2) // the server has seen it leave

	md := func(id uint32, v ...byte) []*p4v1.PacketMetadata {
		return []*p4v1.PacketMetadata{{MetadataId: 2, Value: []byte{9}}, {MetadataId: id, Value: v}}
	}
	tests := []struct {
		name string
		md   []*p4v1.PacketMetadata
		want []string
	}{
		{name: "filter matches", md: md(1, 5), want: []string{"", "all", "port5"}},
		{name: "filter matches padded value", md: md(1, 0, 0, 5), want: []string{"", "all", "port5"}},
		{name: "other value", md: md(1, 6), want: []string{"", "all"}},
		{name: "other metadata", md: md(3, 5), want: []string{"", "all"}},
		{name: "no metadata", want: []string{"", "all"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range e.srv.packetInTargets(tc.md) {
				if !e.srv.arb.isPrimary(c) {
					t.Errorf("target of role %q is not its primary", c.role)
				}
				got = append(got, c.role)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("PacketIn goes to roles %q, want %q", got, tc.want)
			}
		})
	}
}
