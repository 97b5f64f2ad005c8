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
