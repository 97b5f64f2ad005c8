package tcbackend

import (
	"github.com/p4tcd/p4tcd/translator"
)

// P4TC priorities. A non-exact P4TC table wants a priority per entry,
// unique in the table (the kernel allocates it from an IDA), and its ternary
// lookup prefers the smallest; P4Runtime priorities are positive, may
// repeat, and prefer the largest. tcbackend maps P4Runtime priority p
// (1..maxP4RTPrio) to the band of 256 P4TC priorities
// ((maxP4RTPrio+1-p) << 8) + slot, slot 0..255: a higher p lands in a lower
// band, and up to 256 entries of a table may share a P4Runtime priority.
// The largest value is 2^31-1, the largest an IDA hands out. LPM tables
// order entries by prefix length, not priority, and get any free value.
const (
	prioSlotBits = 8
	prioSlots    = 1 << prioSlotBits
	// maxP4RTPrio is the largest P4Runtime priority p4tcd can map.
	maxP4RTPrio = 1<<23 - 1
	maxP4TCPrio = 1<<31 - 1
)

// prioBand returns the first P4TC priority of P4Runtime priority p.
func prioBand(p int32) uint32 { return uint32(maxP4RTPrio+1-p) << prioSlotBits }

// p4rtPrio inverts prioBand.
func p4rtPrio(prio uint32) int32 { return maxP4RTPrio + 1 - int32(prio>>prioSlotBits) }

// tableState is what tcbackend remembers of a table between requests: the
// P4TC priority of each entry, and the timer profiles its idle timeouts
// use. Keys are the entry's identity in P4Runtime (key, mask, priority).
type tableState struct {
	prio map[string]uint32
	used map[uint32]bool
	next uint32 // next LPM priority to try

	// profiles[i] is the aging of timer profile i and refs[i] how many
	// entries use it; nil when the table has no idle timeouts.
	profiles []uint64
	refs     []int
	aging    map[string]uint64 // entry → aging ms
}

func newTableState(a *abiTable, tp *tablePlan) *tableState {
	s := &tableState{prio: map[string]uint32{}, used: map[uint32]bool{}, next: 1, aging: map[string]uint64{}}
	if n := tp.tt.timerProfiles; n > 0 {
		// p4tc_tmpl_timer_profiles_init: profile i starts at
		// (i+1) * P4TC_TIMER_PROFILE_ZERO_AGING_MS.
		s.profiles = make([]uint64, n)
		s.refs = make([]int, n)
		for i := range s.profiles {
			s.profiles[i] = uint64(i+1) * a.profileAgingStep
		}
	}
	return s
}

// entryID is an entry's identity in its table, in P4TC terms: its key and
// mask blobs and, in ternary tables, its priority band (the P4Runtime
// priority). It can be computed from a translator entry (specID) and from
// an entry the kernel reports (reportedID), which lets events about entries
// the kernel removed free what they held.
func entryID(tp *tablePlan, key, mask []byte, band uint32) string {
	b := make([]byte, 0, len(key)+len(mask)+4)
	b = append(b, key...)
	b = append(b, mask...)
	return string(append(b, byte(band>>24), byte(band>>16), byte(band>>8), byte(band)))
}

func specID(tp *tablePlan, e *translator.Entry, key, mask []byte) string {
	var band uint32
	if tp.tt.typ == tp.owner.a.tableTypeTernary {
		if r := rankOf(tp, e); r >= 1 && r <= maxP4RTPrio {
			band = prioBand(r) >> prioSlotBits
		}
	}
	return entryID(tp, key, mask, band)
}

func reportedID(tp *tablePlan, e *Entry) string {
	var band uint32
	if tp.tt.typ == tp.owner.a.tableTypeTernary {
		band = e.Prio >> prioSlotBits
	}
	mask := e.Mask
	if tp.exact() {
		mask = make([]byte, len(e.Key))
		for i := range mask {
			mask[i] = 0xff
		}
	}
	return entryID(tp, e.Key, mask, band)
}

// rankOf is the P4Runtime priority an entry is ordered by: its priority,
// or for a table with several LPM fields and no priorities, one more than
// its total prefix length (longer prefixes win).
func rankOf(tp *tablePlan, e *translator.Entry) int32 {
	if tp.t.NeedsPriority() {
		return e.Priority
	}
	n := int32(1)
	for _, m := range e.Match {
		n += int32(m.PrefixLen)
	}
	return n
}

// reservePrio picks a free P4TC priority for a new entry; it is taken until
// releasePrio. Exact tables have none (0).
func (s *tableState) reservePrio(tp *tablePlan, e *translator.Entry) (uint32, error) {
	if tp.exact() {
		return 0, nil
	}
	if tp.tt.typ == tp.owner.a.tableTypeLPM {
		for i := 0; i <= len(s.used); i++ {
			p := s.next
			s.next++
			if s.next > maxP4TCPrio {
				s.next = 1
			}
			if !s.used[p] {
				s.used[p] = true
				return p, nil
			}
		}
		return 0, translator.Errorf(translator.ErrFull, "table %s: no P4TC priority left", tp.describe())
	}
	r := rankOf(tp, e)
	if r < 1 || r > maxP4RTPrio {
		return 0, translator.Errorf(translator.ErrOutOfRange, "table %s: priority %d: p4tcd maps P4Runtime priorities 1..%d onto P4TC", tp.describe(), r, maxP4RTPrio)
	}
	base := prioBand(r)
	for slot := uint32(0); slot < prioSlots; slot++ {
		if p := base + slot; !s.used[p] {
			s.used[p] = true
			return p, nil
		}
	}
	return 0, translator.Errorf(translator.ErrFull, "table %s: more than %d entries with priority %d; P4TC priorities must be unique", tp.describe(), prioSlots, r)
}

// bind records the priority of an entry that exists in the kernel.
func (s *tableState) bind(id string, prio uint32) {
	if prio != 0 {
		s.prio[id] = prio
		s.used[prio] = true
	}
}

// unbind forgets an entry and frees its priority.
func (s *tableState) unbind(id string) {
	if p, ok := s.prio[id]; ok {
		delete(s.used, p)
		delete(s.prio, id)
	}
}

// releasePrio frees a reserved priority that no entry got.
func (s *tableState) releasePrio(prio uint32) {
	if prio != 0 {
		delete(s.used, prio)
	}
}

// lookupPrio returns the priority of an existing entry.
func (s *tableState) lookupPrio(tp *tablePlan, id string) (uint32, error) {
	if tp.exact() {
		return 0, nil
	}
	p, ok := s.prio[id]
	if !ok {
		return 0, translator.Errorf(translator.ErrNotFound, "table %s: tcbackend has no P4TC priority for this entry (not written by this p4tcd)", tp.describe())
	}
	return p, nil
}

// acquireProfile finds or makes a timer profile with the given aging. When
// no profile has it, the first profile other than 0 (the datapath's
// default) that no entry uses is reprogrammed: update is its id and true.
func (s *tableState) acquireProfile(tp *tablePlan, ms uint64) (update uint32, changed bool, err error) {
	if s.profiles == nil {
		return 0, false, translator.Errorf(translator.ErrInvalid, "table %s has no idle timeout support", tp.describe())
	}
	for i, a := range s.profiles {
		if a == ms {
			s.refs[i]++
			return 0, false, nil
		}
	}
	for i := 1; i < len(s.profiles); i++ {
		if s.refs[i] == 0 {
			s.profiles[i] = ms
			s.refs[i] = 1
			return uint32(i), true, nil
		}
	}
	return 0, false, translator.Errorf(translator.ErrFull, "table %s: every P4TC timer profile is in use by another idle timeout; P4TC allows %d distinct timeouts per table", tp.describe(), len(s.profiles)-1)
}

// forget drops an entry the kernel removed by itself (aged out, deleted by
// the datapath): its priority and timer profile are free again.
func (s *tableState) forget(id string) {
	s.unbind(id)
	if ms, ok := s.aging[id]; ok {
		s.releaseProfile(ms)
		delete(s.aging, id)
	}
}

// releaseProfile drops one use of the profile with the given aging.
func (s *tableState) releaseProfile(ms uint64) {
	for i, a := range s.profiles {
		if a == ms && s.refs[i] > 0 {
			s.refs[i]--
			return
		}
	}
}
