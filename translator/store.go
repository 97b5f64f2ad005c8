package translator

// tableState is the shadow state of one table.
type tableState struct {
	table *Table
	// entries holds the non-default entries by store key.
	entries map[string]*Entry
	// deflt is the current default entry; never nil.
	deflt *Entry
}

// store is the shadow copy of every table: what Reads return and what
// Writes are checked against. The Device's mutex guards it.
type store struct {
	tables map[uint32]*tableState
}

func newStore(p *Pipeline) *store {
	s := &store{tables: make(map[uint32]*tableState, len(p.Tables))}
	for _, t := range p.TableOrder {
		s.tables[t.ID] = &tableState{table: t, entries: map[string]*Entry{}, deflt: initialDefaultEntry(t)}
	}
	return s
}

// initialDefaultEntry is a table's default entry as the P4 program sets it.
func initialDefaultEntry(t *Table) *Entry {
	return &Entry{Table: t, IsDefault: true, Action: t.InitialDefault, proto: defaultProto(t, t.InitialDefault)}
}

// undo restores one store slot to what it held before a staged op.
type undo struct {
	ts   *tableState
	key  string
	prev *Entry // nil: the slot was empty
	dflt bool   // the slot is the default entry
}

func (u undo) revert() {
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
