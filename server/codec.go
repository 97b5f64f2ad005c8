package server

import (
	"errors"
	"slices"
	"sync"
	"unicode/utf8"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/translator"
)

// codec is the server's gRPC codec: protobuf, with a decoder of its own for
// the shape of WriteRequest that carries table entries. Decoding a
// thousand-entry batch with the generic decoder allocates ten messages per
// entry and was the largest share of the write path's CPU; this one
// allocates them in slabs, and aliases bytes fields into one copy of the
// request. Anything it does not know — another entity, direct resources,
// unknown fields, a repeated singular message — falls back to
// proto.Unmarshal, so the result is always what proto.Unmarshal gives
// (FuzzWriteRequestCodec checks it), with one exception: the table
// entry of a plain update (translator.PlainTableEntry: the shape nearly
// every write has) is not decoded into a tree. Its Update has a nil
// Entity, the entry's encoding is in request.wires and its parse in
// request.views, which the translator checks straight into its own form:
// building the entry's tree, walking it and clearing it afterwards cost
// a third of a Write's CPU.
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
	if !heldRoom() {
		// Nowhere to keep the wires and views the Write would need
		// (heldParts): decode the request the generic way at once.
		return c.fallback.Unmarshal(data, v)
	}
	r := requests.Get().(*request)
	// A copy of our own: bytes fields may alias it.
	b := r.buf[:0]
	if n := data.Len(); cap(b) < n {
		b = make([]byte, 0, n)
	}
	for _, d := range data {
		b = append(b, d.ReadOnlyData()...)
	}
	r.buf = b
	// A request that cannot be held (the map filled up since heldRoom)
	// must be decoded whole: the table entries left undecoded are only
	// in r (heldParts).
	if err := decodeWriteRequest(b, wr, r); err == nil && r.hold(wr) {
		return nil
	}
	proto.Reset(wr)
	err := proto.Unmarshal(b, wr) // copies what it keeps
	r.reuse()
	return err
}

// errSlowPath says the fast decoder does not handle the input.
var errSlowPath = errors.New("use proto.Unmarshal")

// A request is the memory a decoded WriteRequest lives in: slabs (temp)
// and the copy of the request (buf) that, after Server.Write calls
// release, serve the next request. Nothing of it is left behind once the
// Write is over: Server.Write hands the translator each table entry's
// encoding (wires) with it, and the translator keeps a copy of that — or
// of the entry — rather than the decoded tree. Keeping the trees of
// INSERTs made the decoded request most of the write path's garbage.
// The updates of plain table entries have no tree: their wire is all
// there is of them.
type request struct {
	temp    *decoder
	buf     []byte
	updates []*p4v1.Update
	// wires holds, for each update, the encoding of its table entry
	// (inside buf), or nil when its entity is not exactly one table
	// entry. An update whose Entity is nil but whose wire is not is a
	// plain table entry left undecoded.
	wires [][]byte
	// views holds, for each update left undecoded, the parse of its
	// wire; the other elements are left over. Views hold no pointers:
	// nothing to clear.
	views []translator.EntryView
}

// requests holds requests ready for reuse.
var requests = sync.Pool{New: func() any { return &request{temp: &decoder{}} }}

// held maps each WriteRequest decoded into reusable memory to that memory,
// until Server.Write is done with it. It is bounded: a WriteRequest whose
// Write never runs (an interceptor that refuses it without calling the
// handler) never returns its memory, and once maxHeld are held, new
// requests are decoded by proto.Unmarshal, without reuse and without the
// single-pass parse of plain entries.
var held struct {
	sync.Mutex
	m map[*p4v1.WriteRequest]*request
}

const maxHeld = 1024

// heldRoom reports whether held can take another request.
func heldRoom() bool {
	held.Lock()
	defer held.Unlock()
	return len(held.m) < maxHeld
}

// hold records that wr lives in r, which release gives back for reuse,
// and reports whether it could (maxHeld).
func (r *request) hold(wr *p4v1.WriteRequest) bool {
	held.Lock()
	defer held.Unlock()
	if held.m == nil {
		held.m = map[*p4v1.WriteRequest]*request{}
	}
	if len(held.m) >= maxHeld {
		return false
	}
	held.m[wr] = r
	return true
}

// heldParts returns the table entry encodings of wr's updates (see
// request.wires) and the views of those left undecoded (request.views)
// when wr lives in reusable memory, nil otherwise. Until release, wr's
// memory is only the caller's.
func heldParts(wr *p4v1.WriteRequest) ([][]byte, []translator.EntryView) {
	held.Lock()
	r := held.m[wr]
	held.Unlock()
	if r == nil {
		return nil, nil
	}
	return r.wires, r.views
}

// release makes the memory wr was decoded into reusable: wr, everything
// decoded with it and its wires must not be used afterwards.
func release(wr *p4v1.WriteRequest) {
	held.Lock()
	r := held.m[wr]
	delete(held.m, wr)
	held.Unlock()
	if r != nil {
		r.reuse()
	}
}

// maxReused and maxReusedBytes bound the updates and the size of a
// request whose memory is reused: the pool keeps what it holds until the
// GC empties it (rarely, under a heap floor), and a rare giant request
// should not stay that long.
const (
	maxReused      = 1 << 16
	maxReusedBytes = 16 << 20
)

// reuse empties r and returns it to the pool.
func (r *request) reuse() {
	if cap(r.updates) > maxReused || cap(r.buf) > maxReusedBytes {
		return
	}
	r.temp.reset()
	clear(r.updates)
	r.updates = r.updates[:0]
	clear(r.wires)
	r.wires = r.wires[:0]
	requests.Put(r)
}

// slabChunk is the number of values a slab allocates at once.
const slabChunk = 64

// slab hands out zeroed values allocated in chunks; reset makes them all
// available again.
type slab[T any] struct {
	buf    []T   // what is left of the current chunk
	chunks [][]T // every chunk, in the order handed out
	used   int   // chunks handed out, the current one included
}

func (s *slab[T]) next() *T {
	if len(s.buf) == 0 {
		if s.used == len(s.chunks) {
			s.chunks = append(s.chunks, make([]T, slabChunk))
		}
		s.buf = s.chunks[s.used]
		s.used++
	}
	v := &s.buf[0]
	s.buf = s.buf[1:]
	return v
}

// reset zeroes the values handed out and makes them available again.
func (s *slab[T]) reset() {
	for _, c := range s.chunks[:s.used] {
		clear(c)
	}
	s.buf, s.used = nil, 0
}

// run hands out the elements of repeated fields (a table entry's matches,
// an action's params) as slices carved from shared chunks: growing each
// slice by append cost allocations per entry. A run is built with add and
// taken with end; a run interrupted by a fallback to proto.Unmarshal is
// abandoned with begin.
type run[T any] struct {
	buf    []*T
	start  int
	chunks [][]*T // every chunk, in the order used
	used   int    // chunks used, the current one included
}

// begin starts a run, abandoning any unfinished one.
func (r *run[T]) begin() { r.start = len(r.buf) }

// add appends v to the current run.
func (r *run[T]) add(v *T) {
	if len(r.buf) == cap(r.buf) {
		// A new chunk, with the run so far moved into it: slices taken
		// before keep the old chunk.
		cur := r.buf[r.start:]
		if r.used == len(r.chunks) || cap(r.chunks[r.used]) <= len(cur) {
			r.chunks = append(r.chunks[:r.used], make([]*T, 0, max(256, 2*len(cur))))
		}
		next := r.chunks[r.used][:0]
		r.used++
		r.buf, r.start = append(next, cur...), 0
	}
	r.buf = append(r.buf, v)
}

// reset empties every chunk and makes them available again.
func (r *run[T]) reset() {
	for _, c := range r.chunks[:r.used] {
		clear(c[:cap(c)])
	}
	r.buf, r.start, r.used = nil, 0, 0
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

// reset makes every value d handed out available again, zeroed.
func (d *decoder) reset() {
	d.updates.reset()
	d.entities.reset()
	d.tes.reset()
	d.teWraps.reset()
	d.matches.reset()
	d.exacts.reset()
	d.exactW.reset()
	d.lpms.reset()
	d.lpmW.reset()
	d.terns.reset()
	d.ternW.reset()
	d.ranges.reset()
	d.rangeW.reset()
	d.opts.reset()
	d.optW.reset()
	d.tas.reset()
	d.actions.reset()
	d.actW.reset()
	d.params.reset()
	d.matchRun.reset()
	d.paramRun.reset()
}

// field reads one field's header and, for length-delimited fields, its
// bytes; it returns the rest of b.
func field(b []byte) (num protowire.Number, typ protowire.Type, v uint64, val []byte, rest []byte, err error) {
	// Almost every field of a table entry has a one-byte tag and a
	// one-byte value or length: read those inline.
	if len(b) >= 2 && b[0] < 0x80 && b[0] >= 8 && b[1] < 0x80 {
		num, typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch typ {
		case protowire.VarintType:
			return num, typ, uint64(b[1]), nil, b[2:], nil
		case protowire.BytesType:
			if n := 2 + int(b[1]); n <= len(b) {
				return num, typ, 0, b[2:n], b[n:], nil
			}
		}
	}
	return fieldSlow(b)
}

// fieldSlow is field for multi-byte tags, values and lengths.
func fieldSlow(b []byte) (num protowire.Number, typ protowire.Type, v uint64, val []byte, rest []byte, err error) {
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

func decodeWriteRequest(b []byte, wr *p4v1.WriteRequest, r *request) error {
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
	wr.Updates = slices.Grow(r.updates[:0], n)
	r.updates = wr.Updates
	r.wires = slices.Grow(r.wires[:0], n)
	r.views = slices.Grow(r.views[:0], n)[:n]
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
			u, wire, err := r.update(val, &r.views[len(wr.Updates)])
			if err != nil {
				return err
			}
			wr.Updates = append(wr.Updates, u)
			r.wires = append(r.wires, wire)
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

// update decodes an Update, and returns with it the encoding of its
// table entry (nil when its entity is not exactly one). A plain table
// entry is parsed into view and left undecoded.
func (r *request) update(b []byte, view *translator.EntryView) (*p4v1.Update, []byte, error) {
	var (
		typ    p4v1.Update_Type
		entity []byte
		seen   bool
	)
	for len(b) > 0 {
		num, ftyp, v, val, rest, err := field(b)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		switch {
		case num == 1 && ftyp == protowire.VarintType:
			typ = p4v1.Update_Type(int32(v))
		case num == 2 && ftyp == protowire.BytesType:
			if seen {
				return nil, nil, errSlowPath // proto merges a repeated message
			}
			seen, entity = true, val
		default:
			return nil, nil, errSlowPath
		}
	}
	// Nothing of the update is kept (the translator keeps a copy of a
	// table entry's wire, or of the entry; proto decodes other entities
	// into memory of their own): it all goes to temp.
	u := r.temp.updates.next()
	u.Type = typ
	var wire []byte
	if wire = plainEntry(entity, view); wire != nil {
		return u, wire, nil // no Entity: the wire is the entry
	}
	if seen {
		e := r.temp.entities.next()
		var err error
		if wire, err = r.temp.entity(entity, e); err != nil {
			return nil, nil, err
		}
		u.Entity = e
	}
	return u, wire, nil
}

// plainEntry returns the table entry of the encoding of an Entity that
// is exactly one plain table entry, parsed into view, nil otherwise.
func plainEntry(b []byte, view *translator.EntryView) []byte {
	num, typ, _, val, rest, err := field(b)
	if err != nil || len(rest) > 0 || num != 2 || typ != protowire.BytesType || !view.Parse(val) {
		return nil
	}
	return val
}

// entity decodes an Entity into d, and returns its table entry's
// encoding when it is exactly one table entry.
func (d *decoder) entity(b []byte, e *p4v1.Entity) ([]byte, error) {
	num, typ, _, val, rest, err := field(b)
	if err != nil || len(rest) > 0 || num != 2 || typ != protowire.BytesType {
		// Not exactly one table entry: let proto decode this entity.
		if len(b) == 0 {
			return nil, nil
		}
		return nil, proto.Unmarshal(b, e)
	}
	te := d.tes.next()
	if err := d.tableEntry(val, te); err != nil {
		if !errors.Is(err, errSlowPath) {
			return nil, err
		}
		proto.Reset(te)
		if err := proto.Unmarshal(val, te); err != nil {
			return nil, err
		}
	}
	w := d.teWraps.next()
	w.TableEntry = te
	e.Entity = w
	return val, nil
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
