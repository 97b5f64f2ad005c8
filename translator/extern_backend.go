package translator

import "strings"

// ExternSet is a set of P4 extern kinds a backend realises.
type ExternSet uint16

// The extern kinds. A backend that lacks one makes every Write of that kind
// (and every Read that needs the datapath's values) fail with ErrUnsupported
// (UNIMPLEMENTED) when the pipeline uses it; the pipeline itself is accepted,
// so controllers can use the rest (P4Runtime §9.2.3: a server without
// member/group programming answers UNIMPLEMENTED for every such message).
const (
	// ExternActionProfiles: members, groups and entries of indirect tables
	// (member id, group id and one-shot action sets).
	ExternActionProfiles ExternSet = 1 << iota
	// ExternCounters: indexed counters (CounterEntry).
	ExternCounters
	// ExternDirectCounters: direct counters (DirectCounterEntry and
	// TableEntry.counter_data).
	ExternDirectCounters
	// ExternMeters: indexed meters (MeterEntry).
	ExternMeters
	// ExternDirectMeters: direct meters (DirectMeterEntry and
	// TableEntry.meter_config).
	ExternDirectMeters
	// ExternRegisters: RegisterEntry.
	ExternRegisters
	// ExternMulticast: MulticastGroupEntry.
	ExternMulticast
	// ExternClone: CloneSessionEntry.
	ExternClone
	// ExternBackupReplicas: Replica.backup_replicas of multicast groups
	// (P4Runtime v1.5; optional per §9.5.1).
	ExternBackupReplicas
	// ExternValueSets: ValueSetEntry.
	ExternValueSets

	// AllExterns is every kind.
	AllExterns = ExternValueSets<<1 - 1
)

var externNames = [...]string{
	"action profiles", "counters", "direct counters", "meters", "direct meters",
	"registers", "multicast groups", "clone sessions", "backup replicas", "value sets",
}

func (s ExternSet) String() string {
	var names []string
	for i, n := range externNames {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// ExternOpKind is the kind of an extern operation.
type ExternOpKind uint8

const (
	// ExtInsertMember adds Member to its action profile.
	ExtInsertMember ExternOpKind = iota
	// ExtModifyMember replaces PrevMember with Member (same id): every
	// group and entry using the member now runs Member.Action.
	ExtModifyMember
	// ExtDeleteMember removes Member (no group or entry uses it).
	ExtDeleteMember
	// ExtInsertGroup adds Group to its action selector.
	ExtInsertGroup
	// ExtModifyGroup replaces PrevGroup's member set with Group's.
	ExtModifyGroup
	// ExtDeleteGroup removes Group (no entry uses it).
	ExtDeleteGroup
	// ExtWriteCounter sets cells of an indexed counter (Counter).
	ExtWriteCounter
	// ExtWriteDirectCounter sets the direct counter cell of Entry to
	// Entry.Direct.Counter (0 when Direct is nil).
	ExtWriteDirectCounter
	// ExtWriteMeter configures cells of an indexed meter (Meter).
	ExtWriteMeter
	// ExtWriteDirectMeter configures the direct meter cell of Entry with
	// Entry.Direct.Meter (nil: the default, every packet GREEN).
	ExtWriteDirectMeter
	// ExtWriteRegister sets cells of a register (Register).
	ExtWriteRegister
	// ExtInsertMulticast adds Multicast.
	ExtInsertMulticast
	// ExtModifyMulticast replaces PrevMulticast's replicas with
	// Multicast's.
	ExtModifyMulticast
	// ExtDeleteMulticast removes Multicast.
	ExtDeleteMulticast
	// ExtInsertClone adds Clone.
	ExtInsertClone
	// ExtModifyClone replaces PrevClone with Clone.
	ExtModifyClone
	// ExtDeleteClone removes Clone.
	ExtDeleteClone
	// ExtWriteValueSet replaces the members of a parser value set
	// (ValueSet).
	ExtWriteValueSet
)

var externOpNames = [...]string{
	"insert-member", "modify-member", "delete-member",
	"insert-group", "modify-group", "delete-group",
	"write-counter", "write-direct-counter", "write-meter", "write-direct-meter", "write-register",
	"insert-multicast", "modify-multicast", "delete-multicast",
	"insert-clone", "modify-clone", "delete-clone",
	"write-value-set",
}

func (k ExternOpKind) String() string {
	if int(k) < len(externOpNames) {
		return externOpNames[k]
	}
	return "extern-op?"
}

// ExternOp is one change to an extern for a backend to apply. Kind says
// which fields are set; everything it points to is immutable.
type ExternOp struct {
	Kind ExternOpKind
	// Member and PrevMember: member ops (PrevMember is the version a
	// modify replaces).
	Member, PrevMember *Member
	// Group and PrevGroup: group ops.
	Group, PrevGroup *Group
	// Counter: ExtWriteCounter.
	Counter *CounterWrite
	// Meter: ExtWriteMeter.
	Meter *MeterWrite
	// Register: ExtWriteRegister.
	Register *RegisterWrite
	// Entry and PrevEntry: direct counter and meter writes. Entry is the
	// new version of the table entry (same key as PrevEntry, the version
	// it replaces; only Direct differs).
	Entry, PrevEntry *Entry
	// Multicast and PrevMulticast: multicast group ops.
	Multicast, PrevMulticast *MulticastGroup
	// Clone and PrevClone: clone session ops.
	Clone, PrevClone *CloneSession
	// ValueSet: ExtWriteValueSet.
	ValueSet *ValueSetWrite
}

// ExternBackend is a Backend that realises P4 externs. The Device feeds it
// extern ops in the same transactional flow as table ops: stage in the
// store, hand to the backend in update order (Apply for table ops,
// ApplyExterns for extern ops, alternating as the batch requires), undo on
// failure.
//
// Counters and registers are data plane volatile (P4Runtime §8.4.1): a Read
// asks the backend for their live values, summed over CPUs where the
// datapath counts per CPU.
type ExternBackend interface {
	Backend
	// Externs returns the extern kinds the backend realises. It must not
	// change over the backend's life.
	Externs() ExternSet
	// ApplyExterns performs ops in order, with Apply's contract: it stops
	// at the first failure and returns how many ops took effect; ops[n]
	// had no effect; it must not keep ops (it may keep what they point
	// to).
	ApplyExterns(ops []ExternOp) (n int, err error)
	// ReadCounters sets each cell's Data to the cell's live value. The
	// Device fills Data with the value last written before the call, so
	// a backend without a dataplane may leave it. Reads are serialised
	// with each other and never run during Apply or ApplyExterns.
	ReadCounters(cells []CounterCell) error
	// ReadRegisters sets each cell's Value to the cell's live value, like
	// ReadCounters.
	ReadRegisters(cells []RegisterCell) error
}

// Step is one change of a batch: a table op or an extern op.
type Step struct {
	// Op is set for a table op.
	Op *Op
	// Extern is set for an extern op.
	Extern *ExternOp
}

// AtomicExternBackend is an ExternBackend that can make a batch mixing
// table and extern changes visible to the dataplane at once
// (DATAPLANE_ATOMIC). A DATAPLANE_ATOMIC batch with extern changes on a
// backend without it answers UNIMPLEMENTED.
type AtomicExternBackend interface {
	ExternBackend
	AtomicBackend
	// ApplyAtomicSteps applies every step, in order, or none.
	ApplyAtomicSteps(steps []Step) error
}

// CounterCell is a counter cell a Read needs the live value of.
type CounterCell struct {
	// Counter is the indexed or direct counter.
	Counter *Counter
	// Index is the cell of an indexed counter.
	Index int64
	// Entry is the table entry of a direct counter cell.
	Entry *Entry
	// Data is the cell's value.
	Data CounterData
}

// RegisterCell is a register cell a Read needs the live value of.
type RegisterCell struct {
	Register *Register
	Index    int64
	// Value is the cell's value: big-endian, Register.Bytes() long (the
	// Device takes the low Register.Bits bits and canonicalises them).
	Value []byte
}

// The control-plane-only backend realises every extern: there is no
// dataplane, so counters and registers hold the value last written (nothing
// counts packets) and ReadCounters and ReadRegisters leave the Device's
// values as they are.
var _ AtomicExternBackend = noneBackend{}

func (noneBackend) Externs() ExternSet                       { return AllExterns }
func (noneBackend) ApplyExterns(ops []ExternOp) (int, error) { return len(ops), nil }
func (noneBackend) ReadCounters([]CounterCell) error         { return nil }
func (noneBackend) ReadRegisters([]RegisterCell) error       { return nil }
func (noneBackend) ApplyAtomicSteps([]Step) error            { return nil }

// inverse returns the ops that undo x in a backend (a rollback after x took
// effect). Array writes restore the values the store held before; for a
// datapath that counts, that is the last written value, not the live one.
func (x *ExternOp) inverse() []ExternOp {
	switch x.Kind {
	case ExtInsertMember:
		return []ExternOp{{Kind: ExtDeleteMember, Member: x.Member}}
	case ExtDeleteMember:
		return []ExternOp{{Kind: ExtInsertMember, Member: x.Member}}
	case ExtModifyMember:
		return []ExternOp{{Kind: ExtModifyMember, Member: x.PrevMember, PrevMember: x.Member}}
	case ExtInsertGroup:
		return []ExternOp{{Kind: ExtDeleteGroup, Group: x.Group}}
	case ExtDeleteGroup:
		return []ExternOp{{Kind: ExtInsertGroup, Group: x.Group}}
	case ExtModifyGroup:
		return []ExternOp{{Kind: ExtModifyGroup, Group: x.PrevGroup, PrevGroup: x.Group}}
	case ExtWriteDirectCounter, ExtWriteDirectMeter:
		return []ExternOp{{Kind: x.Kind, Entry: x.PrevEntry, PrevEntry: x.Entry}}
	case ExtInsertMulticast:
		return []ExternOp{{Kind: ExtDeleteMulticast, Multicast: x.Multicast}}
	case ExtDeleteMulticast:
		return []ExternOp{{Kind: ExtInsertMulticast, Multicast: x.Multicast}}
	case ExtModifyMulticast:
		return []ExternOp{{Kind: ExtModifyMulticast, Multicast: x.PrevMulticast, PrevMulticast: x.Multicast}}
	case ExtInsertClone:
		return []ExternOp{{Kind: ExtDeleteClone, Clone: x.Clone}}
	case ExtDeleteClone:
		return []ExternOp{{Kind: ExtInsertClone, Clone: x.Clone}}
	case ExtModifyClone:
		return []ExternOp{{Kind: ExtModifyClone, Clone: x.PrevClone, PrevClone: x.Clone}}
	case ExtWriteValueSet:
		v := x.ValueSet
		return []ExternOp{{Kind: ExtWriteValueSet, ValueSet: &ValueSetWrite{ValueSet: v.ValueSet, Members: v.Prev, Prev: v.Members}}}
	case ExtWriteCounter:
		var out []ExternOp
		c := x.Counter
		inverseCells(c.prev, c.Index, func(i int64, v CounterData) {
			out = append(out, ExternOp{Kind: ExtWriteCounter, Counter: &CounterWrite{Counter: c.Counter, Index: i, Data: v}})
		})
		return out
	case ExtWriteMeter:
		var out []ExternOp
		m := x.Meter
		inverseCells(m.prev, m.Index, func(i int64, v *MeterConfig) {
			out = append(out, ExternOp{Kind: ExtWriteMeter, Meter: &MeterWrite{Meter: m.Meter, Index: i, Config: v}})
		})
		return out
	case ExtWriteRegister:
		var out []ExternOp
		r := x.Register
		inverseCells(r.prev, r.Index, func(i int64, v []byte) {
			if v == nil {
				v = zeroCell
			}
			out = append(out, ExternOp{Kind: ExtWriteRegister, Register: &RegisterWrite{Register: r.Register, Index: i, Value: v}})
		})
		return out
	}
	return nil
}
