package server

import (
	"context"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/translator"
)

// Write applies a batch of updates (§12). The checks before any update, in
// the spec's order: device (NOT_FOUND), role and primary (NOT_FOUND,
// PERMISSION_DENIED), pipeline (FAILED_PRECONDITION).
func (s *Server) Write(ctx context.Context, req *p4v1.WriteRequest) (*p4v1.WriteResponse, error) {
	// Nothing may use what req decoded into after this (see request):
	// the answer below is built of copies, and the translator keeps
	// copies of what it stores (WriteParsed).
	defer release(req)
	start := time.Now()
	wires, views := heldParts(req)
	errs, err := s.write(req, wires, views)
	if err == nil && errs != nil {
		err = batchStatus(errs, "updates")
	}
	d := time.Since(start)
	s.m.write(req, wires, errs, err, d)
	s.logRPC(ctx, "Write", req.GetDeviceId(), req.GetRole(), "updates", len(req.GetUpdates()), err, d)
	if err != nil {
		return nil, err
	}
	return &p4v1.WriteResponse{}, nil
}

// write runs a Write, whose table entry encodings and views are wires
// and views (heldParts): the per-update results (nil: all succeeded) or
// the status that refused the whole batch.
func (s *Server) write(req *p4v1.WriteRequest, wires [][]byte, views []translator.EntryView) ([]error, error) {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return nil, err
	}
	sc, _, err := s.arb.authorize(req.GetRole(), req.GetElectionId(), s.opts.missingElectionZero)
	if err != nil {
		return nil, err
	}
	// Given the wires (a request the codec held), the translator keeps
	// nothing of req, which release can then hand to the next request
	// whole; without them it keeps copies or the tree itself (a request
	// proto.Unmarshal decoded, which nothing reuses).
	errs, err := s.dev.WriteParsed(req.GetUpdates(), wires, views, req.GetAtomicity(), sc)
	if err != nil {
		return nil, toStatus(err)
	}
	return errs, nil
}

// Read streams the entities the request selects (§13), in responses of at
// most readChunkEntities entities or about readChunkBytes bytes: real
// clients (p4runtime-shell's default 4 MiB channel) cannot take one giant
// message. Each entity is encoded once, straight into its response.
func (s *Server) Read(req *p4v1.ReadRequest, stream p4v1.P4Runtime_ReadServer) error {
	start := time.Now()
	n, err := s.read(req, stream)
	d := time.Since(start)
	s.m.read(n, err, d)
	s.logRPC(stream.Context(), "Read", req.GetDeviceId(), req.GetRole(), "entities", len(req.GetEntities()), err, d)
	return err
}

// read serves a Read and returns how many entities it sent.
func (s *Server) read(req *p4v1.ReadRequest, stream p4v1.P4Runtime_ReadServer) (sent int, err error) {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return 0, err
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
		sent += count
		err := stream.SendMsg(chunk)
		chunk, count = nil, 0
		return err
	}
	mo := proto.MarshalOptions{}
	errs, err := s.dev.ReadEncoded(req.GetEntities(), sc, func(e *p4v1.Entity, wire []byte) error {
		if count >= s.opts.readChunkEntities || len(chunk) >= s.opts.readChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		if chunk == nil {
			chunk = make(encodedMsg, 0, min(s.opts.readChunkBytes+4096, 64<<10))
		}
		// ReadResponse.entities is field 1: tag, length, then the entity.
		chunk = protowire.AppendTag(chunk, 1, protowire.BytesType)
		count++
		if wire != nil {
			chunk = protowire.AppendBytes(chunk, wire)
			return nil
		}
		chunk = protowire.AppendVarint(chunk, uint64(mo.Size(e)))
		var err error
		chunk, err = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(chunk, e)
		return err
	})
	if err != nil {
		return sent, toStatus(err)
	}
	if err := flush(); err != nil {
		return sent, toStatus(err)
	}
	if errs != nil {
		return sent, batchStatus(errs, "read requests")
	}
	return sent, nil
}
