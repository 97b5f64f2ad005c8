package ebpfdp

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// Limits of the externs in the runtime (p4tc_externs.h, p4tc_pre.h).
const (
	// maxCells bounds the cells of a counter, meter or register array.
	maxCells = 1 << 24
	// maxMeterCells bounds a meter array (a cell is 80 bytes).
	maxMeterCells = 1 << 22
	// defaultProfileSize sizes an action profile whose P4Info gives none.
	defaultProfileSize = 1024
	// maxProfileSize bounds an action profile's members.
	maxProfileSize = 1 << 20
	// defaultBuckets is a group's bucket capacity when the selector
	// bounds neither its groups nor its size.
	defaultBuckets = 128
	// maxBuckets bounds a group's buckets: members repeated by weight.
	maxBuckets = 1024
	// maxReplicas is P4TC_MAX_REPLICAS of p4tc_pre.h.
	maxReplicas = 64
	// directDefaultCell is the direct cell of a table's default entry
	// (P4TC_DIRECT_DEFAULT); cell 0 is none (entries the datapath
	// created).
	directDefaultCell = 1
	// directSize is the size of struct p4tc_direct in entry values.
	directSize = 8
	// counterSize is struct p4tc_counter: u64 packets, u64 bytes.
	counterSize = 16
	// meterSize is struct p4tc_meter.
	meterSize = 80
	// bucketSize is struct p4tc_bucket: u32 member, u32 watch.
	bucketSize = 8
	// replicaSize is struct p4tc_replica; replicasSize struct
	// p4tc_replicas.
	replicaSize  = 16
	replicasSize = 8 + maxReplicas*replicaSize
)

// tfDirect is P4TC_TF_DIRECT: the table has a direct counter or meter,
// and its entry values carry their cell (struct p4tc_direct).
const tfDirect = 1 << 4

// P4TC's extern kinds as the introspection json names them.
const (
	introCounter  = "Counter"
	introMeter    = "Meter"
	introRegister = "Register"
)

// Unit bits of the generated header (P4TC_UNIT_*).
const (
	unitPackets = 1 << 0
	unitBytes   = 1 << 1
)

// externPlan is how a pipeline's externs live in BPF maps, computed from
// the Config like the table plans, by the generator and the loader alike.
type externPlan struct {
	counters  []*counterPlan
	meters    []*meterPlan
	registers []*registerPlan
	profiles  []*profilePlan
	valueSets []*valueSetPlan
	// By P4Info id.
	counterByID  map[uint32]*counterPlan
	meterByID    map[uint32]*meterPlan
	registerByID map[uint32]*registerPlan
	profileByID  map[uint32]*profilePlan
	valueSetByID map[uint32]*valueSetPlan
	// maxTable is the largest P4TC table id (P4TC_MAX_TBLID).
	maxTable uint32
	// direct: some table has a direct counter or meter.
	direct bool
	// selectors: some profile has a selector (the datapath keeps port
	// liveness).
	selectors bool
}

type counterPlan struct {
	c     *translator.Counter
	inst  uint32
	cells uint32
}

type meterPlan struct {
	m     *translator.Meter
	inst  uint32
	cells uint32
}

type registerPlan struct {
	r     *translator.Register
	inst  uint32
	cells uint32
	// size is a cell's size: the C container of the width up to 64 bits
	// (host order), else the bytes of the width (network order).
	size int
}

type profilePlan struct {
	p       *translator.ActionProfile
	inst    uint32
	members uint32
	// buckets is a group's capacity (0: no selector, no groups).
	buckets int
}

type valueSetPlan struct {
	vs      *translator.ValueSet
	inst    uint32
	keySize int
	size    uint32
}

func (c *counterPlan) mapName() string  { return fmt.Sprintf("p4tc_cnt%d", c.inst) }
func (m *meterPlan) mapName() string    { return fmt.Sprintf("p4tc_mtr%d", m.inst) }
func (r *registerPlan) mapName() string { return fmt.Sprintf("p4tc_reg%d", r.inst) }
func (p *profilePlan) membersMap() string {
	return fmt.Sprintf("p4tc_ap%d_mbr", p.inst)
}
func (p *profilePlan) groupsMap() string   { return fmt.Sprintf("p4tc_ap%d_grp", p.inst) }
func (v *valueSetPlan) mapName() string    { return fmt.Sprintf("p4tc_vs%d", v.inst) }
func (p *tablePlan) dcounterMap() string   { return fmt.Sprintf("p4tc_t%d_dcnt", p.id) }
func (p *tablePlan) dmeterMap() string     { return fmt.Sprintf("p4tc_t%d_dmtr", p.id) }
func (p *profilePlan) groupValueSize() int { return 8 + max(p.buckets, 1)*bucketSize }
func (p *tablePlan) direct() bool          { return p.flags&tfDirect != 0 }
func (p *tablePlan) directOff() int        { return p.agedOff() + p.agedSize() }
func (p *tablePlan) agedSize() int         { return map[bool]int{true: agedSize}[p.aged()] }
func (p *tablePlan) directCells() uint32   { return p.entries + 2 }
func (p *tablePlan) indirect() bool        { return p.table.Profile != nil }
func (r *registerPlan) hostOrder() bool    { return r.r.Bits <= 64 }
func (m *meterPlan) bytes() bool           { return m.m.Unit == translator.MeterBytes }
func (c *counterPlan) unit() int           { return unitOf(c.c.Unit) }
func (p *profilePlan) selector() bool      { return p.buckets > 0 }

// PRE and liveness maps (p4tc_pre.h, p4tc_externs.h).
const (
	mcastMapName    = "p4tc_mcast"
	cloneMapName    = "p4tc_clones"
	portDownMapName = "p4tc_port_down"
	dlastMapName    = "p4tc_dlast"
)

func unitOf(u translator.CounterUnit) int {
	switch u {
	case translator.CounterPackets:
		return unitPackets
	case translator.CounterBytes:
		return unitBytes
	}
	return unitPackets | unitBytes
}

func unitName(u int) string {
	switch u {
	case unitPackets:
		return "P4TC_UNIT_PACKETS"
	case unitBytes:
		return "P4TC_UNIT_BYTES"
	}
	return "P4TC_UNIT_BOTH"
}

func meterUnit(u translator.MeterUnit) int {
	if u == translator.MeterBytes {
		return unitBytes
	}
	return unitPackets
}

// cellSize is the size of a register cell of bits bits.
func cellSize(bits int) int {
	switch {
	case bits <= 8:
		return 1
	case bits <= 16:
		return 2
	case bits <= 32:
		return 4
	case bits <= 64:
		return 8
	}
	return (bits + 7) / 8
}

// planExterns computes the extern plan of c; tables are planned already
// (direct resources change their flags). It refuses, as ErrInvalid, what
// the runtime cannot hold.
func planExterns(c *translator.Config, tables []*tablePlan) (*externPlan, error) {
	x := &externPlan{
		counterByID: map[uint32]*counterPlan{}, meterByID: map[uint32]*meterPlan{},
		registerByID: map[uint32]*registerPlan{}, profileByID: map[uint32]*profilePlan{},
		valueSetByID: map[uint32]*valueSetPlan{},
	}
	ids := newInstIDs(c)
	for _, p := range tables {
		x.maxTable = max(x.maxTable, p.id)
		if p.table.DirectCounter != nil || p.table.DirectMeter != nil {
			x.direct = true
		}
	}
	for _, cn := range c.CountersInOrder() {
		inst, err := ids.get(introCounter, cn.Name, cn.ID)
		if err != nil {
			return nil, err
		}
		cells, err := cellsOf("counter", cn.Name, cn.Size, maxCells)
		if err != nil {
			return nil, err
		}
		cp := &counterPlan{c: cn, inst: inst, cells: cells}
		x.counters = append(x.counters, cp)
		x.counterByID[cn.ID] = cp
	}
	for _, m := range c.MetersInOrder() {
		inst, err := ids.get(introMeter, m.Name, m.ID)
		if err != nil {
			return nil, err
		}
		cells, err := cellsOf("meter", m.Name, m.Size, maxMeterCells)
		if err != nil {
			return nil, err
		}
		mp := &meterPlan{m: m, inst: inst, cells: cells}
		x.meters = append(x.meters, mp)
		x.meterByID[m.ID] = mp
	}
	for _, r := range c.RegistersInOrder() {
		if r.Kind == translator.DataUnsupported {
			continue // Reads and Writes of it answer UNIMPLEMENTED
		}
		inst, err := ids.get(introRegister, r.Name, r.ID)
		if err != nil {
			return nil, err
		}
		cells, err := cellsOf("register", r.Name, r.Size, maxCells)
		if err != nil {
			return nil, err
		}
		rp := &registerPlan{r: r, inst: inst, cells: cells, size: cellSize(r.Bits)}
		x.registers = append(x.registers, rp)
		x.registerByID[r.ID] = rp
	}
	for _, ap := range c.ProfilesInOrder() {
		inst, err := ids.get("ActionProfile", ap.Name, ap.ID)
		if err != nil {
			return nil, err
		}
		pp := &profilePlan{p: ap, inst: inst, members: defaultProfileSize}
		if ap.Size > 0 {
			if ap.Size > maxProfileSize {
				return nil, translator.Errorf(translator.ErrInvalid, "action profile %s: size %d; the ebpf datapath holds at most %d members", ap.Name, ap.Size, maxProfileSize)
			}
			pp.members = uint32(ap.Size)
		}
		if ap.WithSelector {
			pp.buckets = bucketsOf(ap)
			x.selectors = true
		}
		x.profiles = append(x.profiles, pp)
		x.profileByID[ap.ID] = pp
	}
	for _, vs := range c.ValueSetsInOrder() {
		inst, err := ids.get("ValueSet", vs.Name, vs.ID)
		if err != nil {
			return nil, err
		}
		if vs.Layout == nil {
			return nil, translator.Errorf(translator.ErrInvalid, "value set %s: a field has no fixed width; the ebpf datapath needs one", vs.Name)
		}
		for _, f := range vs.Fields {
			if f.Kind != translator.MatchExact {
				return nil, translator.Errorf(translator.ErrInvalid, "value set %s: field %s is matched %v; the ebpf datapath holds value sets of exact fields (a hash)", vs.Name, f.Name, f.Kind)
			}
		}
		if vs.Layout.Size > maxKeyBytes {
			return nil, translator.Errorf(translator.ErrInvalid, "value set %s: the key is %d bytes; at most %d", vs.Name, vs.Layout.Size, maxKeyBytes)
		}
		vp := &valueSetPlan{vs: vs, inst: inst, keySize: vs.Layout.BPFKeySize(), size: uint32(max(vs.Size, 1))}
		x.valueSets = append(x.valueSets, vp)
		x.valueSetByID[vs.ID] = vp
	}
	return x, nil
}

func cellsOf(kind, name string, size, limit int64) (uint32, error) {
	if size > limit {
		return 0, translator.Errorf(translator.ErrInvalid, "%s %s: %d cells; the ebpf datapath holds at most %d", kind, name, size, limit)
	}
	return uint32(max(size, 1)), nil
}

// bucketsOf is the bucket capacity of a selector's groups: its
// max_group_size (times the largest weight under sum_of_members), else
// its size, else defaultBuckets; at most maxBuckets. Heavier groups have
// their weights scaled down to fit (selectorBuckets).
func bucketsOf(ap *translator.ActionProfile) int {
	b := int64(ap.MaxGroupSize)
	if b == 0 {
		b = ap.Size
	}
	if b == 0 {
		b = defaultBuckets
	}
	if ap.SumOfMembers && !ap.WeightsDisallowed {
		w := int64(ap.MaxMemberWeight)
		if w == 0 {
			w = 16
		}
		b *= w
	}
	return int(min(max(b, 1), maxBuckets))
}

// instIDs gives extern instances their P4TC instance ids: the
// introspection's inst_id when it lists the instance's kind, else the low
// 24 bits of the P4Info id (unique within a kind).
type instIDs struct {
	intro map[string][]introInst
	used  map[string]map[uint32]string
}

type introInst struct {
	name string
	id   uint32
}

func newInstIDs(c *translator.Config) *instIDs {
	ids := &instIDs{intro: map[string][]introInst{}, used: map[string]map[uint32]string{}}
	if in := c.Program.Introspection; in != nil {
		for _, e := range in.Externs {
			for _, i := range e.Instances {
				ids.intro[e.Name] = append(ids.intro[e.Name], introInst{name: i.Name, id: i.ID})
			}
		}
	}
	return ids
}

// sameExternName matches a P4Info name ("MainControlImpl.port_stats") to
// an introspection instance name (the same, with '/' for '.', or its last
// component).
func sameExternName(p4name, intro string) bool {
	if intro == p4name || intro == strings.ReplaceAll(p4name, ".", "/") {
		return true
	}
	short := p4name
	if i := strings.LastIndexByte(p4name, '.'); i >= 0 {
		short = p4name[i+1:]
	}
	if i := strings.LastIndexAny(intro, "./"); i >= 0 {
		intro = intro[i+1:]
	}
	return intro == short
}

func (ids *instIDs) get(kind, name string, p4id uint32) (uint32, error) {
	id := p4id & 0xffffff
	if insts, ok := ids.intro[kind]; ok {
		found := false
		for _, i := range insts {
			if sameExternName(name, i.name) {
				id, found = i.id, true
				break
			}
		}
		if !found {
			return 0, translator.Errorf(translator.ErrInvalid, "introspection json: extern %s lists no instance for P4Info %s", kind, name)
		}
	}
	if id == 0 {
		return 0, translator.Errorf(translator.ErrInvalid, "%s %s: instance id 0", kind, name)
	}
	if ids.used[kind] == nil {
		ids.used[kind] = map[uint32]string{}
	}
	if other, dup := ids.used[kind][id]; dup {
		return 0, translator.Errorf(translator.ErrInvalid, "%s instances %s and %s share instance id %d", kind, other, name, id)
	}
	ids.used[kind][id] = name
	return id, nil
}

// externMaps lists the maps an extern plan needs in an object, by name,
// with their shape.
func (x *externPlan) externMaps(tables []*tablePlan) map[string]mapShape {
	out := map[string]mapShape{}
	for _, c := range x.counters {
		out[c.mapName()] = mapShape{ebpf.PerCPUArray, 4, counterSize, c.cells, 0}
	}
	for _, m := range x.meters {
		out[m.mapName()] = mapShape{ebpf.Array, 4, meterSize, m.cells, 0}
	}
	for _, r := range x.registers {
		out[r.mapName()] = mapShape{ebpf.Array, 4, uint32(r.size), r.cells, 0}
	}
	for _, p := range x.profiles {
		out[p.membersMap()] = mapShape{ebpf.Hash, 4, slotSize, p.members, bpfFNoPrealloc}
		groups := uint32(1)
		if p.selector() {
			groups = p.members
		}
		out[p.groupsMap()] = mapShape{ebpf.Hash, 4, uint32(p.groupValueSize()), groups, bpfFNoPrealloc}
	}
	for _, v := range x.valueSets {
		out[v.mapName()] = mapShape{ebpf.Hash, uint32(v.keySize), 1, v.size, 0}
	}
	for _, p := range tables {
		if p.table.DirectCounter != nil {
			out[p.dcounterMap()] = mapShape{ebpf.PerCPUArray, 4, counterSize, p.directCells(), 0}
		}
		if p.table.DirectMeter != nil {
			out[p.dmeterMap()] = mapShape{ebpf.Array, 4, meterSize, p.directCells(), 0}
		}
	}
	if x.selectors {
		out[portDownMapName] = mapShape{ebpf.Hash, 4, 4, 0, 0}
	}
	return out
}

// mapShape is what a map must be: type, key and value size, entries (0:
// any) and flags that must be set.
type mapShape struct {
	typ        ebpf.MapType
	key, value uint32
	entries    uint32
	flags      uint32
}

// bindExterns checks an object's extern maps against the plan:
// "maps do not match the P4Info" otherwise.
func (b *binding) bindExterns(x *externPlan, tables []*tablePlan) error {
	b.ext = x
	for name, want := range x.externMaps(tables) {
		ms := b.spec.Maps[name]
		if ms == nil {
			return externMismatch("map %s is missing", name)
		}
		if ms.Type != want.typ || ms.KeySize != want.key || ms.ValueSize != want.value ||
			(want.entries != 0 && ms.MaxEntries != want.entries) || ms.Flags&want.flags != want.flags {
			return externMismatch("map %s is %v with %d-byte keys, %d-byte values, %d entries, flags %#x; want %v, %d, %d, %d, %#x",
				name, ms.Type, ms.KeySize, ms.ValueSize, ms.MaxEntries, ms.Flags, want.typ, want.key, want.value, want.entries, want.flags)
		}
	}
	for _, name := range []string{mcastMapName, cloneMapName} {
		if ms := b.spec.Maps[name]; ms != nil && (ms.Type != ebpf.Hash || ms.KeySize != 4 || ms.ValueSize != replicasSize) {
			return externMismatch("map %s is %v with %d-byte keys and %d-byte values; want a hash of 4-byte keys and %d-byte values (p4tc_pre.h, %d replicas)",
				name, ms.Type, ms.KeySize, ms.ValueSize, replicasSize, maxReplicas)
		}
	}
	return nil
}

func externMismatch(format string, args ...any) error {
	return translator.Errorf(translator.ErrInvalid, "maps do not match the P4Info: externs: %s; regenerate the tables header with p4tcd-gen tables", fmt.Sprintf(format, args...))
}
