package server

import (
	"context"
	"errors"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/p4tcd/p4tcd/translator"
)

// This file is the one place where domain errors become gRPC codes.

// codeOf maps an error to its gRPC code by the sentinel it wraps.
func codeOf(err error) codes.Code {
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code()
	}
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, translator.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, translator.ErrOutOfRange):
		return codes.OutOfRange
	case errors.Is(err, translator.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, translator.ErrExists):
		return codes.AlreadyExists
	case errors.Is(err, translator.ErrFull):
		return codes.ResourceExhausted
	case errors.Is(err, translator.ErrPermission):
		return codes.PermissionDenied
	case errors.Is(err, translator.ErrPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, translator.ErrUnsupported):
		return codes.Unimplemented
	case errors.Is(err, translator.ErrAborted):
		return codes.Aborted
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	}
	return codes.Internal
}

// toStatus turns an RPC-wide error into a gRPC status error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// batchStatus reports per-update (or per-request) results as P4Runtime
// requires (§12.5 "Error Reporting"): top-level UNKNOWN and exactly one
// p4.v1.Error per element, in order, OK ones carrying only the code.
func batchStatus(errs []error, what string) error {
	failed := 0
	details := make([]protoadapt.MessageV1, len(errs))
	for i, err := range errs {
		if err == nil {
			details[i] = &p4v1.Error{}
			continue
		}
		failed++
		details[i] = &p4v1.Error{CanonicalCode: int32(codeOf(err)), Message: err.Error()}
	}
	st := status.Newf(codes.Unknown, "%d of %d %s failed", failed, len(errs), what)
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return status.Errorf(codes.Internal, "encode error details: %v", err)
	}
	return withDetails.Err()
}
