package tcbackend

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// EventKind is what happened to a table entry.
type EventKind uint8

const (
	// EventCreated: an entry appeared (RTM_P4TC_CREATE). With By ==
	// EntityKernel the datapath created it (PNA add-on-miss).
	EventCreated EventKind = iota + 1
	// EventUpdated: an entry changed (RTM_P4TC_UPDATE).
	EventUpdated
	// EventDeleted: an entry went away (RTM_P4TC_DEL). With By ==
	// EntityTimer it aged out.
	EventDeleted
	// EventLost: the event socket overflowed; events were dropped and the
	// consumer should resynchronise (Dump).
	EventLost
)

// String names the kind.
func (k EventKind) String() string {
	switch k {
	case EventCreated:
		return "created"
	case EventUpdated:
		return "updated"
	case EventDeleted:
		return "deleted"
	case EventLost:
		return "lost"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is a change to a table entry that P4TC announced.
type Event struct {
	Kind EventKind
	// By is who made the change: EntityKernel (the datapath),
	// EntityTC (a control plane) or EntityTimer (aging).
	By Entity
	// Self: this process made the change (ABIs that report the creating
	// process, LK13 and later; always false in series 1).
	Self bool
	// Entry is the entry as the kernel reported it.
	Entry Entry
	// TableID is the P4Info id of the table; 0 when the table is not in
	// the committed pipeline.
	TableID uint32
	// Saved is the entry in P4Runtime terms, nil when it could not be
	// translated (Err says why).
	Saved *translator.SavedEntry
	// Err is set for EventLost and for events that could not be decoded.
	Err error
}

// Aged reports whether the event is an entry removed by its idle timer.
func (ev *Event) Aged() bool { return ev.Kind == EventDeleted && ev.By == EntityTimer }

// DatapathCreated reports whether the event is an entry the datapath
// created.
func (ev *Event) DatapathCreated() bool { return ev.Kind == EventCreated && ev.By == EntityKernel }

// Events subscribes to P4TC's entry events (`tc monitor`, v17 `tc mon p4
// events`) and delivers them on the returned channel until ctx ends or the
// backend closes; then the channel is closed. Events are read from
// RTNLGRP_TC (series 1, LK13) or RTNLGRP_P4TC (v17); P4TC publishes only
// changes to entries whose permissions include ctrl-P. The kernel holds the
// truth: an entry aged out by P4TC is already gone (P4Runtime's idle
// timeout only notifies), and the server side decides what to tell
// controllers.
func (b *Backend) Events(ctx context.Context) (<-chan Event, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	group := b.a.eventGroup
	if b.opts.EventGroup != 0 {
		group = b.opts.EventGroup
	}
	sub, err := subscribe(b.sock, group)
	if err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("subscribe to P4TC events: %w", err)
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()

	ch := make(chan Event, 64)
	stop := context.AfterFunc(ctx, sub.close)
	go func() {
		defer close(ch)
		defer stop()
		defer func() {
			b.mu.Lock()
			delete(b.subs, sub)
			b.mu.Unlock()
			sub.close()
		}()
		for {
			msgs, err := sub.receive()
			for _, m := range msgs {
				for _, ev := range b.events(m) {
					if !send(ctx, ch, ev) {
						return
					}
				}
			}
			switch {
			case err == nil:
			case errors.Is(err, unix.ENOBUFS):
				if !send(ctx, ch, Event{Kind: EventLost, Err: fmt.Errorf("receive P4TC events: %w", err)}) {
					return
				}
			case errors.Is(err, ErrProtocol):
				if !send(ctx, ch, Event{Err: err}) {
					return
				}
			default:
				// The socket was closed (ctx, Close) or failed.
				if ctx.Err() == nil && !b.isClosed() {
					b.log.Warn("p4tc: event subscription ended", "err", err)
				}
				return
			}
		}
	}()
	return ch, nil
}

func send(ctx context.Context, ch chan<- Event, ev Event) bool {
	select {
	case ch <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *Backend) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// events turns one P4TC message into events. Messages that are not table
// entry events (other tc traffic on RTNLGRP_TC) yield none.
func (b *Backend) events(m *p4tcReply) []Event {
	var kind EventKind
	switch m.typ {
	case b.a.msgCreate:
		kind = EventCreated
	case b.a.msgUpdate:
		kind = EventUpdated
	case b.a.msgDel:
		kind = EventDeleted
	default:
		return nil
	}
	if m.obj != b.a.objRuntimeTable {
		return nil
	}
	es, err := decodeEntries(b.a, m)
	if err != nil {
		return []Event{{Kind: kind, Err: fmt.Errorf("decode P4TC event: %w", err)}}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pid := uint32(os.Getpid())
	out := make([]Event, 0, len(es))
	for _, e := range es {
		ev := Event{Kind: kind, Entry: e}
		switch kind {
		case EventCreated:
			ev.By = e.CreatedBy
		case EventUpdated:
			ev.By = e.UpdatedBy
		case EventDeleted:
			ev.By = e.DeletedBy
		}
		ev.Self = kind == EventCreated && e.CreatorPID == pid && pid != 0
		if b.p != nil && (e.Pipeline == "" || e.Pipeline == b.p.pname) {
			se, tp, err := b.p.saved(&e, b.ports)
			if tp != nil {
				ev.TableID = tp.t.ID
				if kind == EventDeleted && (ev.By == EntityTimer || ev.By == EntityKernel) {
					// The kernel removed the entry on its own: what
					// p4tcd reserved for it is free again.
					b.state[tp.tt.name].forget(reportedID(tp, &e))
				}
			}
			ev.Saved, ev.Err = se, err
		} else {
			ev.Err = fmt.Errorf("decode P4TC event: pipeline %q is not the committed one", e.Pipeline)
		}
		out = append(out, ev)
	}
	return out
}
