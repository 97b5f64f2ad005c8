package ebpfdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// The Backend realises the P4 externs (translator.ExternBackend) in maps
// the runtime's p4tc_externs.h and p4tc_pre.h declare: counters, direct
// counters, meters, direct meters, registers, action profiles and
// selectors, multicast groups, clone sessions and parser value sets.
// Backup replicas are not realised (the Device answers UNIMPLEMENTED), and
// the Backend is no translator.AtomicExternBackend: like table writes,
// extern writes are applied in order, not switched at once.

// extState is a pipeline's extern maps and p4tcd's bookkeeping of them.
// The maps are the tc tier's; an XDP tier loads with the same maps
// (CollectionOptions.MapReplacements), so both tiers count in the same
// cells, meter with the same buckets and select from the same groups. The
// Backend's mutex guards it.
type extState struct {
	plan *externPlan
	// Maps by the P4Info id of their extern (direct ones by table id).
	counters, meters, registers, members, groups, valueSets map[uint32]*ebpf.Map
	dcounters, dmeters                                      map[uint32]*ebpf.Map
	// portDown is p4tc_port_down (pipelines with selectors).
	portDown *ebpf.Map
	// mcast and clones are p4tc_pre.h's maps, nil when the object has
	// none.
	mcast, clones *ebpf.Map
	// cells are the direct cells of each direct table's entries, by
	// table id.
	cells map[uint32]*directCells
	// vsKeys are the map keys of each value set's members, by value set
	// id (a write replaces them: p4tcd writes the difference).
	vsKeys map[uint32]map[string]bool
	// store keeps what a restarted p4tcd must give back (extstore.go);
	// recs are its records, as written.
	store sideStore
	recs  map[sideRef][]byte
	// ncpu is the number of possible CPUs (per-CPU values).
	ncpu int
	// jr is the pipeline's batch journal: extern writes made while a
	// batch is open are journaled first (extjournal.go). The store's own
	// jr stays nil: its records are journaled as extern records, not as
	// side records.
	jr *journal
	// pins names each extern map by its pin path under the generation
	// directory (the journal's name for it); built on first use.
	pins map[*ebpf.Map]string
}

// maps lists the extern maps by name, for pinning, sharing with the XDP
// tier and closing.
func (x *extState) maps() map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	add := func(name string, m *ebpf.Map) {
		if m != nil {
			out[name] = m
		}
	}
	pl := x.plan
	for _, c := range pl.counters {
		add(c.mapName(), x.counters[c.c.ID])
	}
	for _, m := range pl.meters {
		add(m.mapName(), x.meters[m.m.ID])
	}
	for _, r := range pl.registers {
		add(r.mapName(), x.registers[r.r.ID])
	}
	for _, p := range pl.profiles {
		add(p.membersMap(), x.members[p.p.ID])
		add(p.groupsMap(), x.groups[p.p.ID])
	}
	for _, v := range pl.valueSets {
		add(v.mapName(), x.valueSets[v.vs.ID])
	}
	for id, m := range x.dcounters {
		add(fmt.Sprintf("p4tc_t%d_dcnt", x.tableP4TC(id)), m)
	}
	for id, m := range x.dmeters {
		add(fmt.Sprintf("p4tc_t%d_dmtr", x.tableP4TC(id)), m)
	}
	add(portDownMapName, x.portDown)
	add(mcastMapName, x.mcast)
	add(cloneMapName, x.clones)
	return out
}

// tableP4TC is the P4TC id of a direct table, by P4Info id.
func (x *extState) tableP4TC(id uint32) uint32 { return x.cells[id].plan.id }

func (x *extState) close() {
	for _, m := range x.maps() {
		m.Close()
	}
	if x.store.m != nil {
		x.store.m.Close()
	}
}

func newExtState(pl *externPlan, tables []*tablePlan) (*extState, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count CPUs: %w", err)
	}
	x := &extState{
		plan: pl, counters: map[uint32]*ebpf.Map{}, meters: map[uint32]*ebpf.Map{}, registers: map[uint32]*ebpf.Map{},
		members: map[uint32]*ebpf.Map{}, groups: map[uint32]*ebpf.Map{}, valueSets: map[uint32]*ebpf.Map{},
		dcounters: map[uint32]*ebpf.Map{}, dmeters: map[uint32]*ebpf.Map{},
		cells: map[uint32]*directCells{}, vsKeys: map[uint32]map[string]bool{}, ncpu: ncpu,
		store: sideStore{recs: map[sideRef][]byte{}}, recs: map[sideRef][]byte{},
	}
	for _, p := range tables {
		if p.direct() {
			x.cells[p.table.ID] = newDirectCells(p)
		}
	}
	return x, nil
}

// bindMaps fills the state's maps by name, from get (a loaded collection
// or pins). Every planned map must be there; the PRE maps may not.
func (x *extState) bindMaps(tables []*tablePlan, get func(name string) (*ebpf.Map, error)) error {
	pl := x.plan
	var err error
	must := func(dst map[uint32]*ebpf.Map, id uint32, name string) {
		if err != nil {
			return
		}
		var m *ebpf.Map
		if m, err = get(name); err == nil {
			if m == nil {
				err = fmt.Errorf("extern map %s is missing", name)
				return
			}
			dst[id] = m
		}
	}
	for _, c := range pl.counters {
		must(x.counters, c.c.ID, c.mapName())
	}
	for _, m := range pl.meters {
		must(x.meters, m.m.ID, m.mapName())
	}
	for _, r := range pl.registers {
		must(x.registers, r.r.ID, r.mapName())
	}
	for _, p := range pl.profiles {
		must(x.members, p.p.ID, p.membersMap())
		must(x.groups, p.p.ID, p.groupsMap())
	}
	for _, v := range pl.valueSets {
		must(x.valueSets, v.vs.ID, v.mapName())
	}
	for _, p := range tables {
		if p.table.DirectCounter != nil {
			must(x.dcounters, p.table.ID, p.dcounterMap())
		}
		if p.table.DirectMeter != nil {
			must(x.dmeters, p.table.ID, p.dmeterMap())
		}
	}
	if err != nil {
		return err
	}
	if pl.selectors {
		if x.portDown, err = get(portDownMapName); err != nil {
			return err
		}
		if x.portDown == nil {
			return fmt.Errorf("extern map %s is missing", portDownMapName)
		}
	}
	if x.mcast, err = get(mcastMapName); err != nil {
		return err
	}
	x.clones, err = get(cloneMapName)
	return err
}

// detachExterns takes a loaded tc collection's extern maps.
func detachExterns(coll *ebpf.Collection, b *binding, tables []*tablePlan) (*extState, error) {
	x, err := newExtState(b.ext, tables)
	if err != nil {
		return nil, err
	}
	err = x.bindMaps(tables, func(name string) (*ebpf.Map, error) { return coll.DetachMap(name), nil })
	if err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

// openExterns opens the extern maps pinned under dir/maps and the store.
func openExterns(dir string, b *binding, tables []*tablePlan) (*extState, error) {
	x, err := newExtState(b.ext, tables)
	if err != nil {
		return nil, err
	}
	err = x.bindMaps(tables, func(name string) (*ebpf.Map, error) {
		if _, ok := b.spec.Maps[name]; !ok {
			return nil, nil
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", name), nil)
		if err != nil {
			return nil, fmt.Errorf("open map %s: %w", name, err)
		}
		return m, nil
	})
	if err == nil {
		path := filepath.Join(dir, extStoreName)
		x.store.m, err = ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			// A generation pinned by a p4tcd without externs: it has
			// none to give back; later writes need a store.
			if x.store.m, err = newExtStore(x); err == nil {
				err = x.store.m.Pin(path)
			}
		}
		if err != nil {
			err = fmt.Errorf("open %s: %w", extStoreName, err)
		}
	}
	if err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

// shared returns the maps an XDP tier object should use instead of its
// own: the extern maps it declares too.
func (x *extState) shared(spec *ebpf.CollectionSpec) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	for name, m := range x.maps() {
		if _, ok := spec.Maps[name]; ok {
			out[name] = m
		}
	}
	return out
}

// Externs reports the externs the ebpf datapath realises: all but backup
// replicas (translator.ExternBackend); `tc p4template get extern/` lists
// what a P4TC kernel has.
func (b *Backend) Externs() translator.ExternSet {
	return translator.ExternActionProfiles | translator.ExternCounters | translator.ExternDirectCounters |
		translator.ExternMeters | translator.ExternDirectMeters | translator.ExternRegisters |
		translator.ExternMulticast | translator.ExternClone | translator.ExternValueSets
}

// ApplyExterns performs extern ops in order on the running pipeline's
// maps, as `tc p4ctrl update ... extern/...` does on a P4TC kernel; it
// stops at the first failure (translator.ExternBackend).
func (b *Backend) ApplyExterns(ops []translator.ExternOp) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		if len(ops) == 0 {
			return 0, nil
		}
		return 0, translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	for i := range ops {
		if err := b.cur.applyExtern(&ops[i]); err != nil {
			return i, err
		}
	}
	return len(ops), nil
}

// applyExtern performs one extern op.
func (p *pipeline) applyExtern(op *translator.ExternOp) error {
	x := p.ext
	switch op.Kind {
	case translator.ExtInsertMember, translator.ExtModifyMember:
		return p.putMember(op.Member, op.PrevMember)
	case translator.ExtDeleteMember:
		return p.deleteMember(op.Member)
	case translator.ExtInsertGroup, translator.ExtModifyGroup:
		return p.putGroup(op.Group, op.PrevGroup)
	case translator.ExtDeleteGroup:
		return p.deleteGroup(op.Group)
	case translator.ExtWriteCounter:
		return x.writeCounter(op.Counter)
	case translator.ExtWriteDirectCounter:
		return p.writeDirect(op.Entry, op.PrevEntry, true, false)
	case translator.ExtWriteMeter:
		return p.writeMeter(op.Meter)
	case translator.ExtWriteDirectMeter:
		return p.writeDirect(op.Entry, op.PrevEntry, false, true)
	case translator.ExtWriteRegister:
		return x.writeRegister(op.Register)
	case translator.ExtInsertMulticast, translator.ExtModifyMulticast:
		return p.putMulticast(op.Multicast, op.PrevMulticast)
	case translator.ExtDeleteMulticast:
		return p.deleteMulticast(op.Multicast)
	case translator.ExtInsertClone, translator.ExtModifyClone:
		return p.putClone(op.Clone, op.PrevClone)
	case translator.ExtDeleteClone:
		return p.deleteClone(op.Clone)
	case translator.ExtWriteValueSet:
		return p.writeValueSet(op.ValueSet)
	}
	return translator.Errorf(translator.ErrUnsupported, "ebpf datapath: extern op %v", op.Kind)
}

// ReadCounters reads the live value of counter cells, summed over CPUs
// (`bpftool map lookup` of the per-CPU cells): indexed cells by index,
// direct ones in the cell of their entry (translator.ExternBackend).
// Entries the datapath created have no direct cell and keep the Device's
// value.
func (b *Backend) ReadCounters(cells []translator.CounterCell) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	return b.cur.ext.readCounters(cells)
}

// ReadRegisters reads the live value of register cells (`bpftool map
// lookup`), big-endian (translator.ExternBackend).
func (b *Backend) ReadRegisters(cells []translator.RegisterCell) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	return b.cur.ext.readRegisters(cells)
}

// noExtern reports an op on an extern the running datapath has no map
// for: p4tcd planned the maps from the same config, so this is a bug.
func noExtern(format string, args ...any) error {
	return translator.Errorf(translator.ErrInternal, "%s: not in the datapath", fmt.Sprintf(format, args...))
}

// pin pins the extern maps under dir/maps and creates and pins the
// extern store (dir/p4tcd_externs).
func (x *extState) pin(dir string) error {
	for name, m := range x.maps() {
		if err := m.Pin(filepath.Join(dir, "maps", name)); err != nil {
			return fmt.Errorf("pin map %s: %w", name, err)
		}
	}
	m, err := newExtStore(x)
	if err != nil {
		return err
	}
	x.store.m = m
	if err := m.Pin(filepath.Join(dir, extStoreName)); err != nil {
		return fmt.Errorf("pin %s: %w", extStoreName, err)
	}
	return nil
}

// wireExterns connects the tables to the externs once the tiers are
// loaded or opened: ternary values are encoded with members, groups and
// direct cells, and each direct table's states share its cells.
func (p *pipeline) wireExterns() {
	for _, t := range p.tiers() {
		for _, ts := range t.tables {
			pl := ts.plan
			if ts.tss != nil {
				ts.tss.enc = func(e *translator.Entry, v []byte) error { return p.encodeHead(pl, e, v) }
			}
			if p.ext != nil {
				ts.cells = p.ext.cells[pl.table.ID]
			}
		}
	}
}

// setDefaultDirect writes the direct cells of a table's default entry
// when a default write changes them.
func (p *pipeline) setDefaultDirect(op translator.Op) error {
	ts := p.byID[op.Entry.Table.ID]
	if ts == nil || !ts.plan.direct() {
		return nil
	}
	nd, pd := directOf(op.Entry), directOf(op.Prev)
	return p.writeCells(op.Entry, directDefaultCell, nd.WriteCounter, !sameMeter(nd.Meter, pd.Meter))
}
