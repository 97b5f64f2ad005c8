package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// fuzzChunk is the ReadResponse size the fuzz servers use, small so that
// reads span several responses.
const fuzzChunk = 3

// fuzzEnv is a Server called without gRPC: the default role's primary and
// role "r", whose config allows ExactOne and LpmOne, both have election
// id 1, and the test P4Info is committed.
type fuzzEnv struct {
	srv *Server
}

func newFuzzEnv(tb testing.TB, e *testEnv) *fuzzEnv {
	tb.Helper()
	s := New(testDevice, translator.NewDevice(translator.NewNoneBackend()),
		WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithReadChunk(fuzzChunk, 1<<20))
	def := &controller{out: newSendQueue(64)}
	if err := s.arb.arbitrate(def, &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1)}, true, false); err != nil {
		tb.Fatal(err)
	}
	rc := mustAny(tb, &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{tableID(e, "ExactOne")}, SharedP4Ids: []uint32{tableID(e, "LpmOne")}})
	r := &controller{out: newSendQueue(64)}
	if err := s.arb.arbitrate(r, &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "r", Config: rc}}, true, false); err != nil {
		tb.Fatal(err)
	}
	if err := s.dev.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: e.info}); err != nil {
		tb.Fatal(err)
	}
	return &fuzzEnv{srv: s}
}

// readStream collects a Read's responses without gRPC.
type readStream struct {
	grpc.ServerStream
	resps []*p4v1.ReadResponse
}

func (r *readStream) Context() context.Context { return context.Background() }

func (r *readStream) Send(m *p4v1.ReadResponse) error {
	r.resps = append(r.resps, m)
	return nil
}

// SendMsg takes what Read sends: responses it encoded itself.
func (r *readStream) SendMsg(m any) error {
	var resp p4v1.ReadResponse
	if err := proto.Unmarshal(m.(encodedMsg), &resp); err != nil {
		return err
	}
	return r.Send(&resp)
}

// checkStatus fails the test unless err is a status gRPC can send: a
// known code other than INTERNAL (the control-plane backend never fails),
// and, for UNKNOWN, one p4.v1.Error per element.
func checkStatus(t *testing.T, what string, err error, elements int) {
	t.Helper()
	if err == nil {
		return
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%s: %v is not a gRPC status", what, err)
	}
	if _, err := proto.Marshal(st.Proto()); err != nil {
		t.Fatalf("%s: status %v cannot be sent: %v", what, st, err)
	}
	switch st.Code() {
	case codes.Internal, codes.OK:
		t.Fatalf("%s: status %v", what, st)
	case codes.Unknown:
		if len(st.Details()) != elements {
			t.Fatalf("%s: %d error details for %d elements", what, len(st.Details()), elements)
		}
		for i, d := range st.Details() {
			pe, ok := d.(*p4v1.Error)
			if !ok {
				t.Fatalf("%s: detail %d is %T, not a p4.v1.Error", what, i, d)
			}
			if c := codes.Code(pe.GetCanonicalCode()); c > codes.Unauthenticated || c == codes.Unknown || c == codes.Internal {
				t.Fatalf("%s: element %d has code %v", what, i, c)
			}
		}
	}
}

// readAll reads every entry with role and checks the responses.
func (f *fuzzEnv) readAll(t *testing.T, req *p4v1.ReadRequest) int {
	t.Helper()
	rs := &readStream{}
	err := f.srv.Read(req, rs)
	checkStatus(t, "Read", err, len(req.GetEntities()))
	n := 0
	for _, r := range rs.resps {
		if len(r.GetEntities()) == 0 || len(r.GetEntities()) > fuzzChunk {
			t.Fatalf("a ReadResponse with %d entities (chunks of %d)", len(r.GetEntities()), fuzzChunk)
		}
		if _, err := proto.Marshal(r); err != nil {
			t.Fatalf("ReadResponse cannot be sent: %v", err)
		}
		n += len(r.GetEntities())
	}
	return n
}

// stored is how many entries the device holds.
func (f *fuzzEnv) stored() int {
	n := 0
	for _, tc := range f.srv.dev.TableCounts() {
		n += tc.Entries
	}
	return n
}

// seedWrites are Write requests the fuzz targets start from.
func seedWrites(e *testEnv) []*p4v1.WriteRequest {
	w := func(role string, ups ...*p4v1.Update) *p4v1.WriteRequest {
		return &p4v1.WriteRequest{DeviceId: testDevice, ElectionId: eid(1), Role: role, Updates: ups}
	}
	ternaryEntry := &p4v1.TableEntry{TableId: tableID(e, "TernaryOne"), Priority: 10,
		Match:  []*p4v1.FieldMatch{ternary(1, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0})},
		Action: act(actionID(e, "actionA"), canon(1))}
	lpmEntry := &p4v1.TableEntry{TableId: tableID(e, "LpmOne"), Match: []*p4v1.FieldMatch{lpm(1, []byte{10, 1, 0, 0}, 16)},
		Action: act(actionID(e, "actionB"), canon(2))}
	return []*p4v1.WriteRequest{
		w("", insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), insert(lpmEntry), insert(ternaryEntry)),
		w("", insert(exactEntry(e, "ExactOne", 2, "actionA", 1)), modify(exactEntry(e, "ExactOne", 2, "actionB", 3)), del(exactEntry(e, "ExactOne", 2, "actionB", 3))),
		w("r", insert(exactEntry(e, "ExactOne", 3, "actionA", 1)), insert(exactEntry(e, "ExactOneNonAligned", 3, "actionA", 1))),
		w("", modify(&p4v1.TableEntry{TableId: tableID(e, "ExactOne"), IsDefaultAction: true, Action: act(actionID(e, "actionA"), canon(7))})),
		{DeviceId: testDevice, ElectionId: eid(1), Atomicity: p4v1.WriteRequest_ROLLBACK_ON_ERROR,
			Updates: []*p4v1.Update{insert(exactEntry(e, "ExactOne", 4, "actionA", 1)), insert(exactEntry(e, "ExactOne", 4, "actionA", 1))}},
		{DeviceId: 99, ElectionId: eid(2), Role: "ghost"},
	}
}

// FuzzWriteRequest calls Server.Write, without gRPC, with arbitrary
// WriteRequest bytes: as they are (device, role and election checks) and
// then with the device, a known role and the primary's election id (the
// updates reach the device), once decoded by proto.Unmarshal and once, on
// a second server, by the server's codec; both must answer alike. It must never panic, must answer a status
// gRPC can send with one error per update, and must leave every stored
// entry readable.
func FuzzWriteRequest(f *testing.F) {
	e := newTestEnv(f)
	for _, req := range seedWrites(e) {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c := newCodec()
	f.Fuzz(func(t *testing.T, b []byte) {
		var req p4v1.WriteRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		// A second server gets the request as gRPC hands it over:
		// decoded by the codec (plain table entries left undecoded),
		// released by Write. It must answer and hold what the first
		// does.
		decoded := func() *p4v1.WriteRequest {
			var wr p4v1.WriteRequest
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b...))}, &wr); err != nil {
				t.Fatalf("the codec refuses what proto.Unmarshal takes: %v", err)
			}
			return &wr
		}
		same := func(what string, err, cerr error) {
			t.Helper()
			if status.Code(err) != status.Code(cerr) || fmt.Sprint(status.Convert(err).Proto()) != fmt.Sprint(status.Convert(cerr).Proto()) {
				t.Fatalf("%s: %v; through the codec: %v", what, err, cerr)
			}
		}
		fe, fc := newFuzzEnv(t, e), newFuzzEnv(t, e)
		_, err := fe.srv.Write(context.Background(), &req)
		checkStatus(t, "Write", err, len(req.GetUpdates()))
		_, cerr := fc.srv.Write(context.Background(), decoded())
		same("Write", err, cerr)

		primary := func(req *p4v1.WriteRequest) {
			req.DeviceId, req.ElectionId = testDevice, eid(1)
			if req.Role != "r" {
				req.Role = ""
			}
		}
		primary(&req)
		_, err = fe.srv.Write(context.Background(), &req)
		checkStatus(t, "Write as primary", err, len(req.GetUpdates()))
		creq := decoded()
		primary(creq)
		_, cerr = fc.srv.Write(context.Background(), creq)
		same("Write as primary", err, cerr)
		all := &p4v1.ReadRequest{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{})}}
		if got, want := fe.readAll(t, all), fe.stored(); got != want {
			t.Fatalf("read %d entries, the device holds %d", got, want)
		}
		if got, want := fc.readAll(t, all), fe.stored(); got != want {
			t.Fatalf("through the codec: read %d entries, the device without holds %d", got, want)
		}
	})
}

// FuzzReadRequest calls Server.Read, without gRPC, with arbitrary
// ReadRequest bytes against a device holding entries in several tables:
// as they are, and with the device id set. It must never panic, must send
// only chunks gRPC can carry and end with a status it can send, with one
// error per request.
func FuzzReadRequest(f *testing.F) {
	e := newTestEnv(f)
	reads := []*p4v1.ReadRequest{
		{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{})}},
		{DeviceId: testDevice, Role: "r", Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{})}},
		{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne"), IsDefaultAction: true})}},
		{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(exactEntry(e, "ExactOne", 1, "actionA", 1))}},
		{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{TableId: tableID(e, "TernaryOne"),
			Match: []*p4v1.FieldMatch{ternary(1, []byte{10, 0, 0, 0}, []byte{0xff, 0, 0, 0})}})}},
		{DeviceId: testDevice, Entities: []*p4v1.Entity{tableRead(&p4v1.TableEntry{TableId: tableID(e, "ExactOne"), TimeSinceLastHit: &p4v1.TableEntry_IdleTimeout{}}),
			{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{}}}, {}}},
		{DeviceId: 99},
	}
	for _, req := range reads {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	writes := seedWrites(e)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req p4v1.ReadRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			return
		}
		fe := newFuzzEnv(t, e)
		for _, w := range writes[:3] {
			if _, err := fe.srv.Write(context.Background(), w); status.Code(err) == codes.Internal {
				t.Fatal(err)
			}
		}
		fe.readAll(t, &req)
		req.DeviceId = testDevice
		fe.readAll(t, &req)
	})
}
