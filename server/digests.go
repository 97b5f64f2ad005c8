package server

import (
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// digestEngine bundles digest messages into DigestLists as P4Runtime §9.10
// "DigestEntry" says: a buffer per digest, sent when max_list_size distinct
// messages are in it or max_timeout_ns after the first one came; a cache of
// what was sent and not yet acknowledged, for ack_timeout_ns, so the same
// learned data is not sent again meanwhile; DigestListAck empties a list's
// cache entries.
type digestEngine struct {
	// config returns a digest's configuration, nil when the controller has
	// not enabled it (DigestEntry INSERT): its messages are dropped.
	config func(id uint32) *p4v1.DigestEntry_Config
	// send delivers a DigestList to the controllers that take it.
	send func(*p4v1.DigestList)
	now  func() time.Time

	// mu guards the fields below.
	mu     sync.Mutex
	bufs   map[uint32]*digestBuf
	cache  map[uint32]map[string]uint64 // digest → message → list that carried it
	lists  map[uint32]map[uint64]*sentList
	nextID uint64
	timer  *time.Timer
	// armedAt is when the timer fires; zero when it is not armed.
	armedAt time.Time
	closed  bool
}

// digestBuf is the buffer of one digest.
type digestBuf struct {
	keys  map[string]bool
	data  []*p4v1.P4Data
	first time.Time
}

// sentList is a DigestList awaiting its ack.
type sentList struct {
	keys []string
	sent time.Time
}

func newDigestEngine(config func(uint32) *p4v1.DigestEntry_Config, send func(*p4v1.DigestList)) *digestEngine {
	return &digestEngine{
		config: config, send: send, now: time.Now,
		bufs: map[uint32]*digestBuf{}, cache: map[uint32]map[string]uint64{}, lists: map[uint32]map[uint64]*sentList{},
	}
}

// add takes one digest message from the datapath.
func (e *digestEngine) add(id uint32, data *p4v1.P4Data) {
	cfg := e.config(id)
	if cfg == nil {
		return
	}
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(data)
	if err != nil {
		return
	}
	k := string(key)
	var out []*p4v1.DigestList
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	now := e.now()
	e.expireLocked(id, cfg, now)
	if _, dup := e.cache[id][k]; dup {
		e.mu.Unlock()
		return
	}
	b := e.bufs[id]
	if b == nil {
		b = &digestBuf{keys: map[string]bool{}}
		e.bufs[id] = b
	}
	if b.keys[k] {
		e.mu.Unlock()
		return // already buffered: lists carry distinct messages only
	}
	if len(b.data) == 0 {
		b.first = now
	}
	b.keys[k] = true
	b.data = append(b.data, data)
	if cfg.GetMaxTimeoutNs() <= 0 || (cfg.GetMaxListSize() > 0 && len(b.data) >= int(cfg.GetMaxListSize())) {
		out = append(out, e.flushLocked(id, cfg, now))
	} else {
		e.armLocked(now.Add(time.Duration(cfg.GetMaxTimeoutNs())))
	}
	e.mu.Unlock()
	for _, l := range out {
		e.send(l)
	}
}

// flushLocked turns a digest's buffer into a DigestList and caches what it
// carries until acked or ack_timeout_ns old.
func (e *digestEngine) flushLocked(id uint32, cfg *p4v1.DigestEntry_Config, now time.Time) *p4v1.DigestList {
	b := e.bufs[id]
	delete(e.bufs, id)
	e.nextID++
	l := &p4v1.DigestList{DigestId: id, ListId: e.nextID, Data: b.data, Timestamp: now.UnixNano()}
	if cfg.GetAckTimeoutNs() > 0 {
		keys := make([]string, 0, len(b.keys))
		if e.cache[id] == nil {
			e.cache[id] = map[string]uint64{}
			e.lists[id] = map[uint64]*sentList{}
		}
		for k := range b.keys {
			e.cache[id][k] = l.ListId
			keys = append(keys, k)
		}
		e.lists[id][l.ListId] = &sentList{keys: keys, sent: now}
		e.armLocked(now.Add(time.Duration(cfg.GetAckTimeoutNs())))
	}
	return l
}

// expireLocked drops the cache entries of lists older than ack_timeout_ns.
func (e *digestEngine) expireLocked(id uint32, cfg *p4v1.DigestEntry_Config, now time.Time) {
	for lid, sl := range e.lists[id] {
		if now.Sub(sl.sent) >= time.Duration(cfg.GetAckTimeoutNs()) {
			e.dropListLocked(id, lid)
		}
	}
}

func (e *digestEngine) dropListLocked(id uint32, lid uint64) {
	sl := e.lists[id][lid]
	if sl == nil {
		return
	}
	for _, k := range sl.keys {
		if e.cache[id][k] == lid {
			delete(e.cache[id], k)
		}
	}
	delete(e.lists[id], lid)
}

// ack handles a DigestListAck from the primary.
func (e *digestEngine) ack(a *p4v1.DigestListAck) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropListLocked(a.GetDigestId(), a.GetListId())
}

// reset forgets buffers and caches: P4Runtime lets the server empty the
// cache when the primary changes, and a new pipeline or a disabled digest
// makes them meaningless.
func (e *digestEngine) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.bufs = map[uint32]*digestBuf{}
	e.cache = map[uint32]map[string]uint64{}
	e.lists = map[uint32]map[uint64]*sentList{}
}

// armLocked makes sure poll runs by t.
func (e *digestEngine) armLocked(t time.Time) {
	if !e.armedAt.IsZero() && !t.Before(e.armedAt) {
		return // an earlier poll is due anyway and re-arms for t
	}
	e.armedAt = t
	d := max(t.Sub(e.now()), 0)
	if e.timer == nil {
		e.timer = time.AfterFunc(d, e.poll)
		return
	}
	e.timer.Reset(d)
}

// poll sends the buffers whose max_timeout_ns has passed and expires old
// cache entries; it re-arms itself for the next deadline.
func (e *digestEngine) poll() {
	var out []*p4v1.DigestList
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	now := e.now()
	e.armedAt = time.Time{}
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for id, b := range e.bufs {
		cfg := e.config(id)
		if cfg == nil {
			delete(e.bufs, id) // disabled meanwhile
			continue
		}
		due := b.first.Add(time.Duration(cfg.GetMaxTimeoutNs()))
		if !now.Before(due) {
			out = append(out, e.flushLocked(id, cfg, now))
		} else {
			later(due)
		}
	}
	for id, ls := range e.lists {
		cfg := e.config(id)
		if cfg == nil {
			delete(e.lists, id)
			delete(e.cache, id)
			continue
		}
		e.expireLocked(id, cfg, now)
		for _, sl := range ls {
			later(sl.sent.Add(time.Duration(cfg.GetAckTimeoutNs())))
		}
	}
	if !next.IsZero() {
		e.armLocked(next)
	}
	e.mu.Unlock()
	for _, l := range out {
		e.send(l)
	}
}

// close stops the engine's timer.
func (e *digestEngine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.timer != nil {
		e.timer.Stop()
	}
}
