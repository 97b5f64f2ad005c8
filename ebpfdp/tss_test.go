package ebpfdp

import (
	"testing"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/translator"
)

// classifyPlan is the plan of the kinds pipeline's ternary table
// (proto optional, flags ternary bit3, dport range be16).
func classifyPlan(t *testing.T) *tablePlan {
	t.Helper()
	c, err := p4test.Compile(kindsP4Info, kindsJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := plan(c)
	if err != nil {
		t.Fatal(err)
	}
	return plans[4]
}

// classifyEntry builds an entry: proto (0 = don't care), flags/mask,
// dport range (lo > hi = don't care).
func classifyEntry(p *tablePlan, prio int32, proto, flags, fmask byte, lo, hi uint16, mark byte) *translator.Entry {
	m := make([]translator.FieldMatch, 3)
	if proto != 0 {
		m[0] = translator.FieldMatch{Set: true, Value: []byte{proto}}
	}
	if fmask != 0 {
		m[1] = translator.FieldMatch{Set: true, Value: []byte{flags}, Mask: []byte{fmask}}
	}
	if lo <= hi {
		m[2] = translator.FieldMatch{Set: true, Value: canonicalBytes(u16(lo)), High: canonicalBytes(u16(hi))}
	}
	act := p.table.Actions[aMark].Action
	return &translator.Entry{Table: p.table, Match: m, Priority: prio,
		Action: &translator.ActionCall{Action: act, Params: [][]byte{{mark}}}}
}

func mustEntry(t *testing.T, s *tss, e *translator.Entry) *tssEntry {
	t.Helper()
	te, err := s.newEntry(e, newPortMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	return te
}

func TestTSSWinnerAndPromotion(t *testing.T) {
	p := classifyPlan(t)
	s := newTSS(p)
	lo := mustEntry(t, s, classifyEntry(p, 10, 6, 0, 0, 1, 0, 1))
	hi := mustEntry(t, s, classifyEntry(p, 20, 6, 0, 0, 1, 0, 2))
	if ch := s.insert(lo); len(ch) != 1 {
		t.Fatalf("insert lo: %d changes, want 1", len(ch))
	}
	ch := s.insert(hi)
	if len(ch) != 1 || string(ch[0].val) != string(hi.value) {
		t.Fatalf("insert hi over lo: changes %v", ch)
	}
	if len(s.masks) != 1 || len(s.slots) != 1 {
		t.Fatalf("%d masks %d slots, want 1 and 1", len(s.masks), len(s.slots))
	}
	// The loser going changes nothing in the map.
	lo2 := mustEntry(t, s, classifyEntry(p, 5, 6, 0, 0, 1, 0, 3))
	if ch := s.insert(lo2); len(ch) != 0 {
		t.Fatalf("insert a loser: %d changes, want 0", len(ch))
	}
	if ch := s.remove(lo2); len(ch) != 0 {
		t.Fatalf("remove a loser: %d changes", len(ch))
	}
	ch = s.remove(hi)
	if len(ch) != 1 || string(ch[0].val) != string(lo.value) {
		t.Fatalf("remove the winner: changes %v, want lo promoted", ch)
	}
	if m := s.masks[string(lo.keys[0].mask)]; m.max != 10 {
		t.Errorf("mask top priority %d after the 20 went, want 10", m.max)
	}
	ch = s.remove(lo)
	if len(ch) != 1 || ch[0].val != nil {
		t.Fatalf("remove the last: changes %v, want a delete", ch)
	}
	if len(s.masks) != 0 || len(s.slots) != 0 || len(s.entries) != 0 {
		t.Errorf("state not empty: %d masks %d slots %d entries", len(s.masks), len(s.slots), len(s.entries))
	}
}

func TestTSSTieKeepsOlder(t *testing.T) {
	p := classifyPlan(t)
	s := newTSS(p)
	a := mustEntry(t, s, classifyEntry(p, 7, 0, 2, 2, 1, 0, 1))
	b := mustEntry(t, s, classifyEntry(p, 7, 0, 2, 2, 1, 0, 2))
	b.id[0] ^= 1 // a different entry with the same masked key and priority
	s.insert(a)
	if ch := s.insert(b); len(ch) != 0 {
		t.Errorf("equal priority: the newer entry displaced the older")
	}
	if ch := s.remove(a); len(ch) != 1 || string(ch[0].val) != string(b.value) {
		t.Errorf("older removed: changes %v, want the newer", ch)
	}
}

func TestTSSRangeMasksAndList(t *testing.T) {
	p := classifyPlan(t)
	s := newTSS(p)
	r := mustEntry(t, s, classifyEntry(p, 5, 0, 0, 0, 1000, 2000, 1))
	n := len(expandRange(1000, 2000, 16))
	if len(r.keys) != n {
		t.Fatalf("%d keys, want %d", len(r.keys), n)
	}
	s.insert(r)
	masks := len(s.masks)
	if masks == 0 || masks > n {
		t.Fatalf("%d masks for %d prefixes", masks, n)
	}
	f := mustEntry(t, s, classifyEntry(p, 30, 0, 4, 4, 1, 0, 2))
	s.insert(f)
	s.assignSlots()
	list := s.masklist(64)
	recs := s.parseMasklist(list)
	if len(recs) != masks+1 || recs[0].id != s.masks[string(f.keys[0].mask)].id {
		t.Fatalf("mask list %v: want %d masks, the priority-30 one first", recs, masks+1)
	}
	slots := map[uint32]bool{}
	for _, r := range recs {
		if r.slot >= uint32(masks+1) || slots[r.slot] {
			t.Fatalf("slots %v are not the first %d, once each", recs, masks+1)
		}
		slots[r.slot] = true
	}
	if s.masklist(masks) != nil {
		t.Errorf("a list over capacity rendered")
	}
	s.published = list
	if s.changed(s.masklist(64)) {
		t.Errorf("the same masks count as a change")
	}
	// Mask ids never come back; slots do.
	ids := map[uint32]bool{}
	for _, m := range s.masks {
		ids[m.id] = true
	}
	s.remove(r)
	s.remove(f)
	g := mustEntry(t, s, classifyEntry(p, 1, 17, 0, 0, 1, 0, 3))
	s.insert(g)
	s.assignSlots()
	for _, m := range s.masks {
		if ids[m.id] {
			t.Errorf("mask id %d reused", m.id)
		}
		if m.slot != 0 {
			t.Errorf("new mask in slot %d, want the freed slot 0", m.slot)
		}
	}
	// The union keeps the masks that went until they are unpublished.
	if u := s.parseMasklist(s.unionList(64)); len(u) != len(recs)+1 {
		t.Errorf("union of %d published masks and 1 new: %d", len(recs), len(u))
	}
	if !s.changed(s.masklist(64)) {
		t.Errorf("a new mask set is no change")
	}
}

func TestTernaryKeysPorts(t *testing.T) {
	c, err := p4test.Compile(kindsP4Info, kindsJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	plans, _ := plan(c)
	p := plans[1] // exact_mix: port (dev), vlan, mac
	ports := newPortMap(map[uint32]uint32{1: 41, 2: 42})
	match := []translator.FieldMatch{
		{Set: true, Value: []byte{2}}, {Set: true, Value: []byte{0x1, 0x23}}, {Set: true, Value: []byte{2, 0, 0, 0, 0, 0xaa}},
	}
	key := make([]byte, p.keySize)
	if err := p.encodeKey(key, match, ports); err != nil {
		t.Fatal(err)
	}
	if ne.Uint32(key[0:]) != 92 || ne.Uint32(key[8:]) != 42 || ne.Uint16(key[12:]) != 0x123 || key[14] != 2 || key[19] != 0xaa {
		t.Fatalf("key %x", key)
	}
	back, err := p.decodeKey(key, ports)
	if err != nil {
		t.Fatal(err)
	}
	for i := range match {
		if string(back[i].Value) != string(match[i].Value) || !back[i].Set {
			t.Errorf("field %d: %x, want %x", i, back[i].Value, match[i].Value)
		}
	}
	match[0].Value = []byte{3}
	if err := p.encodeKey(key, match, ports); err == nil {
		t.Errorf("port 3 is not a port, but encoded")
	}
}
