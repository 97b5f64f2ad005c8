package server

import (
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// cpuPortBackend is the control-plane-only backend with a CPU port made of
// two Go channels: a test double of translator.EventSource and
// translator.PacketSender (the eBPF datapath's CPU port is a veth; its own
// tests send real frames).
type cpuPortBackend struct {
	translator.AtomicBackend
	mu   sync.Mutex
	sent [][]byte
	emit func(translator.Event)
}

func (b *cpuPortBackend) SetEventHandler(fn func(translator.Event)) { b.emit = fn }
func (b *cpuPortBackend) SendPacket(frame []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent = append(b.sent, frame)
	return nil
}
func (b *cpuPortBackend) frames() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.sent...)
}

func newCPUEnv(t *testing.T, opts ...Option) (*testEnv, *cpuPortBackend) {
	be := &cpuPortBackend{AtomicBackend: translator.NewNoneBackend()}
	e := newTestEnvWith(t, be, opts...)
	return e, be
}

// nextOf returns the next stream message that is not an arbitration.
func (s *stream) nextOf() *p4v1.StreamMessageResponse {
	s.t.Helper()
	for {
		select {
		case m, ok := <-s.in:
			if !ok {
				s.t.Fatalf("stream closed: %v", <-s.done)
			}
			if m.GetArbitration() != nil {
				continue
			}
			return m
		case <-time.After(2 * time.Second):
			s.t.Fatal("no stream message within 2s")
		}
	}
}

func (s *stream) sendPacket(po *p4v1.PacketOut) {
	s.t.Helper()
	if err := s.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Packet{Packet: po}}); err != nil {
		s.t.Fatal(err)
	}
}

// P4Runtime §16.1: the primary's packet-outs reach the CPU port with their
// packet_out header; a backup's are dropped with a StreamError; a bad one
// is refused and the stream stays open.
func TestPacketOut(t *testing.T) {
	e, be := newCPUEnv(t)
	p := e.primary(t, 2)
	e.setPipeline(t, 2)
	backup := e.openStream(t)
	backup.arbitrate("", eid(1))
	backup.wantStatus(code.Code_ALREADY_EXISTS, 2)

	good := &p4v1.PacketOut{Payload: []byte("frame"), Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: []byte{0x00, 0x07}}}}
	backup.sendPacket(good)
	if m := backup.nextOf(); codes.Code(m.GetError().GetCanonicalCode()) != codes.PermissionDenied || m.GetError().GetPacketOut() == nil {
		t.Errorf("backup packet-out: %v, want a PERMISSION_DENIED StreamError naming the packet", m)
	}
	p.sendPacket(&p4v1.PacketOut{Payload: []byte("frame"), Metadata: []*p4v1.PacketMetadata{{MetadataId: 9, Value: []byte{1}}}})
	if m := p.nextOf(); codes.Code(m.GetError().GetCanonicalCode()) != codes.InvalidArgument {
		t.Errorf("bad metadata: %v, want INVALID_ARGUMENT StreamError", m)
	}
	p.sendPacket(good) // the stream is still open
	deadline := time.Now().Add(2 * time.Second)
	for len(be.frames()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fs := be.frames(); len(fs) != 1 || string(fs[0]) != "\x00\x07frame" {
		t.Fatalf("CPU port got %q, want one frame with the 16-bit egress_port header", fs)
	}
}

// Packet-ins go to the primary of each role that takes them, with metadata
// decoded from the packet_in header.
func TestPacketIn(t *testing.T) {
	e, be := newCPUEnv(t)
	p := e.primary(t, 2)
	e.setPipeline(t, 2)
	backup := e.openStream(t)
	backup.arbitrate("", eid(1))
	backup.next()
	quietRole := e.openStream(t)
	cfg := &p4tcdv1.RoleConfig{ReceivesPacketIns: false}
	if err := quietRole.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: &p4v1.MasterArbitrationUpdate{
		DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "quiet", Config: mustAny(t, cfg)}}}}); err != nil {
		t.Fatal(err)
	}
	quietRole.next()

	be.emit(translator.Event{Kind: translator.EventPacketIn, Frame: []byte("\x01\x02payload")})
	m := p.nextOf()
	want := &p4v1.PacketIn{Payload: []byte("payload"), Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: []byte{0x01, 0x02}}}}
	if !proto.Equal(m.GetPacket(), want) {
		t.Errorf("primary got %v, want %v", m, want)
	}
	backup.quiet()
	quietRole.quiet()
}

func TestDigestEngine(t *testing.T) {
	cfg := &p4v1.DigestEntry_Config{MaxTimeoutNs: int64(time.Hour), MaxListSize: 2, AckTimeoutNs: int64(time.Hour)}
	var mu sync.Mutex
	var lists []*p4v1.DigestList
	e := newDigestEngine(func(id uint32) *p4v1.DigestEntry_Config {
		if id == 7 {
			return cfg
		}
		return nil
	}, func(l *p4v1.DigestList) { mu.Lock(); lists = append(lists, l); mu.Unlock() })
	defer e.close()
	now := time.Unix(1000, 0)
	e.now = func() time.Time { return now }
	d := func(v byte) *p4v1.P4Data { return &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: []byte{v}}} }
	got := func() []*p4v1.DigestList {
		mu.Lock()
		defer mu.Unlock()
		return append([]*p4v1.DigestList(nil), lists...)
	}

	e.add(8, d(1)) // not enabled: dropped
	e.add(7, d(1))
	e.add(7, d(1)) // duplicate in the buffer
	if n := len(got()); n != 0 {
		t.Fatalf("%d lists before max_list_size distinct messages", n)
	}
	e.add(7, d(2))
	ls := got()
	if len(ls) != 1 || len(ls[0].GetData()) != 2 || ls[0].GetDigestId() != 7 {
		t.Fatalf("lists %v, want one of 2 distinct messages", ls)
	}
	// Sent and not acked: the same data is not sent again...
	e.add(7, d(1))
	e.add(7, d(3))
	e.add(7, d(4))
	if ls := got(); len(ls) != 2 || len(ls[1].GetData()) != 2 || proto.Equal(ls[1].GetData()[0], d(1)) {
		t.Fatalf("after the first list: %v; want a second list of 3 and 4 only", ls)
	}
	// ...until the ack,
	e.ack(&p4v1.DigestListAck{DigestId: 7, ListId: ls[0].GetListId()})
	e.add(7, d(1))
	e.add(7, d(2))
	if ls := got(); len(ls) != 3 {
		t.Fatalf("after the ack: %d lists, want 3", len(ls))
	}
	// ...or ack_timeout_ns.
	now = now.Add(2 * time.Hour)
	e.add(7, d(3))
	e.add(7, d(4))
	if ls := got(); len(ls) != 4 {
		t.Fatalf("after ack_timeout: %d lists, want 4", len(ls))
	}
}

// max_timeout_ns sends a partial buffer; 0 sends each message at once.
func TestDigestEngineTimeout(t *testing.T) {
	cfg := &p4v1.DigestEntry_Config{MaxTimeoutNs: int64(20 * time.Millisecond), MaxListSize: 100}
	sent := make(chan *p4v1.DigestList, 10)
	e := newDigestEngine(func(uint32) *p4v1.DigestEntry_Config { return cfg }, func(l *p4v1.DigestList) { sent <- l })
	defer e.close()
	e.add(1, &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: []byte{1}}})
	select {
	case l := <-sent:
		if len(l.GetData()) != 1 {
			t.Errorf("list %v", l)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("max_timeout_ns passed and nothing was sent")
	}
	cfg.MaxTimeoutNs = 0
	e.add(1, &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: []byte{2}}})
	select {
	case <-sent:
	default:
		t.Fatal("max_timeout_ns 0: the message was not sent at once")
	}
}

// Digests from the datapath reach the primary as DigestLists; acks count.
func TestDigestsOverStream(t *testing.T) {
	cfg := &p4v1.DigestEntry_Config{MaxListSize: 1, AckTimeoutNs: int64(time.Hour)}
	e, be := newCPUEnv(t, withDigestConfig(func(uint32) *p4v1.DigestEntry_Config { return cfg }))
	p := e.primary(t, 1)
	e.setPipeline(t, 1)
	id := e.info.GetDigests()[0].GetPreamble().GetId()
	rec := []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 2} // f48 = 1, f12 = 2
	be.emit(translator.Event{Kind: translator.EventDigest, DigestID: id, Data: rec})
	l := p.nextOf().GetDigest()
	if l.GetDigestId() != id || len(l.GetData()) != 1 || len(l.GetData()[0].GetStruct().GetMembers()) != 2 {
		t.Fatalf("digest list %v", l)
	}
	be.emit(translator.Event{Kind: translator.EventDigest, DigestID: id, Data: rec}) // unacked duplicate
	p.quiet()
	if err := p.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_DigestAck{DigestAck: &p4v1.DigestListAck{DigestId: id, ListId: l.GetListId()}}}); err != nil {
		t.Fatal(err)
	}
	// The ack travels on the stream, ahead of nothing we can wait on: offer
	// the data again until it is taken (bounded).
	for i := 0; ; i++ {
		be.emit(translator.Event{Kind: translator.EventDigest, DigestID: id, Data: rec})
		select {
		case m := <-p.in:
			if l2 := m.GetDigest(); l2 == nil || l2.GetListId() == l.GetListId() {
				t.Fatalf("after the ack: %v", m)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if i == 100 {
			t.Fatal("the acked data never came back")
		}
	}
}
