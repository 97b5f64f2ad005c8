package ebpfdp

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/p4tcd/p4tcd/translator"
)

// Restore adopts the datapath a previous p4tcd left pinned under the pin
// root (KeepForwarding) and reads it back, as `tc p4ctrl get` dumps a
// running P4TC pipeline: the committed config from the
// config map, exact and LPM entries from their maps (with the extras of
// their side records), ternary entries and non-initial default entries
// from their side records. Forwarding is not interrupted: the program
// keeps running, its maps are only read, and ports are re-attached only
// where they do not run it. It returns (nil, nil) when nothing is pinned.
func (b *Backend) Restore() (*translator.Snapshot, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	gs, err := b.gens()
	if err != nil || len(gs) == 0 {
		return nil, err
	}
	links, err := loadLinks(filepath.Join(b.root, "links"))
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	closeLinks := func() {
		for _, l := range links {
			l.Close()
		}
	}
	if dp, _ := cpuPortNames(b.opts.DeviceID); b.opts.CPUPort != 0 && links[dp] != nil {
		// The previous p4tcd had a CPU port: the datapath still uses it.
		if err := b.openCPULocked(); err != nil {
			closeLinks()
			return nil, fmt.Errorf("restore: %w", err)
		}
	}
	var ifindex map[uint32]uint32
	if err := b.ns.do(func(h *netlink.Handle) (err error) {
		ifindex, err = resolvePorts(h, b.allPorts())
		return err
	}); err != nil {
		closeLinks()
		return nil, fmt.Errorf("restore: %w", err)
	}
	ports := newPortMap(ifindex)
	gen := b.runningGen(gs, links)
	p, raw, err := openPipeline(b.genDir(gen), gen, ports, b.log)
	if err != nil {
		closeLinks()
		return nil, fmt.Errorf("restore generation %d: %w", gen, err)
	}
	// A batch the previous p4tcd began and never answered is taken back
	// before anything is read.
	seq, undone, err := p.rollback()
	if err != nil {
		closeLinks()
		p.close()
		return nil, fmt.Errorf("restore generation %d: %w", gen, err)
	}
	if undone > 0 {
		b.log.Warn("rolled back a Write that was never answered", "batch", seq, "changes", undone)
	}
	entries, err := p.readBack()
	if err != nil {
		closeLinks()
		p.close()
		return nil, fmt.Errorf("restore generation %d: %w", gen, err)
	}
	snap := &translator.Snapshot{Config: raw, Entries: entries}
	if err := p.restoreExterns(snap); err != nil {
		closeLinks()
		p.close()
		return nil, fmt.Errorf("restore generation %d: %w", gen, err)
	}
	xlinks, err := loadLinks(b.xdpLinkPin(""))
	if err != nil {
		closeLinks()
		p.close()
		return nil, fmt.Errorf("restore: %w", err)
	}
	b.cur, b.ports = p, ports
	for name, l := range links {
		b.atts[name] = &attachment{ifname: name, tcx: l}
	}
	for name, l := range xlinks {
		b.xatts[name] = &attachment{ifname: name, tcx: l, mode: b.opts.XDPMode}
	}
	if err := b.adoptPorts(ifindex); err != nil {
		// Leave what is pinned for another try: Close must not take it
		// down.
		for _, as := range []map[string]*attachment{b.atts, b.xatts} {
			for _, a := range as {
				if a.tcx != nil {
					a.tcx.Close()
				}
			}
		}
		b.atts, b.xatts = map[string]*attachment{}, map[string]*attachment{}
		p.close()
		b.cur, b.ports = nil, nil
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := b.startStream(p, ifindex); err != nil {
		b.log.Warn("packet I/O and digests not restored", "err", err)
	}
	b.followLinks(p)
	b.removeStale()
	b.startSweeper()
	b.log.Info("pipeline restored", "pipeline", p.cfg.Program.Name, "generation", gen, "entries", len(entries), "xdp", p.xdp != nil)
	return snap, nil
}

// runningGen picks the generation whose program the tcx links run, or the
// newest one.
func (b *Backend) runningGen(gs []uint64, links map[string]link.Link) uint64 {
	running := map[ebpf.ProgramID]bool{}
	for _, l := range links {
		if info, err := l.Info(); err == nil {
			running[info.Program] = true
		}
	}
	for i := len(gs) - 1; i >= 0; i-- {
		prog, err := ebpf.LoadPinnedProgram(filepath.Join(b.genDir(gs[i]), "prog"), nil)
		if err != nil {
			continue
		}
		info, err := prog.Info()
		prog.Close()
		if id, ok := info.ID(); err == nil && ok && running[id] {
			return gs[i]
		}
	}
	return gs[len(gs)-1]
}

// adoptPorts makes every --port run the restored program and detaches
// p4tcd's links from interfaces that are no longer ports.
func (b *Backend) adoptPorts(ifindex map[uint32]uint32) error {
	want := map[string]bool{}
	for _, name := range b.allPorts() {
		want[name] = true
	}
	return b.ns.do(func(h *netlink.Handle) error {
		for name, a := range b.atts {
			if !want[name] {
				if err := detach(h, a, b.linkPin(name)); err != nil {
					b.log.Warn("stale port not detached", "port", name, "err", err)
				}
				delete(b.atts, name)
			}
		}
		progID := ebpf.ProgramID(0)
		if info, err := b.cur.prog.Info(); err == nil {
			progID, _ = info.ID()
		}
		for _, port := range sortedPorts(b.allPorts()) {
			name := b.allPorts()[port]
			a := b.atts[name]
			if a == nil {
				a = &attachment{ifname: name}
				b.atts[name] = a
			}
			a.ifindex = int(ifindex[port])
			if a.tcx != nil {
				if info, err := a.tcx.Info(); err == nil && info.Program == progID {
					continue
				}
			}
			if err := attach(h, a, b.cur.prog, b.linkPin(name)); err != nil {
				return fmt.Errorf("port %d: %w", port, err)
			}
		}
		return b.adoptXDP(ifindex)
	})
}

// adoptXDP makes every --port run the restored XDP tier (when there is
// one), and detaches p4tcd's XDP programs elsewhere. It runs in the
// ports' namespace.
func (b *Backend) adoptXDP(ifindex map[uint32]uint32) error {
	want := map[string]bool{}
	if b.cur.xdp != nil {
		for _, name := range b.allPorts() {
			want[name] = true
		}
	}
	for name, a := range b.xatts {
		if !want[name] {
			if err := detachXDP(a, b.xdpLinkPin(name)); err != nil {
				b.log.Warn("stale xdp program not detached", "port", name, "err", err)
			}
			delete(b.xatts, name)
		}
	}
	if b.cur.xdp == nil {
		return nil
	}
	progID := ebpf.ProgramID(0)
	if info, err := b.cur.xdp.prog.Info(); err == nil {
		progID, _ = info.ID()
	}
	for _, port := range sortedPorts(b.allPorts()) {
		name := b.allPorts()[port]
		a := b.xatts[name]
		if a == nil {
			a = &attachment{ifname: name}
			b.xatts[name] = a
		}
		a.ifindex = int(ifindex[port])
		if a.tcx != nil {
			if info, err := a.tcx.Info(); err == nil && info.Program == progID {
				continue
			}
		}
		if err := os.MkdirAll(b.xdpLinkPin(""), 0o700); err != nil {
			return fmt.Errorf("create pin root: %w", err)
		}
		if err := attachXDP(a, b.cur.xdp.prog, b.xdpLinkPin(name), b.opts.XDPMode); err != nil {
			return fmt.Errorf("port %d: %w", port, err)
		}
	}
	return nil
}

// openPipeline opens a pinned pipeline generation.
func openPipeline(dir string, gen uint64, ports *portMap, log *slog.Logger) (*pipeline, []byte, error) {
	cm, err := ebpf.LoadPinnedMap(filepath.Join(dir, configMapName), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("open config map: %w", err)
	}
	raw, err := readConfigMap(cm)
	if err != nil {
		cm.Close()
		return nil, nil, err
	}
	c, err := translator.UnmarshalConfig(raw)
	if err != nil {
		cm.Close()
		return nil, nil, fmt.Errorf("pinned config: %w", err)
	}
	plans, tb, xb, err := prepare(c)
	if err != nil {
		cm.Close()
		return nil, nil, fmt.Errorf("pinned config: %w", err)
	}
	p := &pipeline{gen: gen, dir: dir, cfg: c, config: cm, ports: ports, log: log, idle: newIdleIndex()}
	p.tier = tier{kind: tierTC, bind: tb, byID: map[uint32]*tableState{}}
	fail := func(err error) (*pipeline, []byte, error) {
		p.close()
		return nil, nil, err
	}
	if err := openTier(&p.tier, plans, dir); err != nil {
		return fail(err)
	}
	if xb != nil {
		p.xdp = &tier{kind: tierXDP, bind: xb, byID: map[uint32]*tableState{}}
		if err := openTier(p.xdp, plans, tierDir(dir, tierXDP)); err != nil {
			return fail(err)
		}
		p.shareHandles()
	}
	p.wireExterns()
	if p.side.m, err = ebpf.LoadPinnedMap(filepath.Join(dir, sideMapName), nil); err != nil {
		return fail(fmt.Errorf("open side map: %w", err))
	}
	if p.jr, err = openJournal(dir); err != nil {
		return fail(err)
	}
	p.attachJournal()
	return p, raw, nil
}

// openTier opens the pinned program and maps of a tier.
func openTier(t *tier, plans []*tablePlan, dir string) error {
	var err error
	if t.prog, err = ebpf.LoadPinnedProgram(filepath.Join(dir, "prog"), nil); err != nil {
		return fmt.Errorf("open %s program: %w", t.kind, err)
	}
	open := func(name string) (*ebpf.Map, error) {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", name), nil)
		if err != nil {
			return nil, fmt.Errorf("open map %s: %w", name, err)
		}
		return m, nil
	}
	if t.kind == tierTC {
		t.stream = openStreamMaps(filepath.Join(dir, "maps"))
		if t.ext, err = openExterns(dir, t.bind, plans); err != nil {
			return err
		}
	}
	for _, pl := range plans {
		ts := &tableState{plan: pl, bind: t.bind, tier: t.kind, masksCap: t.bind.masks[pl.id]}
		t.tables = append(t.tables, ts)
		t.byID[pl.table.ID] = ts
		if ts.dflt, err = open(pl.defaultsMap()); err != nil {
			return err
		}
		if ts.stats, err = open(pl.statsMap()); err != nil {
			return err
		}
		if pl.kind != kindKeyless {
			if ts.entries, err = open(pl.entriesMap()); err != nil {
				return err
			}
		}
		if pl.kind == kindExact {
			if ts.pool, err = open(pl.poolMap()); err != nil {
				return err
			}
		}
		if pl.kind == kindTSS {
			if ts.masks, err = open(pl.masksMap()); err != nil {
				return err
			}
			if ts.mprio, err = open(pl.mprioMap()); err != nil {
				return err
			}
			ts.tss = newTSS(pl)
		}
	}
	return t.mapMemory()
}

// readBack reads every controller entry of an opened pipeline and
// rebuilds p4tcd's state of it (side records, tuple spaces of both
// tiers, the idle index). Entries the datapath created stay in their maps,
// with their pool slots and ages: Reads list them live.
func (p *pipeline) readBack() ([]translator.SavedEntry, error) {
	recs, err := p.side.load()
	if err != nil {
		return nil, err
	}
	used := map[sideRef]bool{}
	var out []translator.SavedEntry
	for _, ts := range p.tables {
		tid := ts.plan.table.ID
		if rec, ok := recs[sideRef{table: tid}]; ok {
			se, _, err := decodeSaved(rec)
			if err != nil || !se.IsDefault || se.TableID != tid {
				return nil, fmt.Errorf("table %s: bad default record: %v", ts.plan.table.Name, err)
			}
			used[sideRef{table: tid}] = true
			out = append(out, se)
		}
		var got []translator.SavedEntry
		switch ts.plan.kind {
		case kindExact, kindLPM:
			got, err = p.readDirect(ts, recs, used)
		case kindTSS:
			got, err = p.readTSS(recs, used, tid)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	var stale []sideRef
	for ref := range recs {
		if !used[ref] {
			stale = append(stale, ref)
		}
	}
	if len(stale) > 0 {
		p.log.Info("dropping side records without entries", "records", len(stale))
		if err := p.side.del(stale); err != nil {
			p.log.Warn("stale side records not removed", "err", err)
		}
	}
	for i := range out {
		se := &out[i]
		if se.IsDefault {
			continue
		}
		if se.Origin != translator.OriginDatapath {
			tc, xdp := p.tiersOf(&translator.Entry{Origin: se.Origin, Placement: se.Placement})
			if ts := p.byID[se.TableID]; tc && ts != nil {
				ts.ctl++
			}
			if p.xdp != nil {
				if ts := p.xdp.byID[se.TableID]; xdp && ts != nil {
					ts.ctl++
				}
			}
		}
		if se.IdleTimeoutNs == 0 {
			continue
		}
		t := p.cfg.Tables[se.TableID]
		e, err := entryOf(t, se)
		if err != nil {
			return nil, err
		}
		e.IdleTimeoutNs, e.Placement = se.IdleTimeoutNs, se.Placement
		p.idle.track([]translator.Op{{Kind: translator.OpInsert, Entry: e}})
	}
	return out, nil
}

// readDirect reads an exact or LPM table from its map, and sets the use
// of its pool to the entries the datapath created that it found there.
func (p *pipeline) readDirect(ts *tableState, recs map[sideRef][]byte, used map[sideRef]bool) ([]translator.SavedEntry, error) {
	pl := ts.plan
	var out []translator.SavedEntry
	_, poolBefore := ts.poolUsage()
	var created uint32
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		if pl.datapathCreated(v) {
			created++
			continue
		}
		match, err := pl.decodeKey(k, p.ports)
		if err != nil {
			return nil, err
		}
		se := translator.SavedEntry{TableID: pl.table.ID, Match: match}
		if err := p.decodeValue(pl, v, &se); err != nil {
			return nil, err
		}
		ref := sideRef{table: pl.table.ID, id: entryID(match, 0)}
		if rec, ok := recs[ref]; ok {
			x, _, err := decodeSaved(rec)
			if err != nil {
				return nil, fmt.Errorf("table %s: side record: %w", pl.table.Name, err)
			}
			se.ControllerMetadata, se.Metadata, se.IdleTimeoutNs = x.ControllerMetadata, x.Metadata, x.IdleTimeoutNs
			se.Const, se.Origin, se.Placement = x.Const, x.Origin, x.Placement
			se.OneShot, se.Meter = x.OneShot, x.Meter
			used[ref] = true
		}
		out = append(out, se)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("table %s: read entries: %w", pl.table.Name, err)
	}
	if ts.poolMem != nil {
		if err := p.settlePool(ts, poolBefore, created); err != nil {
			return nil, err
		}
	}
	// Entries placed hw are only in the XDP tier's map; their side record
	// holds them whole.
	if p.xdp == nil {
		return out, nil
	}
	xts := p.xdp.byID[pl.table.ID]
	for ref, rec := range recs {
		if ref.table != pl.table.ID || ref.id == (sideID{}) || used[ref] {
			continue
		}
		se, _, err := decodeSaved(rec)
		if err != nil || se.Placement != translator.PlaceHW {
			continue
		}
		e, err := entryOf(pl.table, &se)
		if err != nil {
			continue
		}
		if err := pl.encodeKey(k, e.Match, p.ports); err != nil {
			return nil, err
		}
		if err := xts.entries.Lookup(k, v); err != nil {
			continue // half written: dropped with the stale records
		}
		p.noteCell(pl, &se, v)
		used[ref] = true
		out = append(out, se)
	}
	return out, nil
}

// readTSS rebuilds a ternary table, in each tier, from its side records,
// keeping the mask ids the datapath uses, and rewrites the TSS hashes and
// mask lists where they disagree with that state.
func (p *pipeline) readTSS(recs map[sideRef][]byte, used map[sideRef]bool, tid uint32) ([]translator.SavedEntry, error) {
	type saved struct {
		se     translator.SavedEntry
		handle uint32
	}
	pl := p.byID[tid].plan
	var list []saved
	for ref, rec := range recs {
		if ref.table != tid || ref.id == (sideID{}) {
			continue
		}
		se, handle, cell, err := decodeSavedCell(rec)
		if err != nil {
			return nil, fmt.Errorf("table %s: side record: %w", pl.table.Name, err)
		}
		if c := p.byID[tid].cells; c != nil {
			c.note(ref.id, cell)
		}
		used[ref] = true
		list = append(list, saved{se, handle})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].handle < list[j].handle })
	for _, t := range p.tiers() {
		ts := t.byID[tid]
		s := ts.tss
		s.hint = p.publishedMasks(ts)
		for _, x := range list {
			e, err := entryOf(pl.table, &x.se)
			if err != nil {
				return nil, err
			}
			e.Placement = x.se.Placement
			if tc, xdp := p.tiersOf(e); (t.kind == tierTC && !tc) || (t.kind == tierXDP && !xdp) {
				continue
			}
			te, err := s.newEntry(e, p.ports)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", pl.table.Name, err)
			}
			te.handle = x.handle
			*s.handles = max(*s.handles, x.handle)
			s.insert(te)
		}
		s.hint = nil
		if err := p.resyncAll(ts); err != nil {
			return nil, err
		}
		s.assignSlots()
		p.settleMasks(ts)
	}
	out := make([]translator.SavedEntry, len(list))
	for i, x := range list {
		out[i] = x.se
	}
	return out, nil
}

// publishedMasks reads the mask list a tier's datapath walks and returns
// its masks by bits, so a rebuilt tuple space keeps their ids and slots.
func (p *pipeline) publishedMasks(ts *tableState) map[string]maskRec {
	s := ts.tss
	var inner *ebpf.Map
	if err := ts.masks.Lookup(uint32(0), &inner); err == nil {
		buf := make([]byte, inner.ValueSize())
		if err := inner.Lookup(uint32(0), buf); err == nil {
			s.published = buf
		}
		inner.Close()
	}
	hint := map[string]maskRec{}
	for _, m := range s.parseMasklist(s.published) {
		hint[string(m.bits)] = m
		s.nextMask = max(s.nextMask, m.id+1)
	}
	return hint
}

// resyncAll makes the TSS hash hold exactly the winners of the state.
func (p *pipeline) resyncAll(ts *tableState) error {
	pl, s := ts.plan, ts.tss
	have := map[string][]byte{}
	k, v := make([]byte, pl.keySize), make([]byte, pl.valueSize())
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		have[string(k)] = append([]byte(nil), v...)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("table %s: read ternary keys: %w", pl.table.Name, err)
	}
	var fix []string
	for key, sl := range s.slots {
		if !pl.sameValue(have[key], sl.winner().value) {
			fix = append(fix, key)
		}
	}
	for key := range have {
		if s.slots[key] == nil {
			fix = append(fix, key)
		}
	}
	if len(fix) > 0 {
		p.log.Warn("ternary keys disagreed with the side records; rewritten", "table", pl.table.Name, "keys", len(fix))
		p.resync(ts, fix)
	}
	return nil
}

// sameValue compares two values of a table, but for the time of the last
// hit in aged tables.
func (p *tablePlan) sameValue(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if !p.aged() {
		return bytes.Equal(a, b)
	}
	off := p.agedOff()
	return bytes.Equal(a[:off], b[:off]) && bytes.Equal(a[off+8:], b[off+8:])
}

// entryOf rebuilds the translator entry a SavedEntry describes, as far as
// the datapath needs it (match, priority, action).
func entryOf(t *translator.Table, se *translator.SavedEntry) (*translator.Entry, error) {
	if (se.Member != 0 || se.Group != 0) && len(se.Match) == len(t.Fields) {
		return &translator.Entry{Table: t, Match: se.Match, Priority: se.Priority,
			Indirect: &translator.IndirectAction{Member: se.Member, Group: se.Group}}, nil
	}
	ar := t.Actions[se.ActionID]
	if ar == nil || len(se.Params) != len(ar.Action.Params) || len(se.Match) != len(t.Fields) {
		return nil, fmt.Errorf("table %s: side record does not fit the table", t.Name)
	}
	return &translator.Entry{
		Table: t, Match: se.Match, Priority: se.Priority,
		Action: &translator.ActionCall{Action: ar.Action, Params: se.Params},
	}, nil
}
