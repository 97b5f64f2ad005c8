package ebpfdp

import (
	"bytes"
	"sort"

	"github.com/p4tcd/p4tcd/translator"
)

// tss is p4tcd's view of a ternary table's tuple space: which masks are in
// use, which entries compete for each masked key, and who wins. The map
// holds only the winner of each masked key; the mask list the datapath
// walks is rebuilt from this state and published whole.
//
// Mask ids only grow (they never come back into use), so a packet still
// walking a mask list that was just replaced can never pair an old mask
// with a new mask's entries.
//
// insert and remove change the state and return the map writes that bring
// the datapath along; when a write fails, the caller undoes the state
// change (remove after insert, insert after remove) and rewrites the keys
// it touched from the state (current).
type tss struct {
	plan *tablePlan
	// masks by mask bytes (fa_key-sized).
	masks map[string]*tssMask
	// slots by full map key (header with maskid, masked key fields).
	slots map[string]*tssSlot
	// entries by side id.
	entries map[sideID]*tssEntry
	// byHandle finds entries by the owner handle in map values.
	byHandle   map[uint32]*tssEntry
	nextMask   uint32
	nextHandle uint32
	// idHint gives new masks the ids the datapath already uses for them
	// (set while a restore rebuilds the state).
	idHint map[string]uint32
	// published is the mask list value last written to the datapath.
	published []byte
}

type tssMask struct {
	id    uint32
	bits  []byte
	prios map[uint32]int // priority -> number of (entry, key) pairs
	max   uint32
}

// tssSlot is one masked key and the entries that produce it, best first.
type tssSlot struct {
	key   string
	mask  *tssMask
	cands []*tssEntry
}

// tssEntry is one controller entry of the table.
type tssEntry struct {
	id     sideID
	handle uint32
	prio   uint32
	// value is the map value this entry's slots hold when it wins.
	value []byte
	keys  []ternaryKey
	slots []*tssSlot // set by commit
}

func newTSS(p *tablePlan) *tss {
	return &tss{
		plan: p, masks: map[string]*tssMask{}, slots: map[string]*tssSlot{},
		entries: map[sideID]*tssEntry{}, byHandle: map[uint32]*tssEntry{},
		nextMask: 1, nextHandle: 1,
	}
}

// beats orders candidates: higher priority first, then older (lower
// handle) first, so that ties resolve the same way every time.
func (a *tssEntry) beats(b *tssEntry) bool {
	if a.prio != b.prio {
		return a.prio > b.prio
	}
	return a.handle < b.handle
}

// change is one write to the TSS hash: val nil deletes the key.
type change struct {
	key string
	val []byte
}

// fullKey builds a map key from a mask id and masked key fields.
func (s *tss) fullKey(maskid uint32, data []byte) string {
	k := make([]byte, s.plan.keySize)
	putHeader(k, uint32(s.plan.bits()), maskid)
	copy(k[8:], data)
	return string(k)
}

// winner is the entry a slot's key maps to.
func (sl *tssSlot) winner() *tssEntry { return sl.cands[0] }

// current is the value the map must hold for key: its winner's, or nil
// when no entry produces the key.
func (s *tss) current(key string) []byte {
	if sl := s.slots[key]; sl != nil {
		return sl.winner().value
	}
	return nil
}

// insert adds te to the state, allocating a handle and ids for new masks,
// and returns the map writes: every key te now wins.
func (s *tss) insert(te *tssEntry) []change {
	if te.handle == 0 {
		te.handle = s.nextHandle
		s.nextHandle++
	}
	ne.PutUint32(te.value[len(te.value)-4:], te.handle)
	var out []change
	for _, k := range te.keys {
		m := s.masks[string(k.mask)]
		if m == nil {
			id, ok := s.idHint[string(k.mask)]
			if !ok {
				id = s.nextMask
				s.nextMask++
			}
			m = &tssMask{id: id, bits: k.mask, prios: map[uint32]int{}}
			s.masks[string(k.mask)] = m
		}
		m.prios[te.prio]++
		m.max = max(m.max, te.prio)
		key := s.fullKey(m.id, k.data)
		sl := s.slots[key]
		if sl == nil {
			sl = &tssSlot{key: key, mask: m}
			s.slots[key] = sl
		}
		i := sort.Search(len(sl.cands), func(i int) bool { return te.beats(sl.cands[i]) })
		sl.cands = append(sl.cands, nil)
		copy(sl.cands[i+1:], sl.cands[i:])
		sl.cands[i] = te
		te.slots = append(te.slots, sl)
		if i == 0 {
			out = append(out, change{key: key, val: te.value})
		}
	}
	s.entries[te.id] = te
	s.byHandle[te.handle] = te
	return out
}

// remove takes te out of the state and returns the map writes: where it
// won, the runner-up takes its place or the key goes. Masks left without
// keys go.
func (s *tss) remove(te *tssEntry) []change {
	var out []change
	for _, sl := range te.slots {
		won := sl.winner() == te
		for i, c := range sl.cands {
			if c == te {
				sl.cands = append(sl.cands[:i], sl.cands[i+1:]...)
				break
			}
		}
		switch {
		case len(sl.cands) == 0:
			delete(s.slots, sl.key)
			out = append(out, change{key: sl.key})
		case won:
			out = append(out, change{key: sl.key, val: sl.winner().value})
		}
		m := sl.mask
		if m.prios[te.prio]--; m.prios[te.prio] == 0 {
			delete(m.prios, te.prio)
			if te.prio == m.max {
				m.max = 0
				for p := range m.prios {
					m.max = max(m.max, p)
				}
			}
		}
		if len(m.prios) == 0 {
			delete(s.masks, string(m.bits))
		}
	}
	te.slots = nil
	delete(s.entries, te.id)
	delete(s.byHandle, te.handle)
	return out
}

// modify lists the writes that give te a new value (its winning keys); the
// caller sets te.value once they are written.
func (s *tss) modify(te *tssEntry, value []byte) []change {
	ne.PutUint32(value[len(value)-4:], te.handle)
	var out []change
	for _, sl := range te.slots {
		if sl.winner() == te {
			out = append(out, change{key: sl.key, val: value})
		}
	}
	return out
}

// maskRec is one mask of a mask list.
type maskRec struct {
	id, max uint32
	bits    []byte
}

// masklist renders the mask list value of the current state: the masks
// sorted by their highest priority, highest first (ties by id), so the
// datapath can stop early. It returns nil when the masks do not fit in
// capacity.
func (s *tss) masklist(capacity int) []byte {
	recs := make([]maskRec, 0, len(s.masks))
	for _, m := range s.masks {
		recs = append(recs, maskRec{id: m.id, max: m.max, bits: m.bits})
	}
	return s.render(recs, capacity)
}

// masklistWith renders the union of the current masks and those of
// before, each with the higher of its priorities: a list that is right
// both before and after a run of changes. When the union does not fit, it
// falls back to the current masks alone.
func (s *tss) masklistWith(before []maskRec, capacity int) []byte {
	byID := map[uint32]maskRec{}
	for _, m := range s.masks {
		byID[m.id] = maskRec{id: m.id, max: m.max, bits: m.bits}
	}
	for _, r := range before {
		if cur, ok := byID[r.id]; ok {
			r.max = max(r.max, cur.max)
		}
		byID[r.id] = r
	}
	if len(byID) > capacity {
		return s.masklist(capacity)
	}
	recs := make([]maskRec, 0, len(byID))
	for _, r := range byID {
		recs = append(recs, r)
	}
	return s.render(recs, capacity)
}

func (s *tss) render(recs []maskRec, capacity int) []byte {
	if len(recs) > capacity {
		return nil
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].max != recs[j].max {
			return recs[i].max > recs[j].max
		}
		return recs[i].id < recs[j].id
	})
	ks := s.plan.keySize
	b := make([]byte, s.plan.masklistSize(capacity))
	ne.PutUint32(b[0:], uint32(len(recs)))
	for i, r := range recs {
		e := b[8+i*ks:]
		ne.PutUint32(e[0:], r.id)
		ne.PutUint32(e[4:], r.max)
		copy(e[8:ks], r.bits)
	}
	return b
}

// parseMasklist reads a mask list value.
func (s *tss) parseMasklist(b []byte) []maskRec {
	if len(b) < 8 {
		return nil
	}
	ks := s.plan.keySize
	n := int(ne.Uint32(b))
	var out []maskRec
	for i := 0; i < n && 8+(i+1)*ks <= len(b); i++ {
		e := b[8+i*ks:]
		out = append(out, maskRec{id: ne.Uint32(e), max: ne.Uint32(e[4:]), bits: append([]byte(nil), e[8:ks]...)})
	}
	return out
}

// maskMaxima is the mask list the datapath has now.
func (s *tss) maskMaxima() []maskRec { return s.parseMasklist(s.published) }

// dirty reports whether the mask list differs from the published one.
func (s *tss) dirty(list []byte) bool { return !bytes.Equal(list, s.published) }

// newEntry builds the state of a TSS entry from a translator entry.
func (s *tss) newEntry(e *translator.Entry, ports *portMap) (*tssEntry, error) {
	keys, err := s.plan.ternaryKeys(e.Match, ports)
	if err != nil {
		return nil, err
	}
	te := &tssEntry{id: entryID(e.Match, e.Priority), prio: s.plan.rank(e), keys: keys}
	te.value, err = s.value(e, ports)
	if err != nil {
		return nil, err
	}
	return te, nil
}

// value renders an entry's map value; the owner handle is filled in by
// commitInsert (and copied from the entry for modifies).
func (s *tss) value(e *translator.Entry, ports *portMap) ([]byte, error) {
	v := make([]byte, s.plan.valueSize())
	if err := encodeAction(v, e.Action, flagHit, ports); err != nil {
		return nil, err
	}
	ne.PutUint32(v[len(v)-8:], s.plan.rank(e))
	return v, nil
}
