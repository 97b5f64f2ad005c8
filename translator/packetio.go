package translator

import (
	"fmt"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Packet I/O (P4Runtime §16.1). Between the datapath and p4tcd, a packet-in
// or packet-out travels as a frame that starts with the controller header
// the P4 program declares with @controller_header("packet_in") or
// ("packet_out"): its fields in P4Info order, bit-packed most significant
// bit first like any P4 header, padded with zero bits to a whole byte, then
// the packet itself.

// MaxPacketSize bounds packet-out payloads: a jumbo frame.
const MaxPacketSize = 9216

// headerBits is the width of a controller header; every field has a fixed
// width (sdn_string metadata cannot travel in a header).
func (h *ControllerHeader) headerBits() (int, error) {
	n := 0
	for _, m := range h.Metadata {
		if m.IsString {
			return 0, errorf(ErrInvalid, "controller header %s: metadata %s is a string and has no width", h.Name, m.Name)
		}
		n += m.Bits
	}
	return n, nil
}

// HeaderSize is the controller header's size in bytes on the wire.
func (h *ControllerHeader) HeaderSize() (int, error) {
	n, err := h.headerBits()
	return (n + 7) / 8, err
}

// EncodePacketOut checks a PacketOut against the P4Info's packet_out header
// and returns the frame to inject: the header, then the payload. Every
// metadata field must be given exactly once with a value that fits
// (P4Runtime §16.1: "exactly one PacketMetadata per field").
func (p *Pipeline) EncodePacketOut(po *p4v1.PacketOut) ([]byte, error) {
	h := p.PacketOut
	if h == nil {
		return nil, errorf(ErrPrecondition, "the pipeline has no @controller_header(\"packet_out\"): it takes no packet-outs")
	}
	if len(po.GetPayload()) == 0 {
		return nil, errorf(ErrInvalid, "packet-out: empty payload")
	}
	if len(po.GetPayload()) > MaxPacketSize {
		return nil, errorf(ErrInvalid, "packet-out: payload of %d bytes is above %d", len(po.GetPayload()), MaxPacketSize)
	}
	size, err := h.HeaderSize()
	if err != nil {
		return nil, err
	}
	vals := make([][]byte, len(h.Metadata))
	for _, md := range po.GetMetadata() {
		i := h.index(md.GetMetadataId())
		if i < 0 {
			return nil, errorf(ErrInvalid, "packet-out: no metadata with id %d in %s", md.GetMetadataId(), h.Name)
		}
		if vals[i] != nil {
			return nil, errorf(ErrInvalid, "packet-out: metadata %s given twice", h.Metadata[i].Name)
		}
		v, ok := canonical(md.GetValue(), h.Metadata[i].Bits)
		if !ok {
			return nil, errorf(ErrInvalid, "packet-out: metadata %s: value %s does not fit in %d bits", h.Metadata[i].Name, hexOf(md.GetValue()), h.Metadata[i].Bits)
		}
		vals[i] = v
	}
	frame := make([]byte, size+len(po.GetPayload()))
	off := 0
	for i, m := range h.Metadata {
		if vals[i] == nil {
			return nil, errorf(ErrInvalid, "packet-out: metadata %s (id %d) is missing", m.Name, m.ID)
		}
		putBits(frame[:size], off, m.Bits, vals[i])
		off += m.Bits
	}
	copy(frame[size:], po.GetPayload())
	return frame, nil
}

// DecodePacketIn decodes a frame the datapath sent to the CPU port: the
// packet_in header into metadata, in P4Info order (testvectors-runner
// compares the first one), and the rest as the payload.
func (p *Pipeline) DecodePacketIn(frame []byte) (*p4v1.PacketIn, error) {
	h := p.PacketIn
	if h == nil {
		return &p4v1.PacketIn{Payload: frame}, nil
	}
	size, err := h.HeaderSize()
	if err != nil {
		return nil, err
	}
	if len(frame) < size {
		return nil, fmt.Errorf("decode packet-in: frame of %d bytes is shorter than the %d-byte %s header", len(frame), size, h.Name)
	}
	pi := &p4v1.PacketIn{Payload: frame[size:], Metadata: make([]*p4v1.PacketMetadata, len(h.Metadata))}
	off := 0
	for i, m := range h.Metadata {
		pi.Metadata[i] = &p4v1.PacketMetadata{MetadataId: m.ID, Value: getBits(frame[:size], off, m.Bits)}
		off += m.Bits
	}
	return pi, nil
}

func (h *ControllerHeader) index(id uint32) int {
	for i, m := range h.Metadata {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// putBits writes the big-endian value v (canonical, at most width bits)
// into buf at bit offset off, most significant bit first.
func putBits(buf []byte, off, width int, v []byte) {
	for i := 0; i < width; i++ {
		// Bit i of the field, from its most significant bit.
		src := width - 1 - i // bit index from the least significant end of v
		byteIdx := len(v) - 1 - src/8
		if byteIdx < 0 || v[byteIdx]&(1<<(src%8)) == 0 {
			continue
		}
		pos := off + i
		buf[pos/8] |= 0x80 >> (pos % 8)
	}
}

// getBits reads width bits at bit offset off of buf as a canonical
// big-endian value.
func getBits(buf []byte, off, width int) []byte {
	v := make([]byte, minBytes(width))
	for i := 0; i < width; i++ {
		pos := off + i
		if buf[pos/8]&(0x80>>(pos%8)) == 0 {
			continue
		}
		dst := width - 1 - i
		v[len(v)-1-dst/8] |= 1 << (dst % 8)
	}
	c, _ := canonical(v, 0)
	return c
}

// Digest is a P4Info digest: what the datapath sends, member by member.
type Digest struct {
	ID      uint32
	Name    string
	Members []DigestMember
	// struct: the digest's type is a struct (decoded as P4Data struct);
	// otherwise it is one bitstring.
	isStruct bool
	// RecordSize is the size of one record from the datapath: each member
	// in its native container (as key fields are laid out), network byte
	// order, packed.
	RecordSize int
}

// DigestMember is one field of a digest.
type DigestMember struct {
	Name   string
	Bits   int
	Offset int
	Size   int
}

// Digest returns the digest with the given P4Info id, or nil.
func (p *Pipeline) Digest(id uint32) *Digest {
	p.digestsOnce.Do(p.indexDigests)
	return p.digests[id]
}

func (p *Pipeline) indexDigests() {
	p.digests = map[uint32]*Digest{}
	structs := p.P4Info.GetTypeInfo().GetStructs()
	for _, d := range p.P4Info.GetDigests() {
		dg := &Digest{ID: d.GetPreamble().GetId(), Name: d.GetPreamble().GetName()}
		add := func(name string, spec *p4configv1.P4DataTypeSpec) bool {
			bs := spec.GetBitstring()
			var w int
			switch {
			case bs.GetBit() != nil:
				w = int(bs.GetBit().GetBitwidth())
			case bs.GetInt() != nil:
				w = int(bs.GetInt().GetBitwidth())
			case spec.GetBool() != nil:
				w = 1
			default:
				return false
			}
			if w <= 0 || w > maxBitwidth {
				return false
			}
			m := DigestMember{Name: name, Bits: w, Offset: dg.RecordSize, Size: container(w)}
			dg.Members = append(dg.Members, m)
			dg.RecordSize += m.Size
			return true
		}
		ok := true
		if sn := d.GetTypeSpec().GetStruct().GetName(); sn != "" {
			dg.isStruct = true
			st := structs[sn]
			if st == nil {
				continue
			}
			for _, mem := range st.GetMembers() {
				ok = ok && add(mem.GetName(), mem.GetTypeSpec())
			}
		} else {
			ok = add(dg.Name, d.GetTypeSpec())
		}
		if ok && len(dg.Members) > 0 {
			p.digests[dg.ID] = dg
		}
	}
}

// DigestData decodes one datapath digest record into the P4Data a
// DigestList carries: a struct of bitstrings (or one bitstring), canonical.
func (d *Digest) DigestData(rec []byte) (*p4v1.P4Data, error) {
	if len(rec) < d.RecordSize {
		return nil, fmt.Errorf("decode digest %s: record of %d bytes, want %d", d.Name, len(rec), d.RecordSize)
	}
	vals := make([]*p4v1.P4Data, len(d.Members))
	for i, m := range d.Members {
		raw := append([]byte(nil), rec[m.Offset:m.Offset+m.Size]...)
		// Keep only the member's bits (the container may be wider).
		if extra := m.Size*8 - m.Bits; extra > 0 {
			raw[0] &= 0xff >> (extra % 8)
			for j := 0; j < extra/8; j++ {
				raw[j] = 0
			}
		}
		c, _ := canonical(raw, 0)
		vals[i] = &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: c}}
	}
	if !d.isStruct {
		return vals[0], nil
	}
	return &p4v1.P4Data{Data: &p4v1.P4Data_Struct{Struct: &p4v1.P4StructLike{Members: vals}}}, nil
}
