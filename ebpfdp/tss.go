package ebpfdp

import (
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
// with a new mask's entries. Each mask also has a slot in the datapath's
// top-priority array; slots are reused.
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
	byHandle map[uint32]*tssEntry
	nextMask uint32
	// handles is the next owner handle; the tc and XDP tiers of a table
	// share it, so that an entry placed in both has one handle and hw
	// entries never take one a tc entry has.
	handles *uint32
	// hint gives new masks the id and slot the datapath already uses for
	// them (set while a restore rebuilds the state).
	hint map[string]maskRec
	// published is the mask list value last written to the datapath.
	published []byte
	// enc writes the head of an entry's value (its action, member or
	// group, and direct cell); nil: the action only.
	enc func(e *translator.Entry, v []byte) error
}

type tssMask struct {
	id uint32
	// slot is the mask's index in the top-priority array (p4tc_t<id>_mprio),
	// noSlot until assignSlots gives it one.
	slot  uint32
	bits  []byte
	prios map[uint32]int // priority -> number of (entry, key) pairs
	max   uint32
}

const noSlot = ^uint32(0)

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
		nextMask: 1, handles: new(uint32),
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
		*s.handles++
		te.handle = *s.handles
	}
	ne.PutUint32(te.value[len(te.value)-4:], te.handle)
	var out []change
	for _, k := range te.keys {
		m := s.masks[string(k.mask)]
		if m == nil {
			m = &tssMask{id: s.nextMask, slot: noSlot, bits: k.mask, prios: map[uint32]int{}}
			if h, ok := s.hint[string(k.mask)]; ok {
				m.id, m.slot = h.id, h.slot
			} else {
				s.nextMask++
			}
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
	id, slot, max uint32
	bits          []byte
}

// assignSlots gives every mask without a slot the lowest slot no mask
// holds. A slot freed in this run may go to a new mask at once: a packet
// still walking the old list can only mistake the new mask's priority for
// that of a mask whose entries are being deleted.
func (s *tss) assignSlots() {
	used := map[uint32]bool{}
	for _, m := range s.masks {
		if m.slot != noSlot {
			used[m.slot] = true
		}
	}
	next := uint32(0)
	for _, m := range s.sortedMasks() {
		if m.slot != noSlot {
			continue
		}
		for used[next] {
			next++
		}
		m.slot = next
		used[next] = true
	}
}

// sortedMasks lists the masks by top priority, highest first (ties by
// id): the order the walk is best served by.
func (s *tss) sortedMasks() []*tssMask {
	ms := make([]*tssMask, 0, len(s.masks))
	for _, m := range s.masks {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].max != ms[j].max {
			return ms[i].max > ms[j].max
		}
		return ms[i].id < ms[j].id
	})
	return ms
}

// masklist renders the mask list value of the current state, or nil when
// the masks do not fit in capacity.
func (s *tss) masklist(capacity int) []byte {
	recs := make([]maskRec, 0, len(s.masks))
	for _, m := range s.sortedMasks() {
		recs = append(recs, maskRec{id: m.id, slot: m.slot, max: m.max, bits: m.bits})
	}
	return s.render(recs, capacity)
}

// unionList renders the current masks followed by those of the published
// list that are gone from the state, so that their entries stay visible
// until they are deleted; when that does not fit, the current masks alone.
func (s *tss) unionList(capacity int) []byte {
	recs := make([]maskRec, 0, len(s.masks))
	ids := map[uint32]bool{}
	for _, m := range s.sortedMasks() {
		recs = append(recs, maskRec{id: m.id, slot: m.slot, max: m.max, bits: m.bits})
		ids[m.id] = true
	}
	for _, r := range s.parseMasklist(s.published) {
		if !ids[r.id] {
			recs = append(recs, r)
		}
	}
	if len(recs) > capacity {
		return s.masklist(capacity)
	}
	return s.render(recs, capacity)
}

func (s *tss) render(recs []maskRec, capacity int) []byte {
	if len(recs) > capacity {
		return nil
	}
	ks := s.plan.keySize
	b := make([]byte, s.plan.masklistSize(capacity))
	ne.PutUint32(b[0:], uint32(len(recs)))
	for i, r := range recs {
		e := b[8+i*ks:]
		ne.PutUint32(e[0:], r.id)
		ne.PutUint32(e[4:], r.slot)
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
		out = append(out, maskRec{id: ne.Uint32(e), slot: ne.Uint32(e[4:]), bits: append([]byte(nil), e[8:ks]...)})
	}
	return out
}

// changed reports whether list names other masks than the published one;
// the order does not matter to the datapath's answers.
func (s *tss) changed(list []byte) bool {
	if list == nil {
		return false
	}
	a, b := s.parseMasklist(list), s.parseMasklist(s.published)
	if len(a) != len(b) {
		return true
	}
	ids := map[uint32]uint32{}
	for _, r := range b {
		ids[r.id] = r.slot
	}
	for _, r := range a {
		if slot, ok := ids[r.id]; !ok || slot != r.slot {
			return true
		}
	}
	return false
}

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
	if s.enc != nil {
		if err := s.enc(e, v); err != nil {
			return nil, err
		}
	} else if err := encodeAction(v, e.Action, flagHit, ports); err != nil {
		return nil, err
	}
	ne.PutUint32(v[len(v)-8:], s.plan.rank(e))
	return v, nil
}
