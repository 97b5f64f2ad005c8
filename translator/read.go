package translator

import (
	"bytes"

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

	for _, h := range hits {
		te := h.e.proto
		if h.req.GetTimeSinceLastHit() != nil {
			te = cloneEntryProto(te)
			var elapsed int64
			if h.e.written != 0 {
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
				hits = d.collect(t, req, nil, hits)
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
		return d.collect(t, req, nil, hits), nil
	}
	if len(req.GetMatch()) == 0 {
		return d.collect(t, req, nil, hits), nil
	}
	key := newEntry(t)
	key.Priority = req.GetPriority()
	if err := cfg.parseMatch(t, req, key, false); err != nil {
		return hits, err
	}
	if !t.NeedsPriority() || req.GetPriority() != 0 {
		if e := d.st.tables[t.ID].entries[key.skey]; e != nil && matches(e, req) {
			hits = append(hits, readHit{e, req})
		}
		return hits, nil
	}
	// A match without priority on a table with priorities: every priority.
	return d.collect(t, req, key, hits), nil
}

// collect appends the entries of t that req's filters select; key, when set,
// selects entries with that match at any priority.
func (d *Device) collect(t *Table, req *p4v1.TableEntry, key *Entry, hits []readHit) []readHit {
	ts := d.st.tables[t.ID]
	if req.GetIsDefaultAction() {
		if matches(ts.deflt, req) {
			hits = append(hits, readHit{ts.deflt, req})
		}
		return hits
	}
	for _, e := range ts.entries {
		if key != nil && !sameMatch(e, key) {
			continue
		}
		if matches(e, req) {
			hits = append(hits, readHit{e, req})
		}
	}
	return hits
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
