package ebpfdp

import (
	"errors"
	"time"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// Aging. Every entry of an aged table (P4Info idle_timeout_behavior
// NOTIFY_CONTROL, or a table the datapath creates entries in) records in
// its value when it was last hit (struct p4tc_aged; the datapath stamps
// bpf_ktime_get_coarse_ns when it moved by more than 100 ms; p4tcd stamps
// it when it writes the entry). A sweep, every Options.SweepInterval:
//
//   - reports controller entries idle for their idle_timeout_ns
//     (translator.IdleEntry, to Options.OnIdle), and again after each
//     further timeout without a hit, as P4Runtime's reference target does;
//   - deletes entries the datapath created that stayed unhit for the aging
//     of their timer profile, gives their pool slots back, and reports
//     them with Removed set (P4TC deletes such entries from a timer).

// idleIndex is the controller entries with idle timeouts, by P4Info table
// id and side id. The Backend's mutex guards it.
type idleIndex struct {
	tables map[uint32]map[sideID]*idleRec
}

// idleRec is one entry with an idle timeout.
type idleRec struct {
	e   *translator.Entry
	ttl time.Duration
	// notified is when the entry was last reported idle (coarse
	// monotonic ns), 0 if never since it was written.
	notified uint64
}

func newIdleIndex() *idleIndex { return &idleIndex{tables: map[uint32]map[sideID]*idleRec{}} }

// track brings the index along with ops that took effect.
func (ix *idleIndex) track(ops []translator.Op) {
	for _, op := range ops {
		e := op.Entry
		if e == nil || e.IsDefault || !e.Table.IdleTimeout || e.Origin != translator.OriginController {
			continue
		}
		id := entryID(e.Match, e.Priority)
		recs := ix.tables[e.Table.ID]
		switch {
		case op.Kind == translator.OpDelete || e.IdleTimeoutNs == 0:
			delete(recs, id)
		default:
			if recs == nil {
				recs = map[sideID]*idleRec{}
				ix.tables[e.Table.ID] = recs
			}
			recs[id] = &idleRec{e: e, ttl: time.Duration(e.IdleTimeoutNs)}
		}
	}
}

// lastHitIn is when the datapath of one tier last hit e (coarse
// monotonic ns); ok is false when the tier does not hold e.
func (p *pipeline) lastHitIn(ts *tableState, e *translator.Entry) (uint64, bool) {
	pl := ts.plan
	if !pl.aged() {
		return 0, false
	}
	v := make([]byte, pl.valueSize())
	off := pl.agedOff()
	switch pl.kind {
	case kindExact, kindLPM:
		k := make([]byte, pl.keySize)
		if err := pl.encodeKey(k, e.Match, p.ports); err != nil {
			return 0, false
		}
		if err := ts.entries.Lookup(k, v); err != nil {
			return 0, false
		}
		return getAged(v[off:]).lastHit, true
	case kindTSS:
		te := ts.tss.entries[entryID(e.Match, e.Priority)]
		if te == nil {
			return 0, false
		}
		var last uint64
		found := false
		for _, sl := range te.slots {
			if sl.winner() != te {
				continue
			}
			if err := ts.entries.Lookup([]byte(sl.key), v); err == nil {
				last, found = max(last, getAged(v[off:]).lastHit), true
			}
		}
		return last, found
	}
	return 0, false
}

// lastHit is when any tier last hit e.
func (p *pipeline) lastHit(e *translator.Entry) (uint64, bool) {
	var last uint64
	found := false
	for _, t := range p.tiers() {
		ts := t.byID[e.Table.ID]
		if ts == nil {
			continue
		}
		if l, ok := p.lastHitIn(ts, e); ok {
			last, found = max(last, l), true
		}
	}
	return last, found
}

// SinceLastHit returns how long ago the datapath last matched e, in
// either tier, or since e was written if it never did
// (translator.HitTracker; P4Runtime time_since_last_hit; the lastused
// time `tc -s p4ctrl get` shows on a P4TC kernel). ok is false for tables
// that do not record hits and entries not in the datapath.
func (b *Backend) SinceLastHit(e *translator.Entry) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return 0, false
	}
	// After a restart the Device's config is another compile of the same
	// pipeline: compare tables by id and name.
	if t := b.cur.cfg.Tables[e.Table.ID]; t == nil || t.Name != e.Table.Name {
		return 0, false
	}
	last, ok := b.cur.lastHit(e)
	if !ok {
		return 0, false
	}
	return since(monoNow(), last), true
}

// sweep runs one aging pass (see above) and returns what it found.
func (b *Backend) sweep() []translator.IdleEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.cur
	if p == nil || b.closed {
		return nil
	}
	now := monoNow()
	var out []translator.IdleEntry
	for _, recs := range p.idle.tables {
		for _, r := range recs {
			last, ok := p.lastHit(r.e)
			if !ok {
				continue
			}
			if since(now, max(last, r.notified)) >= r.ttl {
				out = append(out, translator.IdleEntry{Entry: r.e, Idle: since(now, last)})
				r.notified = now
			}
		}
	}
	for _, ts := range p.tables {
		if ts.plan.flags&tfDataCreate != 0 {
			out = append(out, p.expire(ts, now)...)
		}
	}
	return out
}

// expire deletes the datapath-created entries of a table that stayed
// unhit for their aging, giving their slots back.
func (p *pipeline) expire(ts *tableState, now uint64) []translator.IdleEntry {
	pl := ts.plan
	ks, vs := pl.keySize, pl.valueSize()
	var keys []byte
	k, v := make([]byte, ks), make([]byte, vs)
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		if !pl.datapathCreated(v) {
			continue
		}
		ag := getAged(v[pl.agedOff():])
		if since(now, ag.lastHit) >= pl.aging(ag.profile) {
			keys = append(keys, k...)
		}
	}
	if err := it.Err(); err != nil {
		p.log.Warn("aging sweep: read entries", "table", pl.table.Name, "err", err)
	}
	var out []translator.IdleEntry
	for off := 0; off < len(keys); off += ks {
		key := keys[off : off+ks]
		// Look again: a packet may have hit the entry since.
		if err := ts.entries.Lookup(key, v); err != nil || !pl.datapathCreated(v) {
			continue
		}
		ag := getAged(v[pl.agedOff():])
		if since(monoNow(), ag.lastHit) < pl.aging(ag.profile) {
			continue
		}
		de, derr := p.datapathEntry(ts, key, v, now)
		if err := ts.entries.Delete(key); err != nil {
			if !errors.Is(err, ebpf.ErrKeyNotExist) {
				p.log.Warn("aging sweep: delete entry", "table", pl.table.Name, "err", err)
			}
			continue
		}
		ts.releaseSlot()
		if derr != nil {
			p.log.Warn("aged-out entry does not decode", "table", pl.table.Name, "err", derr)
			continue
		}
		e, err := entryOf(pl.table, &de.SavedEntry)
		if err != nil {
			continue
		}
		e.Origin, e.IdleTimeoutNs = translator.OriginDatapath, de.IdleTimeoutNs
		out = append(out, translator.IdleEntry{Entry: e, Idle: de.SinceLastHit, Removed: true})
	}
	return out
}

// defaultSweepInterval is how often the aging sweep runs unless
// Options.SweepInterval says otherwise.
const defaultSweepInterval = time.Second

// startSweeper starts the aging sweep once a pipeline runs; Close stops
// it. Called with the mutex held.
func (b *Backend) startSweeper() {
	if b.sweepStop != nil {
		return
	}
	every := b.opts.SweepInterval
	if every <= 0 {
		every = defaultSweepInterval
	}
	stop, done := make(chan struct{}), make(chan struct{})
	b.sweepStop, b.sweepDone = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if evs := b.sweep(); len(evs) > 0 {
				if b.opts.OnIdle != nil {
					b.opts.OnIdle(evs)
				}
				b.emitEvent(translator.Event{Kind: translator.EventIdle, Idle: evs})
			}
		}
	}()
}

// stopSweeper stops the sweep and waits for it; called without the
// mutex.
func (b *Backend) stopSweeper() {
	b.mu.Lock()
	stop, done := b.sweepStop, b.sweepDone
	b.sweepStop = nil
	b.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
