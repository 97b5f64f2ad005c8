package server

import (
	"errors"
	"unicode/utf8"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// codec is the server's gRPC codec: protobuf, with a decoder of its own for
// the shape of WriteRequest that carries table entries. Decoding a
// thousand-entry batch with the generic decoder allocates ten messages per
// entry and was the largest share of the write path's CPU; this one
// allocates them in slabs, and aliases bytes fields into one copy of the
// request. Anything it does not know — another entity, direct resources,
// unknown fields, a repeated singular message — falls back to
// proto.Unmarshal, so the result is always what proto.Unmarshal gives
// (FuzzWriteRequestCodec checks it).
type codec struct{ fallback encoding.CodecV2 }

func newCodec() codec { return codec{fallback: encoding.GetCodecV2("proto")} }

func (codec) Name() string { return "proto" }

// encodedMsg is a message the server encoded itself (a ReadResponse built
// entity by entity); the codec sends it as it is.
type encodedMsg []byte

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(encodedMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.fallback.Marshal(v)
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	wr, ok := v.(*p4v1.WriteRequest)
	if !ok {
		return c.fallback.Unmarshal(data, v)
	}
	b := data.Materialize() // a copy of our own: bytes fields may alias it
	if err := decodeWriteRequest(b, wr); err == nil {
		return nil
	}
	proto.Reset(wr)
	return proto.Unmarshal(b, wr)
}

// errSlowPath says the fast decoder does not handle the input.
var errSlowPath = errors.New("use proto.Unmarshal")

// slab hands out zeroed values allocated in chunks.
type slab[T any] struct{ buf []T }

func (s *slab[T]) next() *T {
	if len(s.buf) == 0 {
		s.buf = make([]T, 64)
	}
	v := &s.buf[0]
	s.buf = s.buf[1:]
	return v
}

// run hands out the elements of repeated fields (a table entry's matches,
// an action's params) as slices carved from shared chunks: growing each
// slice by append cost allocations per entry. A run is built with add and
// taken with end; a run interrupted by a fallback to proto.Unmarshal is
// abandoned with begin.
type run[T any] struct {
	buf   []*T
	start int
}

// begin starts a run, abandoning any unfinished one.
func (r *run[T]) begin() { r.start = len(r.buf) }

// add appends v to the current run.
func (r *run[T]) add(v *T) {
	if len(r.buf) == cap(r.buf) {
		// A new chunk, with the run so far moved into it: slices taken
		// before keep the old chunk.
		cur := r.buf[r.start:]
		next := make([]*T, 0, max(256, 2*len(cur)))
		r.buf, r.start = append(next, cur...), 0
	}
	r.buf = append(r.buf, v)
}

// end returns the current run (nil when empty, as proto.Unmarshal leaves
// an absent repeated field) and starts the next.
func (r *run[T]) end() []*T {
	if len(r.buf) == r.start {
		return nil
	}
	s := r.buf[r.start:len(r.buf):len(r.buf)]
	r.start = len(r.buf)
	return s
}

// decoder holds the slabs of one request.
type decoder struct {
	updates  slab[p4v1.Update]
	entities slab[p4v1.Entity]
	tes      slab[p4v1.TableEntry]
	teWraps  slab[p4v1.Entity_TableEntry]
	matches  slab[p4v1.FieldMatch]
	exacts   slab[p4v1.FieldMatch_Exact]
	exactW   slab[p4v1.FieldMatch_Exact_]
	lpms     slab[p4v1.FieldMatch_LPM]
	lpmW     slab[p4v1.FieldMatch_Lpm]
	terns    slab[p4v1.FieldMatch_Ternary]
	ternW    slab[p4v1.FieldMatch_Ternary_]
	ranges   slab[p4v1.FieldMatch_Range]
	rangeW   slab[p4v1.FieldMatch_Range_]
	opts     slab[p4v1.FieldMatch_Optional]
	optW     slab[p4v1.FieldMatch_Optional_]
	tas      slab[p4v1.TableAction]
	actions  slab[p4v1.Action]
	actW     slab[p4v1.TableAction_Action]
	params   slab[p4v1.Action_Param]
	matchRun run[p4v1.FieldMatch]
	paramRun run[p4v1.Action_Param]
}

// field reads one field's header and, for length-delimited fields, its
// bytes; it returns the rest of b.
func field(b []byte) (num protowire.Number, typ protowire.Type, v uint64, val []byte, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, nil, nil, errSlowPath
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(b)
	case protowire.BytesType:
		val, n = protowire.ConsumeBytes(b)
	default:
		return 0, 0, 0, nil, nil, errSlowPath
	}
	if n < 0 {
		return 0, 0, 0, nil, nil, errSlowPath
	}
	return num, typ, v, val, b[n:], nil
}

func decodeWriteRequest(b []byte, wr *p4v1.WriteRequest) error {
	d := &decoder{}
	seenElection := false
	n := 0
	for rest := b; len(rest) > 0; {
		num, typ, _, _, r, err := field(rest)
		if err != nil {
			return err
		}
		if num == 4 && typ == protowire.BytesType {
			n++
		}
		rest = r
	}
	wr.Updates = make([]*p4v1.Update, 0, n)
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			wr.DeviceId = v
		case num == 3 && typ == protowire.BytesType:
			if seenElection {
				return errSlowPath // proto merges a repeated message
			}
			seenElection = true
			u := &p4v1.Uint128{}
			if err := decodeUint128(val, u); err != nil {
				return err
			}
			wr.ElectionId = u
		case num == 4 && typ == protowire.BytesType:
			u := d.updates.next()
			if err := d.update(val, u); err != nil {
				return err
			}
			wr.Updates = append(wr.Updates, u)
		case num == 5 && typ == protowire.VarintType:
			wr.Atomicity = p4v1.WriteRequest_Atomicity(int32(v))
		case num == 6 && typ == protowire.BytesType:
			if !utf8.Valid(val) {
				return errSlowPath
			}
			wr.Role = string(val)
		default:
			return errSlowPath
		}
	}
	return nil
}

func decodeUint128(b []byte, u *p4v1.Uint128) error {
	for len(b) > 0 {
		num, typ, v, _, rest, err := field(b)
		if err != nil || typ != protowire.VarintType {
			return errSlowPath
		}
		switch num {
		case 1:
			u.High = v
		case 2:
			u.Low = v
		default:
			return errSlowPath
		}
		b = rest
	}
	return nil
}

func (d *decoder) update(b []byte, u *p4v1.Update) error {
	seen := false
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			u.Type = p4v1.Update_Type(int32(v))
		case num == 2 && typ == protowire.BytesType:
			if seen {
				return errSlowPath
			}
			seen = true
			e := d.entities.next()
			if err := d.entity(val, e); err != nil {
				return err
			}
			u.Entity = e
		default:
			return errSlowPath
		}
	}
	return nil
}

func (d *decoder) entity(b []byte, e *p4v1.Entity) error {
	num, typ, _, val, rest, err := field(b)
	if err != nil || len(rest) > 0 || num != 2 || typ != protowire.BytesType {
		// Not exactly one table entry: let proto decode this entity.
		if len(b) == 0 {
			return nil
		}
		return proto.Unmarshal(b, e)
	}
	te := d.tes.next()
	if err := d.tableEntry(val, te); err != nil {
		if !errors.Is(err, errSlowPath) {
			return err
		}
		proto.Reset(te)
		if err := proto.Unmarshal(val, te); err != nil {
			return err
		}
	}
	w := d.teWraps.next()
	w.TableEntry = te
	e.Entity = w
	return nil
}

func (d *decoder) tableEntry(b []byte, te *p4v1.TableEntry) error {
	seenAction := false
	d.matchRun.begin()
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			te.TableId = uint32(v)
		case num == 2 && typ == protowire.BytesType:
			m := d.matches.next()
			if err := d.fieldMatch(val, m); err != nil {
				return err
			}
			d.matchRun.add(m)
		case num == 3 && typ == protowire.BytesType:
			if seenAction {
				return errSlowPath
			}
			seenAction = true
			ta := d.tas.next()
			if err := d.tableAction(val, ta); err != nil {
				return err
			}
			te.Action = ta
		case num == 4 && typ == protowire.VarintType:
			te.Priority = int32(v)
		case num == 5 && typ == protowire.VarintType:
			te.ControllerMetadata = v
		case num == 8 && typ == protowire.VarintType:
			te.IsDefaultAction = v != 0
		case num == 9 && typ == protowire.VarintType:
			te.IdleTimeoutNs = int64(v)
		case num == 11 && typ == protowire.BytesType:
			te.Metadata = val
		case num == 13 && typ == protowire.VarintType:
			te.IsConst = v != 0
		default:
			return errSlowPath // direct resources, time_since_last_hit, unknown
		}
	}
	te.Match = d.matchRun.end()
	return nil
}

// Shapes of FieldMatch's match messages.
const (
	oneBytes = iota // Exact, Optional: bytes 1
	twoBytes        // Ternary, Range: bytes 1, bytes 2
	lpmShape        // LPM: bytes 1, varint 2
)

// bytesFields decodes one of FieldMatch's match messages.
func bytesFields(b []byte, shape int) (f1, f2 []byte, n2 uint64, err error) {
	for len(b) > 0 {
		num, typ, v, val, rest, ferr := field(b)
		if ferr != nil {
			return nil, nil, 0, ferr
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.BytesType:
			f1 = val
		case num == 2 && typ == protowire.BytesType && shape == twoBytes:
			f2 = val
		case num == 2 && typ == protowire.VarintType && shape == lpmShape:
			n2 = v
		default:
			return nil, nil, 0, errSlowPath
		}
	}
	return f1, f2, n2, nil
}

func (d *decoder) fieldMatch(b []byte, m *p4v1.FieldMatch) error {
	seen := false
	for len(b) > 0 {
		num, typ, v, val, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		if num == 1 && typ == protowire.VarintType {
			m.FieldId = uint32(v)
			continue
		}
		if typ != protowire.BytesType || seen {
			return errSlowPath
		}
		seen = true
		switch num {
		case 2:
			f1, _, _, err := bytesFields(val, oneBytes)
			if err != nil {
				return err
			}
			x := d.exacts.next()
			x.Value = f1
			w := d.exactW.next()
			w.Exact = x
			m.FieldMatchType = w
		case 3:
			f1, f2, _, err := bytesFields(val, twoBytes)
			if err != nil {
				return err
			}
			x := d.terns.next()
			x.Value, x.Mask = f1, f2
			w := d.ternW.next()
			w.Ternary = x
			m.FieldMatchType = w
		case 4:
			f1, _, plen, err := bytesFields(val, lpmShape)
			if err != nil {
				return err
			}
			x := d.lpms.next()
			x.Value, x.PrefixLen = f1, int32(plen)
			w := d.lpmW.next()
			w.Lpm = x
			m.FieldMatchType = w
		case 6:
			f1, f2, _, err := bytesFields(val, twoBytes)
			if err != nil {
				return err
			}
			x := d.ranges.next()
			x.Low, x.High = f1, f2
			w := d.rangeW.next()
			w.Range = x
			m.FieldMatchType = w
		case 7:
			f1, _, _, err := bytesFields(val, oneBytes)
			if err != nil {
				return err
			}
			x := d.opts.next()
			x.Value = f1
			w := d.optW.next()
			w.Optional = x
			m.FieldMatchType = w
		default:
			return errSlowPath
		}
	}
	return nil
}

func (d *decoder) tableAction(b []byte, ta *p4v1.TableAction) error {
	num, typ, _, val, rest, err := field(b)
	if err != nil || len(rest) > 0 || num != 1 || typ != protowire.BytesType {
		return errSlowPath // members, groups, action sets: rare, proto decodes them
	}
	a := d.actions.next()
	d.paramRun.begin()
	for b := val; len(b) > 0; {
		num, typ, v, pval, rest, err := field(b)
		if err != nil {
			return err
		}
		b = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			a.ActionId = uint32(v)
		case num == 4 && typ == protowire.BytesType:
			p := d.params.next()
			for pb := pval; len(pb) > 0; {
				pnum, ptyp, pv, pbytes, prest, err := field(pb)
				if err != nil {
					return err
				}
				pb = prest
				switch {
				case pnum == 2 && ptyp == protowire.VarintType:
					p.ParamId = uint32(pv)
				case pnum == 3 && ptyp == protowire.BytesType:
					p.Value = pbytes
				default:
					return errSlowPath
				}
			}
			d.paramRun.add(p)
		default:
			return errSlowPath
		}
	}
	a.Params = d.paramRun.end()
	w := d.actW.next()
	w.Action = a
	ta.Type = w
	return nil
}
