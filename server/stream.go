package server

import (
	"context"
	"errors"
	"io"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// StreamChannel runs one controller session (§5, §14): arbitration first,
// then packet I/O and notifications. The stream ends with the status of a
// rejected arbitration update, or when the client closes it.
func (s *Server) StreamChannel(stream p4v1.P4Runtime_StreamChannelServer) (err error) {
	start := time.Now()
	s.m.streamOpened(1)
	c := &controller{out: newSendQueue(s.opts.streamQueue)}
	defer func() {
		s.m.streamOpened(-1)
		s.logRPC(stream.Context(), "StreamChannel", s.deviceID, c.role, "", 0, err, time.Since(start))
	}()
	return s.streamChannel(stream, c)
}

func (s *Server) streamChannel(stream p4v1.P4Runtime_StreamChannelServer, c *controller) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()

	// One goroutine sends, so stream.Send is never called concurrently;
	// it stops before this handler returns.
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		for {
			msgs := c.out.take(ctx.Done())
			if msgs == nil {
				return
			}
			for _, m := range msgs {
				if err := stream.Send(m); err != nil {
					cancel()
					return
				}
			}
		}
	}()
	joined := false
	defer func() {
		if joined {
			s.arb.leave(c)
		}
		c.out.close()
		cancel()
		<-sendDone
	}()

	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if status.Code(err) == codes.Canceled {
				return nil
			}
			return err
		}
		switch x := req.GetUpdate().(type) {
		case *p4v1.StreamMessageRequest_Arbitration:
			upd := x.Arbitration
			if err := s.checkDevice(upd.GetDeviceId()); err != nil {
				if joined {
					return status.Errorf(codes.FailedPrecondition, "stream is for device %d, not %d: open a new stream", s.deviceID, upd.GetDeviceId())
				}
				return err
			}
			if err := s.arb.arbitrate(c, upd, !joined, s.opts.missingElectionZero); err != nil {
				s.opts.log.Info("arbitration refused", "role", upd.GetRole().GetName(), "err", err)
				return err
			}
			joined = true
		case *p4v1.StreamMessageRequest_Packet:
			if !joined {
				s.m.packetOut("not_primary")
				c.out.push(streamError(codes.FailedPrecondition, "send a MasterArbitrationUpdate before packets", &p4v1.StreamError{Details: &p4v1.StreamError_PacketOut{PacketOut: &p4v1.PacketOutError{PacketOut: x.Packet}}}), true)
				continue
			}
			s.packetOut(c, x.Packet)
		case *p4v1.StreamMessageRequest_DigestAck:
			// Acks count only from a primary (lists go to primaries).
			if joined && s.arb.isPrimary(c) {
				s.digests.ack(x.DigestAck)
			}
		default:
			c.out.push(streamError(codes.InvalidArgument, "unknown stream message", &p4v1.StreamError{Details: &p4v1.StreamError_Other{Other: &p4v1.StreamOtherError{Other: req.GetOther()}}}), true)
		}
	}
}

// streamError fills a StreamError (§14.6) for the message it reports.
func streamError(c codes.Code, msg string, e *p4v1.StreamError) *p4v1.StreamMessageResponse {
	e.CanonicalCode = int32(c)
	e.Message = msg
	return &p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Error{Error: e}}
}

// packetInTargets is where the PacketIn fan-out asks whom a PacketIn with
// metadata md goes to: the primaries whose role configs accept it (see
// arbiter.packetInTargets). The datapath's PacketIn reader pushes to their
// send queues as droppable messages.
func (s *Server) packetInTargets(md []*p4v1.PacketMetadata) []*controller {
	return s.arb.packetInTargets(md)
}
