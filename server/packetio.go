package server

import (
	"errors"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"

	"github.com/p4tcd/p4tcd/translator"
)

// notify routes a datapath notification to the controllers that take it.
func (s *Server) notify(n translator.Notification) {
	switch {
	case n.PacketIn != nil:
		msg := &p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Packet{Packet: n.PacketIn}}
		for _, c := range s.packetInTargets(n.PacketIn.GetMetadata()) {
			// Droppable: packet I/O may be lost under load.
			s.m.packetIn(c.out.push(msg, true))
		}
	case n.Digest != nil:
		s.digests.add(n.DigestID, n.Digest)
	case len(n.Idle) > 0:
		s.sendIdle(n.Idle)
	}
}

// sendIdle sends an IdleTimeoutNotification (§14.4) to the primary of every
// role that may see the tables, each with only those tables' entries,
// never an empty one.
func (s *Server) sendIdle(tes []*p4v1.TableEntry) {
	now := time.Now().UnixNano()
	for _, c := range s.arb.primaries(func(*roleState) bool { return true }) {
		s.arb.mu.Lock()
		rs := s.arb.roles[c.role]
		sc := scopeOf(rs.name, rs.parsed)
		s.arb.mu.Unlock()
		var mine []*p4v1.TableEntry
		for _, te := range tes {
			if sc.Writable == nil || sc.Writable[te.GetTableId()] {
				mine = append(mine, te)
			}
		}
		if len(mine) == 0 {
			continue
		}
		c.out.push(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_IdleTimeoutNotification{
			IdleTimeoutNotification: &p4v1.IdleTimeoutNotification{TableEntry: mine, Timestamp: now}}}, true)
	}
}

// sendDigestList delivers a DigestList to the primary of every role that may
// see the digest.
func (s *Server) sendDigestList(l *p4v1.DigestList) {
	msg := &p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Digest{Digest: l}}
	for _, c := range s.arb.primaries(func(rs *roleState) bool {
		return scopeOf(rs.name, rs.parsed).Writable == nil || scopeOf(rs.name, rs.parsed).Writable[l.GetDigestId()]
	}) {
		c.out.push(msg, true)
		s.m.digestList()
	}
}

// packetOut handles a PacketOut from a stream: only the primary's are sent
// (§16.1); problems come back as a StreamError and the stream stays open.
func (s *Server) packetOut(c *controller, po *p4v1.PacketOut) {
	errDetail := &p4v1.StreamError{Details: &p4v1.StreamError_PacketOut{PacketOut: &p4v1.PacketOutError{PacketOut: po}}}
	if !s.arb.isPrimary(c) {
		s.m.packetOut("not_primary")
		c.out.push(streamError(codes.PermissionDenied, "only the primary controller may send packets", errDetail), true)
		return
	}
	if err := s.dev.PacketOut(po); err != nil {
		code := codeOf(err)
		if errors.Is(err, translator.ErrPrecondition) {
			code = codes.FailedPrecondition
		}
		s.m.packetOut(code.String())
		c.out.push(streamError(code, err.Error(), errDetail), true)
		return
	}
	s.m.packetOut("sent")
}

// primaries returns the primary controller of every role keep accepts.
func (a *arbiter) primaries(keep func(*roleState) bool) []*controller {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*controller
	for _, rs := range a.roles {
		if rs.primary != nil && keep(rs) {
			out = append(out, rs.primary)
		}
	}
	return out
}
