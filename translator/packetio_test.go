package translator

import (
	"bytes"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

func shellPipeline(t *testing.T) *Pipeline {
	t.Helper()
	p, err := Compile(loadP4Info(t, "p4runtime-shell-unittest.p4info.pb.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEncodePacketOut(t *testing.T) {
	p := shellPipeline(t) // packet_out { egress_port: bit<16> }
	md := func(id uint32, v []byte) *p4v1.PacketMetadata { return &p4v1.PacketMetadata{MetadataId: id, Value: v} }
	tests := []struct {
		name    string
		po      *p4v1.PacketOut
		want    []byte
		wantErr error
	}{
		{"canonical", &p4v1.PacketOut{Payload: []byte("hi"), Metadata: []*p4v1.PacketMetadata{md(1, []byte{3})}}, []byte{0, 3, 'h', 'i'}, nil},
		{"padded value", &p4v1.PacketOut{Payload: []byte("x"), Metadata: []*p4v1.PacketMetadata{md(1, []byte{0, 0, 0x12, 0x34})}}, []byte{0x12, 0x34, 'x'}, nil},
		{"missing metadata", &p4v1.PacketOut{Payload: []byte("x")}, nil, ErrInvalid},
		{"unknown metadata", &p4v1.PacketOut{Payload: []byte("x"), Metadata: []*p4v1.PacketMetadata{md(1, []byte{1}), md(2, []byte{1})}}, nil, ErrInvalid},
		{"twice", &p4v1.PacketOut{Payload: []byte("x"), Metadata: []*p4v1.PacketMetadata{md(1, []byte{1}), md(1, []byte{1})}}, nil, ErrInvalid},
		{"too wide", &p4v1.PacketOut{Payload: []byte("x"), Metadata: []*p4v1.PacketMetadata{md(1, []byte{1, 0, 0})}}, nil, ErrInvalid},
		{"empty payload", &p4v1.PacketOut{Metadata: []*p4v1.PacketMetadata{md(1, []byte{1})}}, nil, ErrInvalid},
		{"oversize payload", &p4v1.PacketOut{Payload: make([]byte, MaxPacketSize+1), Metadata: []*p4v1.PacketMetadata{md(1, []byte{1})}}, nil, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.EncodePacketOut(tc.po)
			if tc.wantErr != nil {
				if !isErr(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("frame %x, %v; want %x", got, err, tc.want)
			}
		})
	}
}

// Controller headers are bit-packed like P4 headers: odd widths share bytes.
func TestControllerHeaderBitPacking(t *testing.T) {
	h := &ControllerHeader{Name: "packet_in", Metadata: []*Param{
		{ID: 1, Name: "ingress_port", Bits: 9}, {ID: 2, Name: "reason", Bits: 3}, {ID: 3, Name: "_pad", Bits: 4},
	}}
	p := &Pipeline{PacketIn: h, PacketOut: h}
	frame, err := p.EncodePacketOut(&p4v1.PacketOut{Payload: []byte{0xaa}, Metadata: []*p4v1.PacketMetadata{
		{MetadataId: 1, Value: []byte{0x01, 0x05}}, {MetadataId: 2, Value: []byte{0x6}}, {MetadataId: 3, Value: []byte{0}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// 100000101 110 0000 → 1000 0010 1110 0000
	if want := []byte{0x82, 0xe0, 0xaa}; !bytes.Equal(frame, want) {
		t.Fatalf("frame %x, want %x", frame, want)
	}
	pi, err := p.DecodePacketIn(frame)
	if err != nil {
		t.Fatal(err)
	}
	want := &p4v1.PacketIn{Payload: []byte{0xaa}, Metadata: []*p4v1.PacketMetadata{
		{MetadataId: 1, Value: []byte{0x01, 0x05}}, {MetadataId: 2, Value: []byte{0x06}}, {MetadataId: 3, Value: []byte{0}},
	}}
	if !proto.Equal(pi, want) {
		t.Fatalf("decoded %v, want %v", pi, want)
	}
	if _, err := p.DecodePacketIn([]byte{0x82}); err == nil {
		t.Error("a frame shorter than its header decoded")
	}
}

func TestDigestData(t *testing.T) {
	p := shellPipeline(t) // test_digest_t { f48: bit<48>; f12: bit<12> }
	var id uint32
	for _, d := range p.P4Info.GetDigests() {
		id = d.GetPreamble().GetId()
	}
	d := p.Digest(id)
	if d == nil || d.RecordSize != 8+2 {
		t.Fatalf("digest %+v, want a 10-byte record (u64 + u16 containers)", d)
	}
	rec := []byte{0, 0, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xf0, 0x0a} // f12 container has stray high bits
	got, err := d.DigestData(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := &p4v1.P4Data{Data: &p4v1.P4Data_Struct{Struct: &p4v1.P4StructLike{Members: []*p4v1.P4Data{
		{Data: &p4v1.P4Data_Bitstring{Bitstring: []byte{0x11, 0x22, 0x33, 0x44, 0x55}}},
		{Data: &p4v1.P4Data_Bitstring{Bitstring: []byte{0x0a}}},
	}}}}
	if !proto.Equal(got, want) {
		t.Errorf("digest data %v, want %v", got, want)
	}
	if _, err := d.DigestData(rec[:5]); err == nil {
		t.Error("a short record decoded")
	}
	if p.Digest(12345) != nil {
		t.Error("an unknown digest id resolved")
	}
}

// FuzzPacketIO: encoding then decoding a packet through the same header
// gives back the packet, and no input panics.
func FuzzPacketIO(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(9), uint8(7), []byte{0x01, 0x05}, []byte{0x3})
	f.Fuzz(func(t *testing.T, payload []byte, w1, w2 uint8, v1, v2 []byte) {
		h := &ControllerHeader{Name: "h", Metadata: []*Param{{ID: 1, Name: "a", Bits: int(w1%64) + 1}, {ID: 2, Name: "b", Bits: int(w2%64) + 1}}}
		p := &Pipeline{PacketIn: h, PacketOut: h, P4Info: &p4configv1.P4Info{}}
		po := &p4v1.PacketOut{Payload: payload, Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: v1}, {MetadataId: 2, Value: v2}}}
		frame, err := p.EncodePacketOut(po)
		if err != nil {
			return
		}
		pi, err := p.DecodePacketIn(frame)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pi.GetPayload(), payload) {
			t.Fatalf("payload %x, want %x", pi.GetPayload(), payload)
		}
		for i, md := range pi.GetMetadata() {
			c, _ := canonical(po.Metadata[i].GetValue(), 0)
			if !bytes.Equal(md.GetValue(), c) {
				t.Fatalf("metadata %d: %x, want %x", i, md.GetValue(), c)
			}
		}
	})
}
