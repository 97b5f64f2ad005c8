package server

import (
	"sync"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// sendQueue is the outbound queue of one StreamChannel. Producers (the
// arbiter, packet-in and digest readers) never block on a slow client:
// control messages always queue; droppable ones (packet-ins) are dropped
// past limit, as P4Runtime allows for packet I/O under load.
type sendQueue struct {
	limit int

	// mu guards msgs and closed.
	mu     sync.Mutex
	msgs   []*p4v1.StreamMessageResponse
	closed bool
	// ready has one token when msgs may be non-empty.
	ready chan struct{}
	// dropped counts droppable messages refused because the queue was full.
	dropped uint64
}

func newSendQueue(limit int) *sendQueue {
	return &sendQueue{limit: limit, ready: make(chan struct{}, 1)}
}

// push queues m; it reports false if m was dropped.
func (q *sendQueue) push(m *p4v1.StreamMessageResponse, droppable bool) bool {
	q.mu.Lock()
	if q.closed || (droppable && len(q.msgs) >= q.limit) {
		if !q.closed {
			q.dropped++
		}
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued message, waiting until there is one or done is
// closed.
func (q *sendQueue) take(done <-chan struct{}) []*p4v1.StreamMessageResponse {
	for {
		q.mu.Lock()
		if len(q.msgs) > 0 {
			ms := q.msgs
			q.msgs = nil
			q.mu.Unlock()
			return ms
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-done:
			return nil
		}
	}
}

// close makes later pushes no-ops.
func (q *sendQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.msgs = nil
	q.mu.Unlock()
}
