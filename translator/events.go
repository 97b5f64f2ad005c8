package translator

import (
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// EventKind is the kind of a datapath event.
type EventKind uint8

const (
	// EventPacketIn: a frame the datapath sent to the CPU port.
	EventPacketIn EventKind = iota + 1
	// EventDigest: a digest record the datapath emitted.
	EventDigest
	// EventIdle: entries that saw no traffic for their idle timeout.
	EventIdle
)

// Event is something the datapath reports to the control plane.
type Event struct {
	Kind EventKind
	// Frame is a packet-in frame: the packet_in controller header, then
	// the packet.
	Frame []byte
	// DigestID is the P4Info id of the digest a record belongs to, and Data
	// the record (Digest.RecordSize bytes).
	DigestID uint32
	Data     []byte
	// Idle lists idle entries (EventIdle).
	Idle []IdleEntry
}

// EventSource is a Backend that reports datapath events (packet-ins,
// digests). SetEventHandler is called once, before the first pipeline; the
// backend calls fn from its own goroutines, one event at a time, and fn
// does not block.
type EventSource interface {
	SetEventHandler(fn func(Event))
}

// PacketSender is a Backend with a CPU port: it injects packet-out frames
// (controller header then packet) into the pipeline, as if they arrived on
// the CPU port.
type PacketSender interface {
	SendPacket(frame []byte) error
}

// Notification is a datapath event translated for P4Runtime: exactly one
// field is set.
type Notification struct {
	PacketIn *p4v1.PacketIn
	// Digest is one digest message of DigestID.
	DigestID uint32
	Digest   *p4v1.P4Data
	// Idle holds controller entries idle past their idle_timeout_ns, as
	// an IdleTimeoutNotification carries them (P4Runtime §14.4): key,
	// controller_metadata, metadata and idle_timeout_ns.
	Idle []*p4v1.TableEntry
}

// Subscribe asks the backend for its events and hands fn their P4Runtime
// form, decoded with the running pipeline; events the pipeline cannot
// decode are dropped (fn is told nothing). It returns false when the
// backend reports no events.
func (d *Device) Subscribe(fn func(Notification)) bool {
	src, ok := d.backend.(EventSource)
	if !ok {
		return false
	}
	src.SetEventHandler(func(ev Event) {
		cfg := d.Config()
		if cfg == nil {
			return
		}
		switch ev.Kind {
		case EventPacketIn:
			pi, err := cfg.DecodePacketIn(ev.Frame)
			if err == nil {
				fn(Notification{PacketIn: pi})
			}
		case EventDigest:
			dg := cfg.Digest(ev.DigestID)
			if dg == nil {
				return
			}
			if data, err := dg.DigestData(ev.Data); err == nil {
				fn(Notification{DigestID: ev.DigestID, Digest: data})
			}
		case EventIdle:
			if tes := d.idleEntries(ev.Idle); len(tes) > 0 {
				fn(Notification{Idle: tes})
			}
		}
	})
	return true
}

// PacketOut injects a PacketOut into the pipeline through the backend's CPU
// port (P4Runtime §16.1).
func (d *Device) PacketOut(po *p4v1.PacketOut) error {
	cfg := d.Config()
	if cfg == nil {
		return errorf(ErrPrecondition, "packet-out: no forwarding pipeline config")
	}
	snd, ok := d.backend.(PacketSender)
	if !ok {
		return errorf(ErrUnsupported, "packet-out: this datapath has no CPU port")
	}
	frame, err := cfg.EncodePacketOut(po)
	if err != nil {
		return err
	}
	if err := snd.SendPacket(frame); err != nil {
		return fmt.Errorf("send packet-out: %w", err)
	}
	return nil
}

// idleEntries renders the controller entries of an idle report that are
// still in the store (a DELETE may have raced the report) for an
// IdleTimeoutNotification.
func (d *Device) idleEntries(idle []IdleEntry) []*p4v1.TableEntry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.st == nil {
		return nil
	}
	var out []*p4v1.TableEntry
	for _, ie := range idle {
		if ie.Removed || ie.Entry == nil || ie.Entry.Origin != OriginController {
			continue
		}
		ts := d.st.tables[ie.Entry.Table.ID]
		if ts == nil {
			continue
		}
		key := ie.Entry.skey
		if key == "" {
			key = storeKey(ie.Entry.Table, ie.Entry.Match, ie.Entry.Priority)
		}
		e := ts.entries[key]
		if e == nil || e.IdleTimeoutNs == 0 {
			continue
		}
		te := e.readProto()
		if te == nil {
			continue
		}
		out = append(out, &p4v1.TableEntry{
			TableId: te.TableId, Match: te.Match, Priority: te.Priority,
			ControllerMetadata: te.ControllerMetadata, Metadata: te.Metadata, IdleTimeoutNs: te.IdleTimeoutNs,
		})
	}
	return out
}
