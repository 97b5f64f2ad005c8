package translator

import (
	"bytes"
	"fmt"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Read answers a ReadRequest's entities (P4Runtime §13 "Read RPC"): each is
// a filter. Matching entities are passed to emit after the device lock is
// released, so a slow client never holds up Writes; what emit receives is a
// consistent snapshot, taken while no Write was in progress. errs has one
// error per request, nil where the request succeeded, and is nil when all
// did. err is set when the whole Read is refused (no pipeline) or emit
// failed.
func (d *Device) Read(entities []*p4v1.Entity, sc *Scope, emit func(*p4v1.Entity) error) (errs []error, err error) {
	now := timeNow()
	d.mu.RLock()
	if d.cfg == nil {
		d.mu.RUnlock()
		return nil, errorf(ErrPrecondition, "no forwarding pipeline config: call SetForwardingPipelineConfig first")
	}
	var hits []readHit
	for i, ent := range entities {
		n := len(hits)
		var rerr error
		switch x := ent.GetEntity().(type) {
		case *p4v1.Entity_TableEntry:
			hits, rerr = d.readTableEntries(x.TableEntry, sc, hits)
		case nil:
			rerr = errorf(ErrInvalid, "entity %d has no entity set (wildcard reads of everything are not allowed)", i)
		default:
			rerr = errorf(ErrUnsupported, "reading %s entities is not supported yet", entityName(ent))
		}
		if rerr != nil {
			hits = hits[:n]
			if errs == nil {
				errs = make([]error, len(entities))
			}
			errs[i] = rerr
		}
	}
	d.mu.RUnlock()

	ht, _ := d.backend.(HitTracker)
	for _, h := range hits {
		te := h.e.proto
		if h.req.GetTimeSinceLastHit() != nil {
			te = cloneEntryProto(te)
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
		if err := emit(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}); err != nil {
			return errs, err
		}
	}
	return errs, nil
}

// readHit is an entry a read request selected.
type readHit struct {
	e   *Entry
	req *p4v1.TableEntry
	// realized: the backend runs the config e belongs to.
	realized bool
	// sinceHit is the time since a datapath-created entry was hit.
	sinceHit time.Duration
}

// readTableEntries appends the entries a TableEntry filter selects
// (P4Runtime §9.1.6 "Wildcard Reads").
func (d *Device) readTableEntries(req *p4v1.TableEntry, sc *Scope, hits []readHit) ([]readHit, error) {
	cfg := d.cfg
	if req.GetTableId() == 0 {
		if len(req.GetMatch()) > 0 || req.GetPriority() != 0 || req.GetAction() != nil ||
			req.GetControllerMetadata() != 0 || len(req.GetMetadata()) > 0 {
			return hits, errorf(ErrInvalid, "table_id 0 reads every table: no match, action, priority or metadata filter can be used with it")
		}
		for _, t := range cfg.TableOrder {
			if sc.allows(t.ID) {
				var err error
				if hits, err = d.collect(t, req, nil, hits); err != nil {
					return hits, err
				}
			}
		}
		return hits, nil
	}
	t := cfg.Tables[req.GetTableId()]
	if t == nil {
		return hits, errorf(ErrInvalid, "table id %#x is not a table of the pipeline%s", req.GetTableId(), cfg.kindHint(req.GetTableId()))
	}
	if !sc.allows(t.ID) {
		return hits, nil // the role filters the table out
	}
	if req.GetIsDefaultAction() {
		if len(req.GetMatch()) > 0 {
			return hits, errorf(ErrInvalid, "table %s: the default entry has no match", t.Name)
		}
		return d.collect(t, req, nil, hits)
	}
	if len(req.GetMatch()) == 0 {
		return d.collect(t, req, nil, hits)
	}
	key := newEntry(t)
	key.Priority = req.GetPriority()
	if err := cfg.parseMatch(t, req, key, false); err != nil {
		return hits, err
	}
	if !t.NeedsPriority() || req.GetPriority() != 0 {
		if e := d.st.tables[t.ID].entries[key.skey]; e != nil {
			if matches(e, req) {
				hits = append(hits, readHit{e: e, req: req, realized: d.realized})
			}
			return hits, nil
		}
		return d.readDatapathEntry(t, req, key, hits)
	}
	// A match without priority on a table with priorities: every priority.
	return d.collect(t, req, key, hits)
}

// collect appends the entries of t that req's filters select; key, when set,
// selects entries with that match at any priority.
func (d *Device) collect(t *Table, req *p4v1.TableEntry, key *Entry, hits []readHit) ([]readHit, error) {
	ts := d.st.tables[t.ID]
	if req.GetIsDefaultAction() {
		if matches(ts.deflt, req) {
			hits = append(hits, readHit{e: ts.deflt, req: req, realized: d.realized})
		}
		return hits, nil
	}
	for _, e := range ts.entries {
		if key != nil && !sameMatch(e, key) {
			continue
		}
		if matches(e, req) {
			hits = append(hits, readHit{e: e, req: req, realized: d.realized})
		}
	}
	return d.collectDatapath(t, req, key, hits)
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

// collectDatapath appends the datapath-created entries of t that req's
// filters select (read live from the backend).
func (d *Device) collectDatapath(t *Table, req *p4v1.TableEntry, key *Entry, hits []readHit) ([]readHit, error) {
	dc := d.datapathCreator(t)
	if dc == nil {
		return hits, nil
	}
	des, err := dc.DatapathEntries(t.ID)
	if err != nil {
		return hits, fmt.Errorf("read datapath-created entries of table %s: %w", t.Name, err)
	}
	for i := range des {
		e, since, err := d.cfg.datapathEntry(&des[i])
		if err != nil {
			return hits, fmt.Errorf("table %s: %w", t.Name, err)
		}
		if key != nil && !sameMatch(e, key) {
			continue
		}
		if matches(e, req) {
			hits = append(hits, readHit{e: e, req: req, realized: true, sinceHit: since})
		}
	}
	return hits, nil
}

// readDatapathEntry appends the datapath-created entry with key's match,
// if there is one and req selects it.
func (d *Device) readDatapathEntry(t *Table, req *p4v1.TableEntry, key *Entry, hits []readHit) ([]readHit, error) {
	dc := d.datapathCreator(t)
	if dc == nil {
		return hits, nil
	}
	de, err := dc.LookupDatapathEntry(t.ID, key.Match)
	if err != nil {
		return hits, fmt.Errorf("read datapath-created entry of table %s: %w", t.Name, err)
	}
	if de == nil {
		return hits, nil
	}
	e, since, err := d.cfg.datapathEntry(de)
	if err != nil {
		return hits, fmt.Errorf("table %s: %w", t.Name, err)
	}
	if matches(e, req) {
		hits = append(hits, readHit{e: e, req: req, realized: true, sinceHit: since})
	}
	return hits, nil
}

// matches applies the non-key filters of a read request.
func matches(e *Entry, req *p4v1.TableEntry) bool {
	if p := req.GetPriority(); p != 0 && e.Priority != p {
		return false
	}
	if m := req.GetControllerMetadata(); m != 0 && e.proto.GetControllerMetadata() != m {
		return false
	}
	if m := req.GetMetadata(); len(m) > 0 && !bytes.Equal(e.proto.GetMetadata(), m) {
		return false
	}
	if a := req.GetAction().GetAction(); a != nil && a.GetActionId() != 0 {
		if e.Action == nil || e.Action.Action.ID != a.GetActionId() {
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
