package translator

import (
	"fmt"
	"strings"
	"sync"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
)

// MatchKind is the match kind of a key field.
type MatchKind uint8

// Match kinds of P4Info (p4info.proto MatchField.MatchType).
const (
	MatchExact MatchKind = iota + 1
	MatchLPM
	MatchTernary
	MatchRange
	MatchOptional
)

func (k MatchKind) String() string {
	switch k {
	case MatchExact:
		return "exact"
	case MatchLPM:
		return "lpm"
	case MatchTernary:
		return "ternary"
	case MatchRange:
		return "range"
	case MatchOptional:
		return "optional"
	}
	return fmt.Sprintf("MatchKind(%d)", uint8(k))
}

// TableKind is how a table's key as a whole must be looked up; backends pick
// their data structure from it (DESIGN.md decision 4).
type TableKind uint8

const (
	// TableKeyless has no key: only a default action.
	TableKeyless TableKind = iota
	// TableExact has only exact fields.
	TableExact
	// TableLPM has exactly one LPM field and otherwise exact fields.
	TableLPM
	// TableTernary has a ternary, range or optional field (entries have
	// priorities), or more than one LPM field.
	TableTernary
)

func (k TableKind) String() string {
	return [...]string{"keyless", "exact", "lpm", "ternary"}[k]
}

// maxBitwidth bounds the width of a single field or parameter. P4 has no such
// limit; this one keeps absurd P4Info from making the server allocate absurd
// buffers. P4TC's whole key is at most 512 bits.
const maxBitwidth = 8192

// maxCells bounds the cells of an indexed counter, meter or register: a
// wildcard read lists every cell, so a P4Info must not be able to ask for
// absurd arrays.
const maxCells = 1 << 24

// maxStringBytes bounds values of sdn_string translated types.
const maxStringBytes = 1024

// MatchField is one key field of a table.
type MatchField struct {
	ID    uint32
	Name  string
	Bits  int // 0 for sdn_string fields
	Kind  MatchKind
	Index int // position in the table's key
	// Translation is the URI of a @p4runtime_translation type, or "".
	Translation string
	// IsString: the controller uses strings (sdn_string) for this field.
	IsString bool
}

// ActionRef is an action a table may use, with its scope.
type ActionRef struct {
	Action      *Action
	TableOnly   bool // @tableonly: not as a default action
	DefaultOnly bool // @defaultonly: only as the default action
}

// Table is a P4Info table, indexed.
type Table struct {
	ID     uint32
	Name   string
	Fields []*MatchField
	Kind   TableKind
	// Actions by id.
	Actions map[uint32]*ActionRef
	// ActionOrder lists the table's actions in P4Info order.
	ActionOrder []*ActionRef
	// ConstDefault is the const default action, or nil.
	ConstDefault *Action
	// InitialDefault is the default action the table starts with (and a
	// MODIFY without action resets to), or nil if there is none.
	InitialDefault *ActionCall
	// Size is the P4Info size; 0 means unspecified.
	Size int64
	// IdleTimeout: the table supports idle timeouts.
	IdleTimeout bool
	IsConst     bool
	// Profile is the action profile implementing the table, or nil.
	Profile        *ActionProfile
	DirectCounters []uint32
	DirectMeters   []uint32
	// DirectCounter and DirectMeter are the table's direct resources, or
	// nil.
	DirectCounter *Counter
	DirectMeter   *Meter
	// Layout is the P4TC key blob layout; nil when a field cannot be laid out
	// (e.g. sdn_string), which only the control-plane-only backend accepts.
	Layout *KeyLayout

	fieldByID map[uint32]*MatchField
	// fieldDense is fieldByID as a slice indexed by id, for the small
	// ids P4Info gives fields (denseByID): every entry written looks
	// its fields up.
	fieldDense []*MatchField
	// actionIDs holds the ids of ActionOrder's actions, in its order:
	// a table has a few actions, and every entry written looks its
	// action up (actionRef).
	actionIDs     []uint32
	needsPriority bool
	// initialFromP4Info: InitialDefault came from the P4Info's
	// initial_default_action (not a fallback).
	initialFromP4Info bool
	// label names the table (or value set) in messages: "table t".
	label string
}

// NeedsPriority reports whether the table's entries carry a priority
// (any ternary, range or optional field; P4Runtime §9.1.1). A table with
// several LPM fields (BMv2 accepts them) is a TableTernary without
// priorities: backends rank its entries by their total prefix length.
func (t *Table) NeedsPriority() bool { return t.needsPriority }

// Field returns the match field with the given id, or nil.
func (t *Table) Field(id uint32) *MatchField {
	if id < uint32(len(t.fieldDense)) {
		return t.fieldDense[id]
	}
	return t.fieldByID[id]
}

// Param is an action parameter.
type Param struct {
	ID          uint32
	Name        string
	Bits        int
	Index       int
	Translation string
	IsString    bool
}

// Action is a P4Info action.
type Action struct {
	ID     uint32
	Name   string
	Params []*Param
	// Layout is the P4TC parameter blob layout; nil when a parameter cannot
	// be laid out.
	Layout *ParamLayout
	// P4TCID is P4TC's action id (the act_id the datapath switches on), from
	// the introspection; 0 when unknown.
	P4TCID uint32

	paramByID map[uint32]*Param
	// paramDense is paramByID as a slice indexed by id (denseByID).
	paramDense []*Param
}

// Param returns the parameter with the given id, or nil.
func (a *Action) Param(id uint32) *Param {
	if id < uint32(len(a.paramDense)) {
		return a.paramDense[id]
	}
	return a.paramByID[id]
}

// denseByID returns the values of m with small ids in a slice indexed by
// id: every id below its length is there, nil when m has none, so that a
// lookup below the length needs no map. P4Info numbers fields and params
// 1, 2, 3...; ids too large for a short slice stay in the map alone.
func denseByID[T any](m map[uint32]*T) []*T {
	bound := uint32(4*len(m) + 16)
	n := uint32(0)
	for id := range m {
		if id < bound {
			n = max(n, id+1)
		}
	}
	if n == 0 {
		return nil
	}
	d := make([]*T, n)
	for id, v := range m {
		if id < n {
			d[id] = v
		}
	}
	return d
}

// ActionProfile is a P4Info action profile or selector (P4Runtime §6.5.4).
type ActionProfile struct {
	ID           uint32
	Name         string
	Tables       []uint32
	WithSelector bool
	// Size bounds the members of the profile and, for a selector, the
	// size of all its groups together (by SumOfMembers); 0 is unbounded.
	Size int64
	// MaxGroupSize bounds one group (by SumOfMembers); 0 is unbounded.
	MaxGroupSize int32
	// SumOfMembers: a group's size is its number of members; otherwise
	// the sum of its weights (sum_of_weights, the default).
	SumOfMembers bool
	// MaxMemberWeight bounds each weight under SumOfMembers (0: any).
	MaxMemberWeight int32
	// WeightsDisallowed: every weight must be 0 (v1.5); each member then
	// counts once.
	WeightsDisallowed bool

	// tables are the tables the profile implements.
	tables []*Table
}

// ControllerHeader is a controller_packet_metadata header (packet_in or
// packet_out).
type ControllerHeader struct {
	ID       uint32
	Name     string
	Metadata []*Param
}

// Pipeline is a compiled P4Info: every object indexed by id and checked.
// A Pipeline is immutable once Compile returns it.
type Pipeline struct {
	P4Info *p4configv1.P4Info

	Tables     map[uint32]*Table
	TableOrder []*Table
	Actions    map[uint32]*Action
	Profiles   map[uint32]*ActionProfile
	// Counters and Meters are the indexed ones; DirectCounters and
	// DirectMeters the direct ones (also reachable from their tables).
	Counters       map[uint32]*Counter
	DirectCounters map[uint32]*Counter
	Meters         map[uint32]*Meter
	DirectMeters   map[uint32]*Meter
	Registers      map[uint32]*Register
	ValueSets      map[uint32]*ValueSet
	PacketIn       *ControllerHeader
	PacketOut      *ControllerHeader
	tablesByName   map[string]*Table

	// kinds maps every P4Info id to the kind of object it names, for
	// messages ("id 0x... is an action, not a table").
	kinds map[uint32]string

	// digests indexes the P4Info digests, built on first use.
	digestsOnce sync.Once
	digests     map[uint32]*Digest
	// P4Info order of each kind, for wildcard reads.
	profileOrder  []*ActionProfile
	counterOrder  []*Counter
	meterOrder    []*Meter
	registerOrder []*Register
	valueSetOrder []*ValueSet
	// digestNames names the P4Info digests by id; digestIDs lists them in
	// P4Info order (DigestEntry checks and wildcard reads).
	digestNames map[uint32]string
	digestIDs   []uint32
}

// TableByName returns the table with the given fully qualified name, or nil.
func (p *Pipeline) TableByName(name string) *Table { return p.tablesByName[name] }

// newTypes gives the translation of each P4Info new_type.
type newTypes map[string]*p4configv1.P4NewTypeSpec

// translation resolves a type_name: the URI, whether it is an sdn_string, and
// the controller-side bitwidth (0 when unknown).
func (nt newTypes) translation(tn *p4configv1.P4NamedType) (uri string, isString bool, bits int, err error) {
	if tn == nil {
		return "", false, 0, nil
	}
	spec, ok := nt[tn.GetName()]
	if !ok {
		return "", false, 0, fmt.Errorf("type %q is not in type_info.new_types", tn.GetName())
	}
	tr := spec.GetTranslatedType()
	if tr == nil {
		if bs := spec.GetOriginalType().GetBitstring(); bs != nil {
			switch {
			case bs.GetBit() != nil:
				return "", false, int(bs.GetBit().GetBitwidth()), nil
			case bs.GetInt() != nil:
				return "", false, int(bs.GetInt().GetBitwidth()), nil
			case bs.GetVarbit() != nil:
				return "", false, int(bs.GetVarbit().GetMaxBitwidth()), nil
			}
		}
		return "", false, 0, nil
	}
	if tr.GetSdnString() != nil {
		return tr.GetUri(), true, 0, nil
	}
	return tr.GetUri(), false, int(tr.GetSdnBitwidth()), nil
}

// Compile indexes and validates a P4Info. Every problem is reported as
// ErrInvalid naming the object (P4Runtime §"SetForwardingPipelineConfig":
// VERIFY returns INVALID_ARGUMENT when the config cannot be realised).
func Compile(info *p4configv1.P4Info) (*Pipeline, error) {
	if info == nil {
		return nil, errorf(ErrInvalid, "p4info: missing")
	}
	p := &Pipeline{
		P4Info:   info,
		Tables:   make(map[uint32]*Table, len(info.GetTables())),
		Actions:  make(map[uint32]*Action, len(info.GetActions())),
		Profiles: make(map[uint32]*ActionProfile),
		Counters: map[uint32]*Counter{}, DirectCounters: map[uint32]*Counter{},
		Meters: map[uint32]*Meter{}, DirectMeters: map[uint32]*Meter{},
		Registers: map[uint32]*Register{}, ValueSets: map[uint32]*ValueSet{}, digestNames: map[uint32]string{},
		tablesByName: make(map[string]*Table, len(info.GetTables())),
		kinds:        make(map[uint32]string),
	}
	nt := newTypes(info.GetTypeInfo().GetNewTypes())

	// Every P4 object id must be non-zero and unique in the P4Info, and
	// names unique within a kind (P4Runtime §6.1 "Preamble").
	names := map[string]map[string]uint32{}
	claim := func(kind string, pre *p4configv1.Preamble) error {
		if pre == nil {
			return errorf(ErrInvalid, "p4info: %s without preamble", kind)
		}
		if pre.GetId() == 0 {
			return errorf(ErrInvalid, "p4info: %s %q has id 0", kind, pre.GetName())
		}
		if pre.GetName() == "" {
			return errorf(ErrInvalid, "p4info: %s id %#x has no name", kind, pre.GetId())
		}
		if other, dup := p.kinds[pre.GetId()]; dup {
			return errorf(ErrInvalid, "p4info: %s %q reuses id %#x of a %s", kind, pre.GetName(), pre.GetId(), other)
		}
		if names[kind] == nil {
			names[kind] = map[string]uint32{}
		}
		if id, dup := names[kind][pre.GetName()]; dup {
			return errorf(ErrInvalid, "p4info: two %ss named %q (ids %#x and %#x)", kind, pre.GetName(), id, pre.GetId())
		}
		names[kind][pre.GetName()] = pre.GetId()
		p.kinds[pre.GetId()] = kind
		return nil
	}

	for _, a := range info.GetActions() {
		if err := claim("action", a.GetPreamble()); err != nil {
			return nil, err
		}
		act := &Action{ID: a.GetPreamble().GetId(), Name: a.GetPreamble().GetName(), paramByID: map[uint32]*Param{}}
		pnames := map[string]bool{}
		for i, prm := range a.GetParams() {
			if prm.GetId() == 0 {
				return nil, errorf(ErrInvalid, "p4info: action %s: param %q has id 0", act.Name, prm.GetName())
			}
			if act.paramByID[prm.GetId()] != nil {
				return nil, errorf(ErrInvalid, "p4info: action %s: two params with id %d", act.Name, prm.GetId())
			}
			if pnames[prm.GetName()] {
				return nil, errorf(ErrInvalid, "p4info: action %s: two params named %q", act.Name, prm.GetName())
			}
			pnames[prm.GetName()] = true
			uri, isStr, tbits, err := nt.translation(prm.GetTypeName())
			if err != nil {
				return nil, errorf(ErrInvalid, "p4info: action %s: param %s: %v", act.Name, prm.GetName(), err)
			}
			bitsN := int(prm.GetBitwidth())
			if bitsN == 0 {
				bitsN = tbits
			}
			if !isStr && (bitsN <= 0 || bitsN > maxBitwidth) {
				return nil, errorf(ErrInvalid, "p4info: action %s: param %s: bitwidth %d not in 1..%d", act.Name, prm.GetName(), prm.GetBitwidth(), maxBitwidth)
			}
			pa := &Param{ID: prm.GetId(), Name: prm.GetName(), Bits: bitsN, Index: i, Translation: uri, IsString: isStr}
			act.Params = append(act.Params, pa)
			act.paramByID[pa.ID] = pa
		}
		act.paramDense = denseByID(act.paramByID)
		p.Actions[act.ID] = act
	}

	for _, ap := range info.GetActionProfiles() {
		if err := claim("action profile", ap.GetPreamble()); err != nil {
			return nil, err
		}
		prof := &ActionProfile{
			ID: ap.GetPreamble().GetId(), Name: ap.GetPreamble().GetName(), Tables: ap.GetTableIds(),
			WithSelector: ap.GetWithSelector(), Size: ap.GetSize(), MaxGroupSize: ap.GetMaxGroupSize(),
			WeightsDisallowed: ap.GetWeightsDisallowed(),
		}
		if som := ap.GetSumOfMembers(); som != nil {
			prof.SumOfMembers, prof.MaxMemberWeight = true, som.GetMaxMemberWeight()
		}
		if prof.Size < 0 || prof.MaxGroupSize < 0 || prof.MaxMemberWeight < 0 {
			return nil, errorf(ErrInvalid, "p4info: action profile %s: negative size", prof.Name)
		}
		p.Profiles[prof.ID] = prof
		p.profileOrder = append(p.profileOrder, prof)
	}

	// Direct resources and other objects are claimed before tables so that
	// tables can check their references.
	directOf := map[uint32]uint32{} // direct resource id -> table id
	for _, c := range info.GetDirectCounters() {
		if err := claim("direct counter", c.GetPreamble()); err != nil {
			return nil, err
		}
		directOf[c.GetPreamble().GetId()] = c.GetDirectTableId()
	}
	for _, m := range info.GetDirectMeters() {
		if err := claim("direct meter", m.GetPreamble()); err != nil {
			return nil, err
		}
		directOf[m.GetPreamble().GetId()] = m.GetDirectTableId()
	}
	for _, c := range info.GetCounters() {
		if err := claim("counter", c.GetPreamble()); err != nil {
			return nil, err
		}
		if c.GetSize() <= 0 || int64(c.GetSize()) > maxCells {
			return nil, errorf(ErrInvalid, "p4info: counter %s: size %d not in 1..%d", c.GetPreamble().GetName(), c.GetSize(), maxCells)
		}
	}
	for _, m := range info.GetMeters() {
		if err := claim("meter", m.GetPreamble()); err != nil {
			return nil, err
		}
		if m.GetSize() <= 0 || int64(m.GetSize()) > maxCells {
			return nil, errorf(ErrInvalid, "p4info: meter %s: size %d not in 1..%d", m.GetPreamble().GetName(), m.GetSize(), maxCells)
		}
	}
	for _, r := range info.GetRegisters() {
		if err := claim("register", r.GetPreamble()); err != nil {
			return nil, err
		}
		if r.GetSize() <= 0 || int64(r.GetSize()) > maxCells {
			return nil, errorf(ErrInvalid, "p4info: register %s: size %d not in 1..%d", r.GetPreamble().GetName(), r.GetSize(), maxCells)
		}
	}
	for _, d := range info.GetDigests() {
		if err := claim("digest", d.GetPreamble()); err != nil {
			return nil, err
		}
	}
	for _, v := range info.GetValueSets() {
		if err := claim("value set", v.GetPreamble()); err != nil {
			return nil, err
		}
	}
	for _, e := range info.GetExterns() {
		for _, inst := range e.GetInstances() {
			if err := claim("extern "+e.GetExternTypeName(), inst.GetPreamble()); err != nil {
				return nil, err
			}
		}
	}
	for _, h := range info.GetControllerPacketMetadata() {
		if err := claim("controller packet metadata", h.GetPreamble()); err != nil {
			return nil, err
		}
		ch := &ControllerHeader{ID: h.GetPreamble().GetId(), Name: h.GetPreamble().GetName()}
		seen := map[uint32]bool{}
		for i, md := range h.GetMetadata() {
			if md.GetId() == 0 || seen[md.GetId()] {
				return nil, errorf(ErrInvalid, "p4info: controller header %s: metadata %q: id %d is zero or repeated", ch.Name, md.GetName(), md.GetId())
			}
			seen[md.GetId()] = true
			uri, isStr, tbits, err := nt.translation(md.GetTypeName())
			if err != nil {
				return nil, errorf(ErrInvalid, "p4info: controller header %s: metadata %s: %v", ch.Name, md.GetName(), err)
			}
			bitsN := int(md.GetBitwidth())
			if bitsN == 0 {
				bitsN = tbits
			}
			if !isStr && (bitsN <= 0 || bitsN > maxBitwidth) {
				return nil, errorf(ErrInvalid, "p4info: controller header %s: metadata %s: bitwidth %d not in 1..%d", ch.Name, md.GetName(), md.GetBitwidth(), maxBitwidth)
			}
			ch.Metadata = append(ch.Metadata, &Param{ID: md.GetId(), Name: md.GetName(), Bits: bitsN, Index: i, Translation: uri, IsString: isStr})
		}
		switch ch.Name {
		case "packet_in":
			p.PacketIn = ch
		case "packet_out":
			p.PacketOut = ch
		}
	}

	for _, t := range info.GetTables() {
		if err := claim("table", t.GetPreamble()); err != nil {
			return nil, err
		}
	}
	for _, t := range info.GetTables() {
		tbl, err := compileTable(p, t, nt, directOf)
		if err != nil {
			return nil, err
		}
		p.Tables[tbl.ID] = tbl
		p.TableOrder = append(p.TableOrder, tbl)
		p.tablesByName[tbl.Name] = tbl
	}

	for _, prof := range p.profileOrder {
		for _, tid := range prof.Tables {
			t := p.Tables[tid]
			if t == nil {
				return nil, errorf(ErrInvalid, "p4info: action profile %s: table id %#x is not a table", prof.Name, tid)
			}
			prof.tables = append(prof.tables, t)
		}
	}
	for _, t := range p.TableOrder {
		if t.Profile != nil && !slicesContains(t.Profile.tables, t) {
			t.Profile.tables = append(t.Profile.tables, t)
		}
	}
	if err := compileExterns(p, info, nt); err != nil {
		return nil, err
	}
	for id, tid := range directOf {
		if p.Tables[tid] == nil {
			return nil, errorf(ErrInvalid, "p4info: %s %#x: direct_table_id %#x is not a table", p.kinds[id], id, tid)
		}
	}
	for _, a := range p.Actions {
		a.Layout = newParamLayout(a.Params, nil)
	}
	return p, nil
}

func compileTable(p *Pipeline, t *p4configv1.Table, nt newTypes, directOf map[uint32]uint32) (*Table, error) {
	tbl := &Table{
		ID: t.GetPreamble().GetId(), Name: t.GetPreamble().GetName(),
		Actions: map[uint32]*ActionRef{}, Size: t.GetSize(),
		IdleTimeout: t.GetIdleTimeoutBehavior() == p4configv1.Table_NOTIFY_CONTROL,
		IsConst:     t.GetIsConstTable(),
		label:       "table " + t.GetPreamble().GetName(),
	}
	if tbl.Size < 0 {
		return nil, errorf(ErrInvalid, "p4info: table %s: negative size %d", tbl.Name, tbl.Size)
	}
	fields, byID, kind, prio, err := compileMatchFields("table "+tbl.Name, t.GetMatchFields(), nt, true)
	if err != nil {
		return nil, err
	}
	tbl.Fields, tbl.fieldByID, tbl.Kind, tbl.needsPriority = fields, byID, kind, prio
	tbl.fieldDense = denseByID(byID)

	if len(t.GetActionRefs()) == 0 {
		return nil, errorf(ErrInvalid, "p4info: table %s: no actions", tbl.Name)
	}
	for _, ref := range t.GetActionRefs() {
		act := p.Actions[ref.GetId()]
		if act == nil {
			return nil, errorf(ErrInvalid, "p4info: table %s: action ref %#x is not an action%s", tbl.Name, ref.GetId(), p.kindHint(ref.GetId()))
		}
		if tbl.Actions[act.ID] != nil {
			return nil, errorf(ErrInvalid, "p4info: table %s: action %s listed twice", tbl.Name, act.Name)
		}
		ar := &ActionRef{Action: act}
		switch ref.GetScope() {
		case p4configv1.ActionRef_TABLE_ONLY:
			ar.TableOnly = true
		case p4configv1.ActionRef_DEFAULT_ONLY:
			ar.DefaultOnly = true
		}
		tbl.Actions[act.ID] = ar
		tbl.ActionOrder = append(tbl.ActionOrder, ar)
		tbl.actionIDs = append(tbl.actionIDs, act.ID)
	}
	if id := t.GetConstDefaultActionId(); id != 0 {
		ar := tbl.Actions[id]
		if ar == nil {
			return nil, errorf(ErrInvalid, "p4info: table %s: const default action %#x is not one of its actions", tbl.Name, id)
		}
		if ar.TableOnly {
			return nil, errorf(ErrInvalid, "p4info: table %s: const default action %s is @tableonly", tbl.Name, ar.Action.Name)
		}
		tbl.ConstDefault = ar.Action
	}
	if id := t.GetImplementationId(); id != 0 {
		prof := p.Profiles[id]
		if prof == nil {
			return nil, errorf(ErrInvalid, "p4info: table %s: implementation %#x is not an action profile%s", tbl.Name, id, p.kindHint(id))
		}
		tbl.Profile = prof
	}
	for _, id := range t.GetDirectResourceIds() {
		owner, ok := directOf[id]
		if !ok {
			return nil, errorf(ErrInvalid, "p4info: table %s: direct resource %#x is not a direct counter or meter%s", tbl.Name, id, p.kindHint(id))
		}
		if owner != tbl.ID {
			return nil, errorf(ErrInvalid, "p4info: table %s: direct resource %#x belongs to table %#x", tbl.Name, id, owner)
		}
		if p.kinds[id] == "direct counter" {
			tbl.DirectCounters = append(tbl.DirectCounters, id)
		} else {
			tbl.DirectMeters = append(tbl.DirectMeters, id)
		}
	}

	def, err := initialDefault(tbl, t.GetInitialDefaultAction())
	if err != nil {
		return nil, err
	}
	tbl.InitialDefault = def
	tbl.initialFromP4Info = t.GetInitialDefaultAction().GetActionId() != 0
	tbl.Layout = newKeyLayout(tbl.Fields, nil)
	return tbl, nil
}

// compileMatchFields indexes the match fields of a table or value set
// (label names it in messages) and derives the lookup kind. stringsOK
// allows sdn_string fields (value sets have no string form).
func compileMatchFields(label string, mfs []*p4configv1.MatchField, nt newTypes, stringsOK bool) (fields []*MatchField, byID map[uint32]*MatchField, kind TableKind, prio bool, err error) {
	byID = map[uint32]*MatchField{}
	fnames := map[string]bool{}
	lpm := 0
	for i, f := range mfs {
		if f.GetId() == 0 {
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: match field %q has id 0", label, f.GetName())
		}
		if byID[f.GetId()] != nil {
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: two match fields with id %d", label, f.GetId())
		}
		if fnames[f.GetName()] {
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: two match fields named %q", label, f.GetName())
		}
		fnames[f.GetName()] = true
		mf := &MatchField{ID: f.GetId(), Name: f.GetName(), Index: i}
		switch f.GetMatchType() {
		case p4configv1.MatchField_EXACT:
			mf.Kind = MatchExact
		case p4configv1.MatchField_LPM:
			mf.Kind = MatchLPM
			lpm++
		case p4configv1.MatchField_TERNARY:
			mf.Kind = MatchTernary
			prio = true
		case p4configv1.MatchField_RANGE:
			mf.Kind = MatchRange
			prio = true
		case p4configv1.MatchField_OPTIONAL:
			mf.Kind = MatchOptional
			prio = true
		default:
			if o := f.GetOtherMatchType(); o != "" {
				return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: match kind %q is not supported", label, mf.Name, o)
			}
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: match kind %v is not a valid match kind", label, mf.Name, f.GetMatchType())
		}
		uri, isStr, tbits, err := nt.translation(f.GetTypeName())
		if err != nil {
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: %v", label, mf.Name, err)
		}
		mf.Translation, mf.IsString = uri, isStr
		mf.Bits = int(f.GetBitwidth())
		if mf.Bits == 0 {
			mf.Bits = tbits
		}
		if isStr {
			if !stringsOK {
				return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: string fields are not supported here", label, mf.Name)
			}
			if mf.Kind != MatchExact {
				return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: string fields must be exact, not %v", label, mf.Name, mf.Kind)
			}
		} else if mf.Bits <= 0 || mf.Bits > maxBitwidth {
			return nil, nil, 0, false, errorf(ErrInvalid, "p4info: %s: field %s: bitwidth %d not in 1..%d", label, mf.Name, f.GetBitwidth(), maxBitwidth)
		}
		fields = append(fields, mf)
		byID[mf.ID] = mf
	}
	switch {
	case len(fields) == 0:
		kind = TableKeyless
	case prio || lpm > 1:
		kind = TableTernary
	case lpm == 1:
		kind = TableLPM
	default:
		kind = TableExact
	}
	return fields, byID, kind, prio, nil
}

// initialDefault picks the action a table starts with: the P4Info
// initial_default_action (v1.4+), else the const default action, else
// NoAction if the table may use it, else none.
func initialDefault(tbl *Table, call *p4configv1.TableActionCall) (*ActionCall, error) {
	if call != nil && call.GetActionId() != 0 {
		ar := tbl.Actions[call.GetActionId()]
		if ar == nil {
			return nil, errorf(ErrInvalid, "p4info: table %s: initial default action %#x is not one of its actions", tbl.Name, call.GetActionId())
		}
		ac := &ActionCall{Action: ar.Action, Params: make([][]byte, len(ar.Action.Params))}
		for _, arg := range call.GetArguments() {
			prm := ar.Action.Param(arg.GetParamId())
			if prm == nil {
				return nil, errorf(ErrInvalid, "p4info: table %s: initial default action %s: no param %d", tbl.Name, ar.Action.Name, arg.GetParamId())
			}
			v, ok := canonical(arg.GetValue(), prm.Bits)
			if !ok || prm.IsString {
				return nil, errorf(ErrInvalid, "p4info: table %s: initial default action %s: param %s: bad value %s", tbl.Name, ar.Action.Name, prm.Name, hexOf(arg.GetValue()))
			}
			ac.Params[prm.Index] = v
		}
		for i, v := range ac.Params {
			if v == nil {
				return nil, errorf(ErrInvalid, "p4info: table %s: initial default action %s: param %s missing", tbl.Name, ar.Action.Name, ar.Action.Params[i].Name)
			}
		}
		return ac, nil
	}
	if tbl.ConstDefault != nil && len(tbl.ConstDefault.Params) == 0 {
		return &ActionCall{Action: tbl.ConstDefault}, nil
	}
	for _, ar := range tbl.ActionOrder {
		if ar.Action.Name == "NoAction" && !ar.TableOnly {
			return &ActionCall{Action: ar.Action}, nil
		}
	}
	return nil, nil
}

// kindHint names what an id is, if it is anything, for error messages.
func (p *Pipeline) kindHint(id uint32) string {
	if k, ok := p.kinds[id]; ok {
		return " (it is a " + k + ")"
	}
	return ""
}

// KindOf returns the kind of P4 object id names ("table", "action", ...), or
// "".
func (p *Pipeline) KindOf(id uint32) string { return p.kinds[id] }

func slicesContains(ts []*Table, t *Table) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// shortName is the last component of a dotted P4 name.
func shortName(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}
