package ebpfdp

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// pipeline is one loaded datapath with its maps: the running one, or one
// being prepared by Commit or Reconcile. It is pinned in its own
// generation directory, so replacing it never touches the one that runs.
// It has a software tier (the tc program, embedded) and, when the device
// config has an XDP object, an XDP tier with maps of its own. The
// Backend's mutex guards it.
type pipeline struct {
	tier       // the software tier: the tc program and its tables
	xdp  *tier // the XDP tier, or nil
	gen  uint64
	dir  string
	cfg  *translator.Config
	side sideStore
	// jr is the batch journal (journal.go).
	jr     *journal
	config *ebpf.Map
	ports  *portMap
	log    *slog.Logger
	// idle tracks the controller entries with idle timeouts (aging.go).
	idle *idleIndex
	// scratch holds the key and value rows of batch map writes, reused
	// from one Apply to the next (the Backend's mutex guards it).
	scratch struct{ keys, vals rowBuf }
}

// attachJournal hands p.jr, just made or reopened, to the parts of the
// pipeline that journal their changes while a batch is open: the side
// store and the externs (whose extern store keeps no journal of its own:
// its records are journaled as extern records). Every path that sets
// p.jr calls it, so no part writes unjournaled.
func (p *pipeline) attachJournal() {
	p.side.jr = p.jr
	if p.ext != nil {
		p.ext.jr = p.jr
	}
}

// rowBuf is a reusable buffer of map rows.
type rowBuf []byte

// take returns n zeroed bytes of the buffer, growing it if needed. What
// it returned before is invalid afterwards.
func (b *rowBuf) take(n int) []byte {
	if cap(*b) < n {
		*b = make([]byte, n)
		return *b
	}
	s := (*b)[:n]
	clear(s)
	return s
}

// tierKind tells the two tiers apart.
type tierKind uint8

const (
	// tierTC is the software tier: the tc ingress program.
	tierTC tierKind = iota
	// tierXDP is the XDP tier (p4tcd's hardware tier): entries placed hw
	// or both, hit before the tc tier; a miss passes the packet to it.
	tierXDP
)

func (k tierKind) String() string { return [...]string{"tc", "xdp"}[k] }

// tier is one program of the pipeline with its table maps.
type tier struct {
	kind   tierKind
	bind   *binding
	prog   *ebpf.Program
	tables []*tableState // P4Info order
	byID   map[uint32]*tableState
	// stream holds the p4tc_stream.h maps of the tc tier, if any.
	stream *streamMaps
	// ext holds the extern maps (the tc tier's; the XDP tier shares
	// them).
	ext *extState
}

// tableState is a table's maps in one tier and, for ternary tables,
// p4tcd's view of its tuple space there.
type tableState struct {
	plan *tablePlan
	// bind is the binding of the tier's object (inner map specs).
	bind *binding
	// tier is the tier the maps belong to.
	tier    tierKind
	entries *ebpf.Map // nil for keyless tables
	masks   *ebpf.Map // outer map of the mask list (TSS)
	mprio   *ebpf.Map // top priority of each mask slot (TSS)
	// topMem is mprio mapped into p4tcd's memory: written with atomic
	// stores, so the datapath never reads half a priority.
	topMem []byte
	dflt   *ebpf.Map // outer map of the default slot
	stats  *ebpf.Map
	// pool is the pool map of an exact table ({cap, used}), mapped at
	// poolMem for atomic updates; only the tc tier's is used.
	pool    *ebpf.Map
	poolMem []byte
	// masksCap is the number of masks a mask list holds.
	masksCap int
	tss      *tss
	// cells are the table's direct cells (shared by the tiers); nil
	// unless the table has direct resources.
	cells *directCells
	// ctl counts the controller entries in this tier (for TableStats);
	// the Backend's mutex guards it.
	ctl int
}

// count adds to ctl the controller entries that ops, applied in this
// tier, inserted or deleted.
func (ts *tableState) count(ops []translator.Op) {
	for _, op := range ops {
		if op.Entry == nil || op.Entry.Origin == translator.OriginDatapath {
			continue
		}
		switch op.Kind {
		case translator.OpInsert:
			ts.ctl++
		case translator.OpDelete:
			ts.ctl--
		}
	}
}

// ownsSide reports whether this tier writes e's side record: the tc tier
// for entries it holds, the XDP tier for entries placed hw only.
func (ts *tableState) ownsSide(e *translator.Entry) bool {
	return ts.tier == tierTC || e.Placement == translator.PlaceHW
}

// pinName is where a map of the table's tier is pinned, relative to the
// generation directory.
func (ts *tableState) pinName(name string) string {
	return filepath.Join(tierDir("", ts.tier), "maps", name)
}

// maps lists the table's runtime maps by name, for pinning.
func (ts *tableState) maps() map[string]*ebpf.Map {
	m := map[string]*ebpf.Map{ts.plan.defaultsMap(): ts.dflt, ts.plan.statsMap(): ts.stats}
	if ts.entries != nil {
		m[ts.plan.entriesMap()] = ts.entries
	}
	if ts.masks != nil {
		m[ts.plan.masksMap()] = ts.masks
		m[ts.plan.mprioMap()] = ts.mprio
	}
	if ts.pool != nil {
		m[ts.plan.poolMap()] = ts.pool
	}
	return m
}

// mapTops maps the top-priority array of a ternary table.
func (ts *tableState) mapTops() error {
	size := (ts.masksCap*8 + os.Getpagesize() - 1) &^ (os.Getpagesize() - 1)
	b, err := unix.Mmap(ts.mprio.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("table %s: map mask priorities: %w", ts.plan.table.Name, err)
	}
	ts.topMem = b
	return nil
}

// top reads the top priority of mask slot i (elements are 8 bytes apart).
func (ts *tableState) top(i uint32) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&ts.topMem[i*8])))
}

// setTop sets the top priority of mask slot i in one store.
func (ts *tableState) setTop(i, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&ts.topMem[i*8])), v)
}

// close releases the tier's file descriptors and mappings; pins stay.
func (t *tier) close() {
	if t.prog != nil {
		t.prog.Close()
	}
	if t.stream != nil {
		t.stream.close()
		t.stream = nil
	}
	if t.ext != nil {
		t.ext.close()
		t.ext = nil
	}
	for _, ts := range t.tables {
		for _, mem := range []*[]byte{&ts.topMem, &ts.poolMem} {
			if *mem != nil {
				unix.Munmap(*mem)
				*mem = nil
			}
		}
		for _, m := range ts.maps() {
			if m != nil {
				m.Close()
			}
		}
	}
}

// close releases the pipeline's file descriptors; pins stay.
func (p *pipeline) close() {
	p.tier.close()
	if p.xdp != nil {
		p.xdp.close()
	}
	if p.side.m != nil {
		p.side.m.Close()
	}
	p.jr.close()
	if p.config != nil {
		p.config.Close()
	}
}

// destroy closes the pipeline and removes its pins: once no program runs
// it, the kernel frees it, and with it every entry the datapath created.
func (p *pipeline) destroy() error {
	p.close()
	return os.RemoveAll(p.dir)
}

// tiers lists the pipeline's tiers: tc, then XDP if there is one.
func (p *pipeline) tiers() []*tier {
	if p.xdp == nil {
		return []*tier{&p.tier}
	}
	return []*tier{&p.tier, p.xdp}
}

// shareHandles makes the XDP tier's tuple spaces take owner handles from
// the tc tier's counters.
func (p *pipeline) shareHandles() {
	for _, ts := range p.xdp.tables {
		if ts.tss != nil {
			ts.tss.handles = p.byID[ts.plan.table.ID].tss.handles
		}
	}
}

// tierDir is where a tier is pinned: the generation directory for tc,
// its xdp subdirectory for XDP.
func tierDir(dir string, k tierKind) string {
	if k == tierXDP {
		return filepath.Join(dir, "xdp")
	}
	return dir
}

// loadTier loads one datapath object of c as a tier and pins it under
// dir: its program at prog, its maps under maps/. The tc tier keeps the
// extern maps; an XDP tier uses them (shared).
func loadTier(k tierKind, plans []*tablePlan, b *binding, dir string, shared map[string]*ebpf.Map) (*tier, error) {
	coll, err := ebpf.NewCollectionWithOptions(b.spec, ebpf.CollectionOptions{MapReplacements: shared})
	if err != nil {
		return nil, loadError(err)
	}
	t := &tier{kind: k, bind: b, byID: map[uint32]*tableState{}}
	t.prog = coll.DetachProgram(b.prog)
	if k == tierTC {
		t.stream = detachStreamMaps(coll)
		if t.ext, err = detachExterns(coll, b, plans); err != nil {
			coll.Close()
			t.close()
			return nil, err
		}
	}
	for _, pl := range plans {
		ts := &tableState{
			plan: pl, bind: b, tier: k, dflt: coll.DetachMap(pl.defaultsMap()), stats: coll.DetachMap(pl.statsMap()),
			masksCap: b.masks[pl.id],
		}
		if pl.kind != kindKeyless {
			ts.entries = coll.DetachMap(pl.entriesMap())
		}
		if pl.kind == kindExact {
			ts.pool = coll.DetachMap(pl.poolMap())
		}
		if pl.kind == kindTSS {
			ts.masks, ts.mprio = coll.DetachMap(pl.masksMap()), coll.DetachMap(pl.mprioMap())
			ts.tss = newTSS(pl)
		}
		t.tables = append(t.tables, ts)
		t.byID[pl.table.ID] = ts
	}
	coll.Close() // the program keeps what it uses; p4tcd kept its maps
	if err := t.mapMemory(); err != nil {
		t.close()
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "maps"), 0o700); err != nil {
		t.close()
		return nil, fmt.Errorf("create pin dir: %w", err)
	}
	if err := t.prog.Pin(filepath.Join(dir, "prog")); err != nil {
		t.close()
		return nil, fmt.Errorf("pin %s program: %w", k, err)
	}
	for _, ts := range t.tables {
		for name, m := range ts.maps() {
			if err := m.Pin(filepath.Join(dir, "maps", name)); err != nil {
				t.close()
				return nil, fmt.Errorf("pin map %s: %w", name, err)
			}
		}
	}
	if t.stream != nil {
		for name, m := range t.stream.maps() {
			if err := m.Pin(filepath.Join(dir, "maps", name)); err != nil {
				t.close()
				return nil, fmt.Errorf("pin map %s: %w", name, err)
			}
		}
	}
	if t.ext != nil {
		if err := t.ext.pin(dir); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

// mapMemory maps the mmapable arrays (mask priorities, pools).
func (t *tier) mapMemory() error {
	for _, ts := range t.tables {
		if ts.mprio != nil && ts.topMem == nil {
			if err := ts.mapTops(); err != nil {
				return err
			}
		}
		if ts.pool != nil && ts.poolMem == nil && t.kind == tierTC && ts.plan.flags&tfDataCreate != 0 {
			b, err := unix.Mmap(ts.pool.FD(), 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				return fmt.Errorf("table %s: map pool: %w", ts.plan.table.Name, err)
			}
			ts.poolMem = b
		}
	}
	return nil
}

// newPipeline loads the datapath objects of c (tc, and XDP when xb is
// set), pins them under dir, and fills what a fresh pipeline holds: each
// table's initial default action in every tier, the pools' capacities,
// the committed config, an empty side map. Nothing is attached.
func newPipeline(c *translator.Config, plans []*tablePlan, b, xb *binding, ports *portMap, dir string, gen uint64, log *slog.Logger) (*pipeline, error) {
	t, err := loadTier(tierTC, plans, b, dir, nil)
	if err != nil {
		return nil, err
	}
	p := &pipeline{tier: *t, gen: gen, dir: dir, cfg: c, ports: ports, log: log, idle: newIdleIndex()}
	fail := func(err error) (*pipeline, error) {
		p.destroy()
		return nil, err
	}
	if xb != nil {
		if p.xdp, err = loadTier(tierXDP, plans, xb, tierDir(dir, tierXDP), p.ext.shared(xb.spec)); err != nil {
			return fail(err)
		}
		p.shareHandles()
	}
	p.wireExterns()
	if p.side.m, err = newSideMap(plans); err != nil {
		return fail(err)
	}
	p.side.recs = map[sideRef][]byte{}
	if err := p.side.m.Pin(filepath.Join(dir, sideMapName)); err != nil {
		return fail(fmt.Errorf("pin side map: %w", err))
	}
	if p.jr, err = newJournal(dir); err != nil {
		return fail(err)
	}
	p.attachJournal()
	if p.config, err = newConfigMap(c); err != nil {
		return fail(err)
	}
	if err := p.config.Pin(filepath.Join(dir, configMapName)); err != nil {
		return fail(fmt.Errorf("pin config map: %w", err))
	}
	for _, tr := range p.tiers() {
		for _, ts := range tr.tables {
			if err := p.writeDefault(ts, ts.plan.table.InitialDefault); err != nil {
				return fail(err)
			}
		}
	}
	for _, ts := range p.tables {
		if ts.poolMem != nil {
			ts.setPoolCap(ts.plan.pool)
		}
	}
	return p, nil
}

// maxSideRecords caps the side map: a hash allocates its buckets up front
// even without preallocated elements.
const maxSideRecords = 1 << 21

// newSideMap creates the side map, with room for a record per entry of
// every table and then some, up to maxSideRecords.
func newSideMap(plans []*tablePlan) (*ebpf.Map, error) {
	n := uint64(64)
	for _, p := range plans {
		n += 2 * uint64(p.entries)
	}
	n = min(n, maxSideRecords)
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: sideMapName, Type: ebpf.Hash, KeySize: sideKeySize, ValueSize: sideValueSize,
		MaxEntries: uint32(n), Flags: bpfFNoPrealloc,
	})
	if err != nil {
		return nil, translator.Errorf(translator.ErrFull, "create side map: %v", err)
	}
	return m, nil
}

// Map flags (include/uapi/linux/bpf.h).
const (
	bpfFNoPrealloc = 1 << 0  // BPF_F_NO_PREALLOC
	bpfFMmapable   = 1 << 10 // BPF_F_MMAPABLE
)

// The config map holds Config.Marshal in 4 KiB chunks: slot 0 has the
// length, slots 1.. the bytes.
const (
	configMapName  = "p4tcd_config"
	configChunk    = 4096
	configMaxBytes = 64 << 20
)

func newConfigMap(c *translator.Config) (*ebpf.Map, error) {
	raw, err := c.Marshal()
	if err != nil {
		return nil, translator.Errorf(translator.ErrInternal, "marshal config: %v", err)
	}
	if len(raw) > configMaxBytes {
		return nil, translator.Errorf(translator.ErrFull, "the config is %d bytes; the ebpf datapath keeps at most %d", len(raw), configMaxBytes)
	}
	chunks := (len(raw) + configChunk - 1) / configChunk
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: configMapName, Type: ebpf.Array, KeySize: 4, ValueSize: configChunk, MaxEntries: uint32(1 + chunks),
	})
	if err != nil {
		return nil, translator.Errorf(translator.ErrFull, "create config map: %v", err)
	}
	buf := make([]byte, (1+chunks)*configChunk)
	ne.PutUint64(buf, uint64(len(raw)))
	copy(buf[configChunk:], raw)
	keys := make([]uint32, 1+chunks)
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, rows(buf, configChunk), nil); err != nil {
		m.Close()
		return nil, fmt.Errorf("write config map: %w", err)
	}
	return m, nil
}

// readConfigMap returns the bytes newConfigMap stored.
func readConfigMap(m *ebpf.Map) ([]byte, error) {
	buf := make([]byte, configChunk)
	if err := m.Lookup(uint32(0), buf); err != nil {
		return nil, fmt.Errorf("read config map: %w", err)
	}
	n := ne.Uint64(buf)
	if n > configMaxBytes || n > uint64(m.MaxEntries()-1)*configChunk {
		return nil, fmt.Errorf("read config map: length %d does not fit", n)
	}
	out := make([]byte, 0, n)
	for i := uint32(1); uint64(len(out)) < n; i++ {
		if err := m.Lookup(i, buf); err != nil {
			return nil, fmt.Errorf("read config map: %w", err)
		}
		out = append(out, buf[:min(configChunk, int(n)-len(out))]...)
	}
	return out, nil
}

// writeDefault publishes a table's default miss action: a new one-slot
// array replaces the previous one in the outer map, so a packet reads
// either the old action or the new one, never a mix. nil removes it
// (tbl_read returns NULL on a miss).
func (p *pipeline) writeDefault(ts *tableState, ac *translator.ActionCall) error {
	name := ts.plan.table.Name
	if ac == nil {
		if err := ts.dflt.Delete(uint32(0)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return mapError(err, "table %s: clear default action", name)
		}
		return nil
	}
	slot := make([]byte, slotSize)
	if err := encodeAction(slot, ac, flagDefaultMiss, p.ports); err != nil {
		return err
	}
	inner, err := ebpf.NewMap(ts.bind.spec.Maps[ts.plan.defaultsMap()].InnerMap.Copy())
	if err != nil {
		return mapError(err, "table %s: create default action slot", name)
	}
	defer inner.Close()
	if err := inner.Put(uint32(0), slot); err != nil {
		return mapError(err, "table %s: write default action", name)
	}
	if err := ts.dflt.Put(uint32(0), inner); err != nil {
		return mapError(err, "table %s: publish default action", name)
	}
	return nil
}

// publishMasks replaces a ternary table's mask list with list, the same
// way writeDefault replaces a default action.
func (p *pipeline) publishMasks(ts *tableState, list []byte) error {
	name := ts.plan.table.Name
	inner, err := ebpf.NewMap(ts.bind.spec.Maps[ts.plan.masksMap()].InnerMap.Copy())
	if err != nil {
		return mapError(err, "table %s: create mask list", name)
	}
	defer inner.Close()
	if err := inner.Put(uint32(0), list); err != nil {
		return mapError(err, "table %s: write mask list", name)
	}
	if err := ts.masks.Put(uint32(0), inner); err != nil {
		return mapError(err, "table %s: publish mask list", name)
	}
	ts.tss.published = list
	return nil
}

// counters sums a table's per-CPU counters (struct p4tc_table_stats).
func (ts *tableState) counters() (Counters, error) {
	var per []struct{ Hits, Misses, Created, CreateFailed uint64 }
	if err := ts.stats.Lookup(uint32(0), &per); err != nil {
		return Counters{}, fmt.Errorf("read counters of table %s: %w", ts.plan.table.Name, err)
	}
	var c Counters
	for _, x := range per {
		c.Hits += x.Hits
		c.Misses += x.Misses
		c.Created += x.Created
		c.CreateFailed += x.CreateFailed
	}
	return c, nil
}
