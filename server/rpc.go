package server

import (
	"context"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Write applies a batch of updates (§12). The checks before any update, in
// the spec's order: device (NOT_FOUND), role and primary (NOT_FOUND,
// PERMISSION_DENIED), pipeline (FAILED_PRECONDITION).
func (s *Server) Write(_ context.Context, req *p4v1.WriteRequest) (*p4v1.WriteResponse, error) {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return nil, err
	}
	sc, _, err := s.arb.authorize(req.GetRole(), req.GetElectionId(), s.opts.missingElectionZero)
	if err != nil {
		return nil, err
	}
	errs, err := s.dev.Write(req.GetUpdates(), req.GetAtomicity(), sc)
	if err != nil {
		return nil, toStatus(err)
	}
	if errs != nil {
		return nil, batchStatus(errs, "updates")
	}
	return &p4v1.WriteResponse{}, nil
}

// Read streams the entities the request selects (§13), in responses of at
// most readChunkEntities entities or about readChunkBytes bytes: real
// clients (p4runtime-shell's default 4 MiB channel) cannot take one giant
// message. Each entity is encoded once, straight into its response.
func (s *Server) Read(req *p4v1.ReadRequest, stream p4v1.P4Runtime_ReadServer) error {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return err
	}
	sc := s.arb.readScope(req.GetRole())
	var (
		chunk encodedMsg
		count int
	)
	flush := func() error {
		if count == 0 {
			return nil
		}
		err := stream.SendMsg(chunk)
		chunk, count = nil, 0
		return err
	}
	mo := proto.MarshalOptions{}
	errs, err := s.dev.Read(req.GetEntities(), sc, func(e *p4v1.Entity) error {
		if count >= s.opts.readChunkEntities || len(chunk) >= s.opts.readChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		if chunk == nil {
			chunk = make(encodedMsg, 0, min(s.opts.readChunkBytes+4096, 64<<10))
		}
		// ReadResponse.entities is field 1: tag, length, then the entity.
		n := mo.Size(e)
		chunk = protowire.AppendTag(chunk, 1, protowire.BytesType)
		chunk = protowire.AppendVarint(chunk, uint64(n))
		var err error
		chunk, err = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(chunk, e)
		count++
		return err
	})
	if err != nil {
		return toStatus(err)
	}
	if err := flush(); err != nil {
		return toStatus(err)
	}
	if errs != nil {
		return batchStatus(errs, "read requests")
	}
	return nil
}
