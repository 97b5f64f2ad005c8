package server

import (
	"context"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// placementRecorder is a backend that keeps the ops it is given.
type placementRecorder struct {
	translator.Backend
	ops []translator.Op
}

func (r *placementRecorder) Apply(ops []translator.Op) (int, error) {
	r.ops = append(r.ops, ops...)
	return len(ops), nil
}

// A role config's placement places the role's writes; other roles keep
// the table's.
func TestRolePlacement(t *testing.T) {
	rec := &placementRecorder{Backend: translator.NewNoneBackend()}
	e := newTestEnvWith(t, rec)
	def := e.primary(t, 1)
	r := e.openStream(t)
	cfg := &p4tcdv1.RoleConfig{Placement: p4tcdv1.Placement_PLACEMENT_HW, SharedP4Ids: []uint32{tableID(e, "ExactOne")}}
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "hw", Config: mustAny(t, cfg)}}
	if err := r.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		t.Fatal(err)
	}
	if a := r.next(); code.Code(a.GetStatus().GetCode()) != code.Code_OK {
		t.Fatalf("role hw arbitration: %v", a)
	}
	def.quiet()
	e.setPipeline(t, 1)
	if _, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: "hw", ElectionId: eid(1),
		Updates: []*p4v1.Update{insert(exactEntry(e, "ExactOne", 1, "actionA", 1))}}); err != nil {
		t.Fatal(err)
	}
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	if len(rec.ops) != 2 || rec.ops[0].Entry.Placement != translator.PlaceHW || rec.ops[1].Entry.Placement != translator.PlaceBoth {
		for _, op := range rec.ops {
			t.Logf("op %v placement %v", op.Kind, op.Entry.Placement)
		}
		t.Fatalf("want the role's entry placed hw and the default role's both")
	}
}
