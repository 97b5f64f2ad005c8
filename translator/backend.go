package translator

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

// AtomicBackend is a Backend that can make a batch visible to the dataplane
// all at once (P4Runtime DATAPLANE_ATOMIC). ApplyAtomic applies every op or
// none.
type AtomicBackend interface {
	Backend
	ApplyAtomic(ops []Op) error
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
