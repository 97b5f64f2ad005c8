package translator

// tableState is the shadow state of one table.
type tableState struct {
	table *Table
	// entries holds the non-default entries by store key.
	entries map[string]*Entry
	// deflt is the current default entry; never nil.
	deflt *Entry
	// prof is the state of the action profile implementing the table, or
	// nil for a direct table.
	prof *profileState
}

// store is the shadow copy of every table and extern: what Reads return and
// what Writes are checked against. The Device's mutex guards it.
type store struct {
	tables    map[uint32]*tableState
	profiles  map[uint32]*profileState
	counters  map[uint32]*counterState
	meters    map[uint32]*meterState
	registers map[uint32]*registerState
	valueSets map[uint32]*valueSetState
	digests   map[uint32]*DigestConfig
	multicast map[uint32]*MulticastGroup
	clones    map[uint32]*CloneSession
}

func newStore(p *Pipeline) *store {
	s := &store{
		tables:    make(map[uint32]*tableState, len(p.Tables)),
		profiles:  make(map[uint32]*profileState, len(p.Profiles)),
		counters:  make(map[uint32]*counterState, len(p.Counters)),
		meters:    make(map[uint32]*meterState, len(p.Meters)),
		registers: make(map[uint32]*registerState, len(p.Registers)),
		valueSets: make(map[uint32]*valueSetState, len(p.ValueSets)),
		digests:   map[uint32]*DigestConfig{},
		multicast: map[uint32]*MulticastGroup{},
		clones:    map[uint32]*CloneSession{},
	}
	for _, ap := range p.profileOrder {
		s.profiles[ap.ID] = newProfileState(ap)
	}
	for _, t := range p.TableOrder {
		ts := &tableState{table: t, entries: map[string]*Entry{}, deflt: initialDefaultEntry(t)}
		if t.Profile != nil {
			ts.prof = s.profiles[t.Profile.ID]
		}
		s.tables[t.ID] = ts
	}
	for _, c := range p.counterOrder {
		s.counters[c.ID] = &counterState{c: c}
	}
	for _, m := range p.meterOrder {
		s.meters[m.ID] = &meterState{m: m}
	}
	for _, r := range p.registerOrder {
		s.registers[r.ID] = &registerState{r: r}
	}
	for _, v := range p.valueSetOrder {
		s.valueSets[v.ID] = &valueSetState{vs: v, keys: map[string]bool{}}
	}
	return s
}

// initialDefaultEntry is a table's default entry as the P4 program sets it.
func initialDefaultEntry(t *Table) *Entry {
	return &Entry{Table: t, IsDefault: true, Action: t.InitialDefault, proto: defaultProto(t, t.InitialDefault)}
}

// undo restores a table slot to what it held before one staged op (extern
// state has its own undo: batch.exts).
type undo struct {
	ts   *tableState
	key  string
	prev *Entry // nil: the slot was empty
	dflt bool   // the slot is the default entry
	// ext is 1 + the index in batch.exts of the extern side of the staged
	// op, 0 for a table op. It sits in dflt's padding so that the staged
	// records of table entries, the bulk of writes, do not grow.
	ext int32
}

func (u undo) revert() {
	if u.ts != nil && u.ts.prof != nil && !u.dflt {
		// Entries of indirect tables hold references to members and
		// groups: move them back with the slot.
		u.ts.prof.unlink(u.ts.entries[u.key])
		u.ts.prof.link(u.prev)
	}
	switch {
	case u.ts == nil:
		// Nothing was staged (a delete of a datapath-created entry).
	case u.dflt:
		u.ts.deflt = u.prev
	case u.prev == nil:
		delete(u.ts.entries, u.key)
	default:
		u.ts.entries[u.key] = u.prev
	}
}

// count returns the number of entries in all tables (for tests and metrics).
func (s *store) count() int {
	n := 0
	for _, ts := range s.tables {
		n += len(ts.entries)
	}
	return n
}
