package translator

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Read answers a ReadRequest's entities (P4Runtime §13 "Read RPC"): each is
// a filter. Matching entities are passed to emit after the device lock is
// released, so a slow client never holds up Writes; what emit receives is a
// consistent snapshot, taken while no Write was in progress (counters and
// registers are read from the datapath inside that snapshot). errs has one
// error per request, nil where the request succeeded, and is nil when all
// did. err is set when the whole Read is refused (no pipeline) or emit
// failed.
func (d *Device) Read(entities []*p4v1.Entity, sc *Scope, emit func(*p4v1.Entity) error) (errs []error, err error) {
	return d.ReadEncoded(entities, sc, func(e *p4v1.Entity, wire []byte) error {
		if e == nil {
			e = &p4v1.Entity{}
			if err := proto.Unmarshal(wire, e); err != nil {
				return fmt.Errorf("decode stored entry: %w", err)
			}
		}
		return emit(e)
	})
}

// ReadEncoded is Read for a server that encodes the response itself: emit
// also receives the entity's wire encoding when one is at hand (nil
// otherwise), and then may receive a nil entity: entries the Device keeps
// as their encoding (Entry.wire) are not decoded for it. A stored entry
// read plainly — no counter, meter or hit time asked for — is encoded
// once, on its first Read, and its encoding reused by later Reads
// (entries are immutable): ONOS re-reads every table every 30 s.
func (d *Device) ReadEncoded(entities []*p4v1.Entity, sc *Scope, emit func(e *p4v1.Entity, wire []byte) error) (errs []error, err error) {
	now := timeNow()
	d.mu.RLock()
	if d.cfg == nil {
		d.mu.RUnlock()
		return nil, errorf(ErrPrecondition, "no forwarding pipeline config: call SetForwardingPipelineConfig first")
	}
	r := &reader{d: d, sc: sc}
	fail := func(i int, e error) {
		if errs == nil {
			errs = make([]error, len(entities))
		}
		errs[i] = e
	}
	for i, ent := range entities {
		mark := r.mark()
		r.req = int32(i)
		var rerr error
		switch x := ent.GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			rerr = r.tableEntries(x.TableEntry)
		case *p4v1.Entity_ActionProfileMember:
			rerr = r.members(x.ActionProfileMember)
		case *p4v1.Entity_ActionProfileGroup:
			rerr = r.groups(x.ActionProfileGroup)
		case *p4v1.Entity_CounterEntry:
			rerr = r.counters(x.CounterEntry)
		case *p4v1.Entity_DirectCounterEntry:
			rerr = r.directCounters(x.DirectCounterEntry)
		case *p4v1.Entity_MeterEntry:
			rerr = r.meters(x.MeterEntry)
		case *p4v1.Entity_DirectMeterEntry:
			rerr = r.directMeters(x.DirectMeterEntry)
		case *p4v1.Entity_RegisterEntry:
			rerr = r.registers(x.RegisterEntry)
		case *p4v1.Entity_PacketReplicationEngineEntry:
			rerr = r.pre(x.PacketReplicationEngineEntry)
		case *p4v1.Entity_ValueSetEntry:
			rerr = r.valueSets(x.ValueSetEntry)
		case *p4v1.Entity_DigestEntry:
			rerr = r.digests(x.DigestEntry)
		case *p4v1.Entity_ExternEntry:
			rerr = errorf(ErrUnsupported, "ExternEntry: p4tcd implements no architecture-specific externs")
		case nil:
			rerr = errorf(ErrInvalid, "entity %d has no entity set (wildcard reads of everything are not allowed)", i)
		default:
			rerr = errorf(ErrUnsupported, "reading %s entities is not supported", entityName(ent))
		}
		if rerr != nil {
			r.reset(mark)
			fail(i, rerr)
		}
	}
	for i, e := range r.readLive() {
		fail(i, e)
	}
	d.mu.RUnlock()

	ht, _ := d.backend.(HitTracker)
	for _, h := range r.hits {
		if h.ent != nil {
			if err := emit(h.ent, nil); err != nil {
				return errs, err
			}
			continue
		}
		meter := h.tp.GetMeterConfig() != nil && h.e.Direct != nil && h.e.Direct.Meter != nil
		extra := h.tp.GetTimeSinceLastHit() != nil || h.cell > 0 || meter
		if !extra && h.e.Origin == OriginController {
			ent, wire := h.e.encoded()
			if err := emit(ent, wire); err != nil {
				return errs, err
			}
			continue
		}
		te := h.e.readProto()
		if extra {
			te = cloneEntryProto(te)
		}
		if h.tp.GetTimeSinceLastHit() != nil {
			var elapsed int64
			switch {
			case h.e.Origin == OriginDatapath:
				elapsed = h.sinceHit.Nanoseconds()
			case ht != nil && h.realized:
				if d, ok := ht.SinceLastHit(h.e); ok {
					elapsed = d.Nanoseconds()
					break
				}
				fallthrough
			case h.e.written != 0:
				// A backend that does not track hits: the time since
				// the entry was written.
				elapsed = now.UnixNano() - h.e.written
			}
			te.TimeSinceLastHit = &p4v1.TableEntry_IdleTimeout{ElapsedNs: elapsed}
		}
		if h.cell > 0 {
			te.CounterData = r.ctrCells[h.cell-1].Data.proto()
		}
		if meter {
			te.MeterConfig = h.e.Direct.Meter.proto()
		}
		if err := emit(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}, nil); err != nil {
			return errs, err
		}
	}
	return errs, nil
}

// encoded returns the entry as a Read returns it plainly, and its wire
// encoding, made on first use. An entry kept as wire returns that
// encoding alone (a nil Entity): decoding it is the caller's choice.
func (e *Entry) encoded() (*p4v1.Entity, []byte) {
	if e.wire != nil {
		return nil, e.wire
	}
	ent := &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: e.proto}}
	if e.alloc == nil {
		return ent, nil
	}
	if w := e.alloc.wire.Load(); w != nil {
		return ent, *w
	}
	w, err := proto.Marshal(ent)
	if err != nil {
		return ent, nil
	}
	e.alloc.wire.Store(&w)
	return ent, w
}

// reader collects what a Read selects, under the device's read lock.
type reader struct {
	d    *Device
	sc   *Scope
	req  int32 // index of the request being read
	hits []readHit
	// ctrCells and regCells are the cells whose live values the
	// backend gives; ctrDst and regDst say where each goes (nil for a
	// table entry's counter_data, which the emit loop fills).
	ctrCells []CounterCell
	ctrDst   []*p4v1.CounterData
	ctrReq   []int32
	regCells []RegisterCell
	regDst   []*p4v1.RegisterEntry
	regReq   []int32
}

// readHit is a table entry a request selected, or a ready entity.
type readHit struct {
	e *Entry
	// tp is the request's TableEntry filter (table entry hits).
	tp *p4v1.TableEntry
	// ent is a ready entity (externs).
	ent *p4v1.Entity
	// cell is 1 + the index in ctrCells of the entry's direct counter,
	// when the request asked for counter_data; 0 otherwise.
	cell int
	// req index, to drop the hits of a request that failed later.
	reqIdx int32
	// realized: the backend runs the config e belongs to.
	realized bool
	// sinceHit is the time since a datapath-created entry was hit.
	sinceHit time.Duration
}

type readMark struct{ hits, ctrs, regs int }

func (r *reader) mark() readMark { return readMark{len(r.hits), len(r.ctrCells), len(r.regCells)} }

func (r *reader) reset(m readMark) {
	r.hits = r.hits[:m.hits]
	r.ctrCells, r.ctrDst, r.ctrReq = r.ctrCells[:m.ctrs], r.ctrDst[:m.ctrs], r.ctrReq[:m.ctrs]
	r.regCells, r.regDst, r.regReq = r.regCells[:m.regs], r.regDst[:m.regs], r.regReq[:m.regs]
}

func (r *reader) entity(e *p4v1.Entity) {
	r.hits = append(r.hits, readHit{ent: e, reqIdx: r.req})
}

// addCounter asks for a counter cell's live value; dst receives it.
func (r *reader) addCounter(c CounterCell, dst *p4v1.CounterData) int {
	r.ctrCells = append(r.ctrCells, c)
	r.ctrDst = append(r.ctrDst, dst)
	r.ctrReq = append(r.ctrReq, r.req)
	return len(r.ctrCells)
}

// readLive asks the backend for the live values of the counter and register
// cells collected, and fills the entities. It returns the errors of the
// requests whose cells could not be read.
func (r *reader) readLive() map[int]error {
	var failed map[int]error
	failAll := func(reqs []int32, err error) {
		if failed == nil {
			failed = map[int]error{}
		}
		if !isSentinel(err) {
			err = errorf(ErrInternal, "read from the datapath: %v", err)
		}
		for _, q := range reqs {
			failed[int(q)] = err
		}
	}
	if eb := r.d.externs; eb != nil && (len(r.ctrCells) > 0 || len(r.regCells) > 0) {
		r.d.readMu.Lock()
		if len(r.ctrCells) > 0 {
			if err := eb.ReadCounters(r.ctrCells); err != nil {
				failAll(r.ctrReq, err)
			}
		}
		if len(r.regCells) > 0 {
			if err := eb.ReadRegisters(r.regCells); err != nil {
				failAll(r.regReq, err)
			}
		}
		r.d.readMu.Unlock()
	}
	for k, dst := range r.ctrDst {
		if dst != nil {
			dst.ByteCount, dst.PacketCount = r.ctrCells[k].Data.Bytes, r.ctrCells[k].Data.Packets
		}
	}
	for k, dst := range r.regDst {
		c := &r.regCells[k]
		dst.Data = p4Data(c.Register, normalizeCell(c.Register, c.Value))
	}
	if failed != nil {
		for i := range r.hits {
			if failed[int(r.hits[i].reqIdx)] != nil {
				r.hits[i].ent, r.hits[i].e = nil, nil
			}
		}
		r.hits = slices.DeleteFunc(r.hits, func(h readHit) bool { return h.ent == nil && h.e == nil })
	}
	return failed
}

// tableEntries selects the entries a TableEntry filter names (P4Runtime
// §9.1.6 "Wildcard Reads").
func (r *reader) tableEntries(req *p4v1.TableEntry) error {
	d, sc := r.d, r.sc
	cfg := d.cfg
	if req.GetMeterCounterData() != nil {
		return errorf(ErrUnsupported, "per-colour meter counters (meter_counter_data) are not supported")
	}
	if req.GetTableId() == 0 {
		if len(req.GetMatch()) > 0 || req.GetPriority() != 0 || req.GetAction() != nil ||
			req.GetControllerMetadata() != 0 || len(req.GetMetadata()) > 0 {
			return errorf(ErrInvalid, "table_id 0 reads every table: no match, action, priority or metadata filter can be used with it")
		}
		for _, t := range cfg.TableOrder {
			if sc.allows(t.ID) {
				if err := r.collect(t, req, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	t := cfg.Tables[req.GetTableId()]
	if t == nil {
		return errorf(ErrInvalid, "table id %#x is not a table of the pipeline%s", req.GetTableId(), cfg.kindHint(req.GetTableId()))
	}
	if !sc.allows(t.ID) {
		return nil // the role filters the table out
	}
	if req.GetIsDefaultAction() {
		if len(req.GetMatch()) > 0 {
			return errorf(ErrInvalid, "table %s: the default entry has no match", t.Name)
		}
		return r.collect(t, req, nil)
	}
	if len(req.GetMatch()) == 0 {
		return r.collect(t, req, nil)
	}
	key := newEntry(t)
	key.Priority = req.GetPriority()
	if _, err := cfg.parseMatch(t, req, key, false); err != nil {
		return err
	}
	if !t.NeedsPriority() || req.GetPriority() != 0 {
		if e := d.st.tables[t.ID].entries[key.skey]; e != nil {
			if matches(e, req) {
				r.hit(e, req)
			}
			return nil
		}
		return r.readDatapathEntry(t, req, key)
	}
	// A match without priority on a table with priorities: every priority.
	return r.collect(t, req, key)
}

// hit records a table entry; with counter_data requested (and a datapath
// that counts) its direct counter is read too. A datapath without direct
// counters leaves counter_data out rather than fail the read: ONOS asks for
// it in every flow poll.
func (r *reader) hit(e *Entry, req *p4v1.TableEntry) {
	h := readHit{e: e, tp: req, reqIdx: r.req, realized: r.d.realized}
	if req.GetCounterData() != nil && e.Table.DirectCounter != nil && r.d.caps&ExternDirectCounters != 0 {
		c := CounterCell{Counter: e.Table.DirectCounter, Entry: e}
		if e.Direct != nil {
			c.Data = e.Direct.Counter
		}
		h.cell = r.addCounter(c, nil)
	}
	r.hits = append(r.hits, h)
}

// collect selects the entries of t that req's filters select, the
// datapath-created ones included; key, when set, selects entries with that
// match at any priority.
func (r *reader) collect(t *Table, req *p4v1.TableEntry, key *Entry) error {
	ts := r.d.st.tables[t.ID]
	if req.GetIsDefaultAction() {
		if matches(ts.deflt, req) {
			r.hit(ts.deflt, req)
		}
		return nil
	}
	for _, e := range ts.entries {
		if key != nil && !sameMatch(e, key) {
			continue
		}
		if matches(e, req) {
			r.hit(e, req)
		}
	}
	return r.collectDatapath(t, req, key)
}

// datapathCreator is the backend when it creates entries in t itself and
// runs the Device's config.
func (d *Device) datapathCreator(t *Table) DatapathCreator {
	dc, ok := d.backend.(DatapathCreator)
	if !ok || !d.realized || d.cfg.Program.Settings(t.ID).PoolSize == 0 {
		return nil
	}
	return dc
}

// dpHit records a datapath-created entry (read live from the backend).
func (r *reader) dpHit(e *Entry, req *p4v1.TableEntry, since time.Duration) {
	r.hits = append(r.hits, readHit{e: e, tp: req, reqIdx: r.req, realized: true, sinceHit: since})
}

// collectDatapath selects the datapath-created entries of t that req's
// filters select.
func (r *reader) collectDatapath(t *Table, req *p4v1.TableEntry, key *Entry) error {
	d := r.d
	dc := d.datapathCreator(t)
	if dc == nil {
		return nil
	}
	des, err := dc.DatapathEntries(t.ID)
	if err != nil {
		return fmt.Errorf("read datapath-created entries of table %s: %w", t.Name, err)
	}
	for i := range des {
		e, since, err := d.cfg.datapathEntry(&des[i])
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		if key != nil && !sameMatch(e, key) {
			continue
		}
		if matches(e, req) {
			r.dpHit(e, req, since)
		}
	}
	return nil
}

// readDatapathEntry selects the datapath-created entry with key's match,
// if there is one and req selects it.
func (r *reader) readDatapathEntry(t *Table, req *p4v1.TableEntry, key *Entry) error {
	d := r.d
	dc := d.datapathCreator(t)
	if dc == nil {
		return nil
	}
	de, err := dc.LookupDatapathEntry(t.ID, key.Match)
	if err != nil {
		return fmt.Errorf("read datapath-created entry of table %s: %w", t.Name, err)
	}
	if de == nil {
		return nil
	}
	e, since, err := d.cfg.datapathEntry(de)
	if err != nil {
		return fmt.Errorf("table %s: %w", t.Name, err)
	}
	if matches(e, req) {
		r.dpHit(e, req, since)
	}
	return nil
}

// matches applies the non-key filters of a read request.
func matches(e *Entry, req *p4v1.TableEntry) bool {
	if p := req.GetPriority(); p != 0 && e.Priority != p {
		return false
	}
	if m, md := req.GetControllerMetadata(), req.GetMetadata(); m != 0 || len(md) > 0 {
		cookie, meta := e.metadata()
		if m != 0 && cookie != m {
			return false
		}
		if len(md) > 0 && !bytes.Equal(meta, md) {
			return false
		}
	}
	switch a := req.GetAction().GetType().(type) {
	case *p4v1.TableAction_Action:
		if id := a.Action.GetActionId(); id != 0 && (e.Action == nil || e.Action.Action.ID != id) {
			return false
		}
	case *p4v1.TableAction_ActionProfileMemberId:
		if id := a.ActionProfileMemberId; id != 0 && (e.Indirect == nil || e.Indirect.OneShot != nil || e.Indirect.Member != id) {
			return false
		}
	case *p4v1.TableAction_ActionProfileGroupId:
		if id := a.ActionProfileGroupId; id != 0 && (e.Indirect == nil || e.Indirect.OneShot != nil || e.Indirect.Group != id) {
			return false
		}
	}
	return true
}

// sameMatch compares the match part of two entries' store keys (the last
// four bytes are the priority).
func sameMatch(a, b *Entry) bool {
	return len(a.skey) == len(b.skey) && a.skey[:len(a.skey)-4] == b.skey[:len(b.skey)-4]
}

// sortedKeys returns a map's keys in order: extern reads list cells and ids
// in a stable order.
func sortedKeys[V any](m map[uint32]V) []uint32 {
	ks := make([]uint32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// profiles resolves the action_profile_id filter of a member or group read.
func (r *reader) profiles(id uint32, selectorsOnly bool) ([]*ActionProfile, error) {
	cfg := r.d.cfg
	if len(cfg.profileOrder) > 0 {
		if err := r.d.need(ExternActionProfiles, "action profiles"); err != nil {
			return nil, err
		}
	}
	if id == 0 {
		var out []*ActionProfile
		for _, p := range cfg.profileOrder {
			if (p.WithSelector || !selectorsOnly) && r.sc.allows(p.ID) {
				out = append(out, p)
			}
		}
		return out, nil
	}
	p := cfg.Profiles[id]
	if p == nil {
		return nil, errorf(ErrInvalid, "action profile id %#x is not an action profile of the pipeline%s", id, cfg.kindHint(id))
	}
	if selectorsOnly && !p.WithSelector {
		return nil, errorf(ErrInvalid, "action profile %s has no selector, so no groups", p.Name)
	}
	if !r.sc.allows(p.ID) {
		return nil, nil
	}
	return []*ActionProfile{p}, nil
}

// members reads ActionProfileMembers: all of all profiles (ids 0), all of
// one, or one (§9.2.1). Hidden one-shot members are not listed.
func (r *reader) members(req *p4v1.ActionProfileMember) error {
	profs, err := r.profiles(req.GetActionProfileId(), false)
	if err != nil {
		return err
	}
	for _, p := range profs {
		ps := r.d.st.profiles[p.ID]
		if id := req.GetMemberId(); id != 0 {
			if m := ps.members[id]; m != nil && !m.OneShot {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m.proto}})
			}
			continue
		}
		for _, id := range sortedKeys(ps.members) {
			if m := ps.members[id]; !m.OneShot {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: m.proto}})
			}
		}
	}
	return nil
}

// groups reads ActionProfileGroups like members (§9.2.2).
func (r *reader) groups(req *p4v1.ActionProfileGroup) error {
	profs, err := r.profiles(req.GetActionProfileId(), true)
	if err != nil {
		return err
	}
	for _, p := range profs {
		ps := r.d.st.profiles[p.ID]
		if id := req.GetGroupId(); id != 0 {
			if g := ps.groups[id]; g != nil && !g.OneShot {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g.proto}})
			}
			continue
		}
		for _, id := range sortedKeys(ps.groups) {
			if g := ps.groups[id]; !g.OneShot {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g.proto}})
			}
		}
	}
	return nil
}

// cells resolves the index filter of a counter, meter or register read:
// one cell, or all of them.
func cells(ix *p4v1.Index, size int64, what string) (lo, hi int64, err error) {
	idx, all, err := cellIndex(ix, size, what)
	if err != nil {
		return 0, 0, err
	}
	if all {
		return 0, size, nil
	}
	return idx, idx + 1, nil
}

// counters reads CounterEntries: every cell of every counter (counter_id
// 0), of one counter (index unset), or one cell (§9.3.2).
func (r *reader) counters(req *p4v1.CounterEntry) error {
	cfg := r.d.cfg
	list := cfg.counterOrder
	if id := req.GetCounterId(); id != 0 {
		c := cfg.Counters[id]
		if c == nil {
			return errorf(ErrInvalid, "counter id %#x is not an indexed counter of the pipeline%s", id, cfg.kindHint(id))
		}
		list = []*Counter{c}
	} else if req.GetIndex() != nil {
		return errorf(ErrInvalid, "counter_id 0 reads every cell of every counter: index must be unset")
	}
	if len(list) > 0 {
		if err := r.d.need(ExternCounters, "counters"); err != nil {
			return err
		}
	}
	for _, c := range list {
		if !r.sc.allows(c.ID) {
			continue
		}
		lo, hi, err := cells(req.GetIndex(), c.Size, "counter "+c.Name)
		if err != nil {
			return err
		}
		cs := r.d.st.counters[c.ID]
		for i := lo; i < hi; i++ {
			ce := &p4v1.CounterEntry{CounterId: c.ID, Index: &p4v1.Index{Index: i}, Data: &p4v1.CounterData{}}
			r.addCounter(CounterCell{Counter: c, Index: i, Data: cs.get(i)}, ce.Data)
			r.entity(&p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: ce}})
		}
	}
	return nil
}

// directEntries resolves the table_entry of a DirectCounterEntry or
// DirectMeterEntry read: every entry of every table with the resource
// (table_id 0 or no table_entry), every entry of one table (no match), the
// default entry, or one entry (NOT_FOUND when absent, §9.3.1).
func (r *reader) directEntries(te *p4v1.TableEntry, has func(*Table) bool, kind ExternSet, what string) ([]*Entry, error) {
	cfg := r.d.cfg
	var tables []*Table
	if te.GetTableId() == 0 {
		if len(te.GetMatch()) > 0 || te.GetPriority() != 0 || te.GetIsDefaultAction() {
			return nil, errorf(ErrInvalid, "%s: table_id 0 reads every table: no match, priority or default filter can be used with it", what)
		}
		for _, t := range cfg.TableOrder {
			if has(t) {
				tables = append(tables, t)
			}
		}
		if len(tables) > 0 {
			if err := r.d.need(kind, what+"s"); err != nil {
				return nil, err
			}
		}
	} else {
		t := cfg.Tables[te.GetTableId()]
		if t == nil {
			return nil, errorf(ErrInvalid, "%s: table id %#x is not a table of the pipeline%s", what, te.GetTableId(), cfg.kindHint(te.GetTableId()))
		}
		if !has(t) {
			return nil, errorf(ErrInvalid, "%s: table %s has none", what, t.Name)
		}
		if err := r.d.need(kind, what+" of table "+t.Name); err != nil {
			return nil, err
		}
		if !r.sc.allows(t.ID) {
			return nil, nil
		}
		if te.GetIsDefaultAction() || len(te.GetMatch()) > 0 {
			_, e, err := r.d.lookupEntry(te, what)
			if err != nil {
				return nil, err
			}
			return []*Entry{e}, nil
		}
		tables = []*Table{t}
	}
	var out []*Entry
	for _, t := range tables {
		if !r.sc.allows(t.ID) {
			continue
		}
		for _, e := range r.d.st.tables[t.ID].entries {
			if p := te.GetPriority(); p == 0 || e.Priority == p {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// keyProto is the key of an entry as a DirectCounterEntry or
// DirectMeterEntry names it.
func keyProto(e *Entry) *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: e.Table.ID, Match: e.readProto().GetMatch(), Priority: e.Priority, IsDefaultAction: e.IsDefault}
}

func (r *reader) directCounters(req *p4v1.DirectCounterEntry) error {
	es, err := r.directEntries(req.GetTableEntry(), func(t *Table) bool { return t.DirectCounter != nil }, ExternDirectCounters, "direct counter")
	if err != nil {
		return err
	}
	for _, e := range es {
		dc := &p4v1.DirectCounterEntry{TableEntry: keyProto(e), Data: &p4v1.CounterData{}}
		c := CounterCell{Counter: e.Table.DirectCounter, Entry: e}
		if e.Direct != nil {
			c.Data = e.Direct.Counter
		}
		r.addCounter(c, dc.Data)
		r.entity(&p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: dc}})
	}
	return nil
}

// meters reads MeterEntries like counters (§9.4.2). A cell at its default
// config reads back with config unset, as a MODIFY without config wrote it.
func (r *reader) meters(req *p4v1.MeterEntry) error {
	cfg := r.d.cfg
	if req.GetCounterData() != nil {
		return errorf(ErrUnsupported, "per-colour meter counters (counter_data) are not supported")
	}
	list := cfg.meterOrder
	if id := req.GetMeterId(); id != 0 {
		m := cfg.Meters[id]
		if m == nil {
			return errorf(ErrInvalid, "meter id %#x is not an indexed meter of the pipeline%s", id, cfg.kindHint(id))
		}
		list = []*Meter{m}
	} else if req.GetIndex() != nil {
		return errorf(ErrInvalid, "meter_id 0 reads every cell of every meter: index must be unset")
	}
	if len(list) > 0 {
		if err := r.d.need(ExternMeters, "meters"); err != nil {
			return err
		}
	}
	for _, m := range list {
		if !r.sc.allows(m.ID) {
			continue
		}
		lo, hi, err := cells(req.GetIndex(), m.Size, "meter "+m.Name)
		if err != nil {
			return err
		}
		ms := r.d.st.meters[m.ID]
		for i := lo; i < hi; i++ {
			me := &p4v1.MeterEntry{MeterId: m.ID, Index: &p4v1.Index{Index: i}, Config: ms.get(i).proto()}
			r.entity(&p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: me}})
		}
	}
	return nil
}

func (r *reader) directMeters(req *p4v1.DirectMeterEntry) error {
	if req.GetCounterData() != nil {
		return errorf(ErrUnsupported, "per-colour meter counters (counter_data) are not supported")
	}
	es, err := r.directEntries(req.GetTableEntry(), func(t *Table) bool { return t.DirectMeter != nil }, ExternDirectMeters, "direct meter")
	if err != nil {
		return err
	}
	for _, e := range es {
		dm := &p4v1.DirectMeterEntry{TableEntry: keyProto(e)}
		if e.Direct != nil {
			dm.Config = e.Direct.Meter.proto()
		}
		r.entity(&p4v1.Entity{Entity: &p4v1.Entity_DirectMeterEntry{DirectMeterEntry: dm}})
	}
	return nil
}

// registers reads RegisterEntries like counters (§9.7). Wildcard reads
// (register_id 0) skip registers of types p4tcd does not carry; naming
// one answers UNIMPLEMENTED.
func (r *reader) registers(req *p4v1.RegisterEntry) error {
	cfg := r.d.cfg
	list := cfg.registerOrder
	if id := req.GetRegisterId(); id != 0 {
		reg := cfg.Registers[id]
		if reg == nil {
			return errorf(ErrInvalid, "register id %#x is not a register of the pipeline%s", id, cfg.kindHint(id))
		}
		if reg.Kind == DataUnsupported {
			return errorf(ErrUnsupported, "register %s: %s", reg.Name, reg.why)
		}
		list = []*Register{reg}
	} else if req.GetIndex() != nil {
		return errorf(ErrInvalid, "register_id 0 reads every cell of every register: index must be unset")
	}
	if len(list) > 0 {
		if err := r.d.need(ExternRegisters, "registers"); err != nil {
			return err
		}
	}
	for _, reg := range list {
		if !r.sc.allows(reg.ID) || reg.Kind == DataUnsupported {
			continue
		}
		lo, hi, err := cells(req.GetIndex(), reg.Size, "register "+reg.Name)
		if err != nil {
			return err
		}
		rs := r.d.st.registers[reg.ID]
		for i := lo; i < hi; i++ {
			re := &p4v1.RegisterEntry{RegisterId: reg.ID, Index: &p4v1.Index{Index: i}}
			r.regCells = append(r.regCells, RegisterCell{Register: reg, Index: i, Value: rs.value(i)})
			r.regDst = append(r.regDst, re)
			r.regReq = append(r.regReq, r.req)
			r.entity(&p4v1.Entity{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: re}})
		}
	}
	return nil
}

// pre reads multicast groups and clone sessions: all (id 0) or one
// (§9.5). Roles restricted to listed P4 objects see none.
func (r *reader) pre(req *p4v1.PacketReplicationEngineEntry) error {
	st := r.d.st
	switch x := req.GetType().(type) {
	case *p4v1.PacketReplicationEngineEntry_MulticastGroupEntry:
		if err := r.d.need(ExternMulticast, "multicast groups"); err != nil {
			return err
		}
		if !r.sc.preAllowed() {
			return nil
		}
		ids := []uint32{x.MulticastGroupEntry.GetMulticastGroupId()}
		if ids[0] == 0 {
			ids = sortedKeys(st.multicast)
		}
		for _, id := range ids {
			if g := st.multicast[id]; g != nil {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
					Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: g.proto}}}})
			}
		}
		return nil
	case *p4v1.PacketReplicationEngineEntry_CloneSessionEntry:
		if err := r.d.need(ExternClone, "clone sessions"); err != nil {
			return err
		}
		if !r.sc.preAllowed() {
			return nil
		}
		ids := []uint32{x.CloneSessionEntry.GetSessionId()}
		if ids[0] == 0 {
			ids = sortedKeys(st.clones)
		}
		for _, id := range ids {
			if c := st.clones[id]; c != nil {
				r.entity(&p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
					Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: c.proto}}}})
			}
		}
		return nil
	}
	return errorf(ErrInvalid, "packet replication engine entry: neither multicast_group_entry nor clone_session_entry is set")
}

// valueSets reads ValueSetEntries: all value sets (id 0) or one, with their
// members as written (§9.6); members must not be set in the request.
func (r *reader) valueSets(req *p4v1.ValueSetEntry) error {
	cfg := r.d.cfg
	if len(req.GetMembers()) > 0 {
		return errorf(ErrInvalid, "value set reads take no members")
	}
	list := cfg.valueSetOrder
	if id := req.GetValueSetId(); id != 0 {
		vs := cfg.ValueSets[id]
		if vs == nil {
			return errorf(ErrInvalid, "value set id %#x is not a value set of the pipeline%s", id, cfg.kindHint(id))
		}
		list = []*ValueSet{vs}
	}
	if len(list) > 0 {
		if err := r.d.need(ExternValueSets, "value sets"); err != nil {
			return err
		}
	}
	for _, vs := range list {
		if !r.sc.allows(vs.ID) {
			continue
		}
		st := r.d.st.valueSets[vs.ID]
		r.entity(&p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: &p4v1.ValueSetEntry{ValueSetId: vs.ID, Members: st.proto}}})
	}
	return nil
}

// digests reads the configs of enabled digests: all (digest_id 0) or one.
func (r *reader) digests(req *p4v1.DigestEntry) error {
	cfg := r.d.cfg
	list := cfg.digestIDs
	if id := req.GetDigestId(); id != 0 {
		if _, ok := cfg.digestNames[id]; !ok {
			return errorf(ErrInvalid, "digest id %#x is not a digest of the pipeline%s", id, cfg.kindHint(id))
		}
		list = []uint32{id}
	}
	for _, id := range list {
		c := r.d.st.digests[id]
		if c == nil || !r.sc.allows(id) {
			continue
		}
		r.entity(&p4v1.Entity{Entity: &p4v1.Entity_DigestEntry{DigestEntry: &p4v1.DigestEntry{DigestId: id,
			Config: &p4v1.DigestEntry_Config{MaxTimeoutNs: c.MaxTimeoutNs, MaxListSize: c.MaxListSize, AckTimeoutNs: c.AckTimeoutNs}}}})
	}
	return nil
}
