package translator

import "time"

// OpKind is the kind of a backend operation.
type OpKind uint8

const (
	// OpInsert adds Entry. `tc p4ctrl create`.
	OpInsert OpKind = iota
	// OpModify replaces Prev with Entry (same key). `tc p4ctrl update`.
	OpModify
	// OpDelete removes Entry. `tc p4ctrl delete`.
	OpDelete
	// OpSetDefault sets the table's default action to Entry.Action (nil:
	// no action), replacing Prev (nil: the initial default).
	// `tc p4ctrl update ... default_miss_action`.
	OpSetDefault
)

func (k OpKind) String() string {
	return [...]string{"insert", "modify", "delete", "set-default"}[k]
}

// Op is one change for a backend to apply.
type Op struct {
	Kind OpKind
	// Entry is the entry inserted, the new version of a modified entry, the
	// entry deleted, or the new default entry.
	Entry *Entry
	// Prev is the entry a modify or set-default replaces.
	Prev *Entry
}

// Backend realises pipelines and entries in a datapath. The Device calls it
// with its lock held, so a Backend sees one call at a time; it must never
// call back into the Device.
//
// Errors that a P4Runtime client should see wrap the translator sentinels
// (ErrFull, ErrExists, ErrNotFound, ErrInvalid, ...), ideally through
// Errorf; anything else is reported as INTERNAL.
type Backend interface {
	// Verify checks that the backend can realise c, and changes nothing.
	// SetForwardingPipelineConfig VERIFY and the first step of every other
	// action.
	Verify(c *Config) error
	// Commit replaces whatever runs with c and no entries (forwarding state
	// cleared: VERIFY_AND_COMMIT, COMMIT).
	Commit(c *Config) error
	// Reconcile replaces the running pipeline with c and keeps forwarding
	// (RECONCILE_AND_COMMIT). entries are the controller entries to carry
	// over, already translated to c; defaults holds the non-initial
	// default entries.
	Reconcile(c *Config, entries []*Entry) error
	// Apply performs ops in order. It stops at the first failure and
	// returns how many ops took effect and that failure; ops[n] had no
	// effect. Like P4TC's runtime messages and BPF batch map operations,
	// the batch is not atomic. Apply must not keep ops after it returns
	// (the Device reuses the slice); the Entries it may keep.
	Apply(ops []Op) (n int, err error)
	// Close releases the backend.
	Close() error
}

// BatchJournal is a Backend that keeps, next to a datapath that outlives
// the daemon, a write-ahead journal of the Write in flight, so that a
// daemon killed in the middle of a batch leaves nothing of it: the next
// daemon's Restore takes back the kernel effects of a batch that was begun
// and never committed. The Device opens a batch before a Write's first
// Apply and commits it after the last one, before the Write's answer goes
// out; the Apply calls in between (the batch's ops and, after a failure,
// the ops that undo them) belong to it. A Write that got no answer has
// then either no effect at all (it was cut before the commit) or all the
// effects its answer would have reported (the daemon died between the
// commit and the answer; a client tells the two apart by reading back).
type BatchJournal interface {
	Backend
	// BeginBatch opens a batch. It costs a few stores, whatever the
	// batch's size.
	BeginBatch()
	// CommitBatch marks the open batch done: a restart keeps its effects.
	CommitBatch()
}

// AtomicBackend is a Backend that can make a batch visible to the dataplane
// all at once (P4Runtime DATAPLANE_ATOMIC). ApplyAtomic applies every op or
// none.
type AtomicBackend interface {
	Backend
	ApplyAtomic(ops []Op) error
}

// StatsBackend is a Backend that reports what only the datapath knows, for
// metrics: where controller entries live and the state of the pools of
// datapath-created entries. The server asks at every metrics scrape, so
// TableStats must be cheap and safe to call concurrently with the Device's
// calls. The eBPF datapath implements it.
type StatsBackend interface {
	Backend
	// TableStats reports each table that has datapath state.
	TableStats() []TableStats
}

// TableStats is the datapath's view of one table.
type TableStats struct {
	// Table is the P4Info table name.
	Table string
	// SW and HW count the controller entries in the software datapath and
	// in the hardware tier (an entry placed in both counts in both).
	SW, HW int
	// PoolFree is the number of free slots in the table's pool for
	// datapath-created entries (DESIGN.md decision 5); PoolSize is 0 for a
	// table without a pool.
	PoolFree, PoolSize int
	// Created is how many entries the datapath has created in the table
	// since the pipeline was committed (a counter).
	Created uint64
}

// noneBackend is the control-plane-only backend (`--datapath none`): there is
// no dataplane, so every batch is trivially atomic and the shadow store is the
// whole truth. P4Runtime conformance suites run against it anywhere. It
// realises every extern (extern_backend.go).
type noneBackend struct{}

// NewNoneBackend returns the control-plane-only backend. Its dynamic type
// also implements ExternBackend and AtomicExternBackend.
func NewNoneBackend() AtomicBackend { return noneBackend{} }

func (noneBackend) Verify(*Config) error              { return nil }
func (noneBackend) Commit(*Config) error              { return nil }
func (noneBackend) Reconcile(*Config, []*Entry) error { return nil }
func (noneBackend) Apply(ops []Op) (int, error)       { return len(ops), nil }
func (noneBackend) ApplyAtomic([]Op) error            { return nil }
func (noneBackend) Close() error                      { return nil }

// HitTracker is a Backend whose datapath records when entries are hit
// (tables with P4Info idle_timeout_behavior NOTIFY_CONTROL, and tables
// whose datapath creates entries). A Read that asks for
// time_since_last_hit gets it from SinceLastHit instead of the time since
// the entry was written.
type HitTracker interface {
	Backend
	// SinceLastHit returns how long ago the datapath last matched e (or,
	// if it never did, since e was written); ok is false when e's table
	// is not tracked or e is not in the datapath.
	SinceLastHit(e *Entry) (d time.Duration, ok bool)
}

// DatapathEntry is an entry the datapath created itself (PNA add-on-miss,
// P4TC's bpf_p4tc_entry_create_on_miss), read live from the kernel: such
// entries are never in the Device's store.
type DatapathEntry struct {
	// SavedEntry is the entry; Origin is OriginDatapath and IdleTimeoutNs
	// the timer profile's aging it is deleted after.
	SavedEntry
	// SinceLastHit is how long ago the datapath last matched the entry or
	// created it.
	SinceLastHit time.Duration
}

// DatapathCreator is a Backend whose datapath creates entries in tables
// whose device config gives them a pool (TableSettings.PoolSize). Reads
// list those entries; a controller DELETE of one removes it (Apply gets an
// OpDelete whose Entry has OriginDatapath).
type DatapathCreator interface {
	Backend
	// DatapathEntries lists the entries the datapath created in a table.
	DatapathEntries(tableID uint32) ([]DatapathEntry, error)
	// LookupDatapathEntry finds the datapath-created entry with the given
	// match in a table; nil when there is none.
	LookupDatapathEntry(tableID uint32, match []FieldMatch) (*DatapathEntry, error)
}

// IdleEntry is an entry that saw no traffic for its idle timeout: a
// controller entry for a P4Runtime IdleTimeoutNotification (reported again
// after another timeout without traffic), or, with Removed, an entry the
// datapath created and its aging deleted.
type IdleEntry struct {
	// Entry identifies the entry: Table, Match, Priority, Action and
	// IdleTimeoutNs are set. It may be the Device's stored entry or a copy
	// the backend rebuilt (after a restart).
	Entry *Entry
	// Idle is the time since the entry was last hit.
	Idle time.Duration
	// Removed: the backend deleted the entry (datapath-created entries).
	Removed bool
}
