package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/p4tcd/p4tcd/translator"
)

const testDevice = 1

// testEnv is a p4tcd server on an in-memory gRPC connection.
type testEnv struct {
	srv    *Server
	client p4v1.P4RuntimeClient
	conn   *grpc.ClientConn
	info   *p4configv1.P4Info
}

func newTestEnv(t testing.TB, opts ...Option) *testEnv {
	t.Helper()
	return newTestEnvWith(t, translator.NewNoneBackend(), opts...)
}

func newTestEnvWith(t testing.TB, b translator.Backend, opts ...Option) *testEnv {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, opts...)
	srv := New(testDevice, translator.NewDevice(b), opts...)
	g := grpc.NewServer(GRPCOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &testEnv{srv: srv, client: p4v1.NewP4RuntimeClient(conn), conn: conn, info: testP4Info(t)}
}

func testP4Info(t testing.TB) *p4configv1.P4Info {
	t.Helper()
	b, err := os.ReadFile("testdata/p4runtime-shell-unittest.p4info.pb.txt")
	if err != nil {
		t.Fatal(err)
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// stream is one controller's StreamChannel.
type stream struct {
	t  testing.TB
	s  p4v1.P4Runtime_StreamChannelClient
	in chan *p4v1.StreamMessageResponse
	// done receives the status the stream ended with.
	done   chan error
	cancel context.CancelFunc
}

func (e *testEnv) openStream(t testing.TB) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := e.client.StreamChannel(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	st := &stream{t: t, s: s, in: make(chan *p4v1.StreamMessageResponse, 100), done: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				st.done <- err
				close(st.in)
				return
			}
			st.in <- m
		}
	}()
	t.Cleanup(cancel)
	return st
}

func eid(low uint64) *p4v1.Uint128 { return &p4v1.Uint128{Low: low} }

// arbitrate sends a MasterArbitrationUpdate.
func (s *stream) arbitrate(role string, id *p4v1.Uint128) {
	s.t.Helper()
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: id}
	if role != "" {
		upd.Role = &p4v1.Role{Name: role}
	}
	if err := s.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		s.t.Fatal(err)
	}
}

// next returns the next arbitration notification, failing after a timeout
// (P4Runtime clients wait 2 s at most).
func (s *stream) next() *p4v1.MasterArbitrationUpdate {
	s.t.Helper()
	select {
	case m, ok := <-s.in:
		if !ok {
			s.t.Fatalf("stream closed: %v", <-s.done)
		}
		if a := m.GetArbitration(); a != nil {
			return a
		}
		s.t.Fatalf("unexpected stream message %v", m)
	case <-time.After(2 * time.Second):
		s.t.Fatal("no arbitration notification within 2s")
	}
	return nil
}

// wantStatus reads the next notification and checks its status code and
// election id.
func (s *stream) wantStatus(want code.Code, wantID uint64) {
	s.t.Helper()
	a := s.next()
	if got := code.Code(a.GetStatus().GetCode()); got != want {
		s.t.Fatalf("arbitration status %v, want %v (%v)", got, want, a)
	}
	if wantID == 0 {
		if a.GetElectionId() != nil && want != code.Code_OK {
			// (0,0) as a real id only appears with the compat flag.
			if a.GetElectionId().GetLow() != 0 || a.GetElectionId().GetHigh() != 0 {
				s.t.Fatalf("election id %v, want unset", a.GetElectionId())
			}
		}
		return
	}
	if a.GetElectionId().GetLow() != wantID {
		s.t.Fatalf("election id %v, want %d", a.GetElectionId(), wantID)
	}
}

// quiet asserts that no message arrives for a short while.
func (s *stream) quiet() {
	s.t.Helper()
	select {
	case m, ok := <-s.in:
		if ok {
			s.t.Fatalf("unexpected message %v", m)
		}
	case <-time.After(50 * time.Millisecond):
	}
}

// closedWith waits for the stream to end with code c.
func (s *stream) closedWith(c codes.Code) {
	s.t.Helper()
	select {
	case err := <-s.done:
		if status.Code(err) != c {
			s.t.Fatalf("stream ended with %v, want %v", err, c)
		}
	case <-time.After(2 * time.Second):
		s.t.Fatalf("stream still open, want it closed with %v", c)
	}
}

// primary opens a stream and makes it primary with election id low.
func (e *testEnv) primary(t testing.TB, low uint64) *stream {
	t.Helper()
	s := e.openStream(t)
	s.arbitrate("", eid(low))
	s.wantStatus(code.Code_OK, low)
	return s
}

func (e *testEnv) setPipeline(t testing.TB, low uint64) {
	t.Helper()
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: testDevice, ElectionId: eid(low), Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: e.info, Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: 42}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// write sends updates as the primary with election id low.
func (e *testEnv) write(low uint64, atomicity p4v1.WriteRequest_Atomicity, ups ...*p4v1.Update) error {
	_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{
		DeviceId: testDevice, ElectionId: eid(low), Updates: ups, Atomicity: atomicity,
	})
	return err
}

// details returns the per-update p4.v1.Errors of a Write error.
func details(t testing.TB, err error) []*p4v1.Error {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.Unknown {
		t.Fatalf("top-level code %v, want UNKNOWN (%v)", st.Code(), err)
	}
	var out []*p4v1.Error
	for _, d := range st.Details() {
		pe, ok := d.(*p4v1.Error)
		if !ok {
			t.Fatalf("detail %T is not a p4.v1.Error", d)
		}
		out = append(out, pe)
	}
	return out
}

// readAll reads entities matching the filters and returns them and how
// many ReadResponses carried them.
func (e *testEnv) readAll(t testing.TB, ents ...*p4v1.Entity) ([]*p4v1.Entity, int, error) {
	t.Helper()
	rc, err := e.client.Read(context.Background(), &p4v1.ReadRequest{DeviceId: testDevice, Entities: ents})
	if err != nil {
		t.Fatal(err)
	}
	var out []*p4v1.Entity
	n := 0
	for {
		r, err := rc.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, n, nil
			}
			return out, n, err
		}
		n++
		out = append(out, r.GetEntities()...)
	}
}
