package translator

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the translator, the Device or a Backend returns
// for a P4Runtime request wraps exactly one of them; the server maps each to
// its gRPC code (server/status.go) and never inspects the text.
var (
	// ErrInvalid: the entity or config is malformed (INVALID_ARGUMENT).
	ErrInvalid = errors.New("invalid argument")
	// ErrOutOfRange: a value does not fit its bitwidth or an index its
	// array (OUT_OF_RANGE).
	ErrOutOfRange = errors.New("out of range")
	// ErrNotFound: the entity to modify, delete or reference does not exist
	// (NOT_FOUND).
	ErrNotFound = errors.New("not found")
	// ErrExists: an INSERT names an entity that exists (ALREADY_EXISTS).
	ErrExists = errors.New("already exists")
	// ErrFull: the table, pool or profile has no room (RESOURCE_EXHAUSTED).
	ErrFull = errors.New("resource exhausted")
	// ErrPermission: the write is not allowed: const table, action scope,
	// role (PERMISSION_DENIED).
	ErrPermission = errors.New("permission denied")
	// ErrPrecondition: the state does not allow the operation: no pipeline,
	// entity in use (FAILED_PRECONDITION).
	ErrPrecondition = errors.New("failed precondition")
	// ErrUnsupported: a valid request p4tcd does not implement
	// (UNIMPLEMENTED).
	ErrUnsupported = errors.New("unimplemented")
	// ErrInternal: the backend failed in a way the request did not cause
	// (INTERNAL).
	ErrInternal = errors.New("internal error")
	// ErrAborted: the update was not applied because an earlier update of
	// the same atomic batch failed (ABORTED).
	ErrAborted = errors.New("aborted")
)

// isSentinel reports whether err wraps one of the sentinels.
func isSentinel(err error) bool {
	for _, s := range []error{ErrInvalid, ErrOutOfRange, ErrNotFound, ErrExists, ErrFull, ErrPermission, ErrPrecondition, ErrUnsupported, ErrInternal, ErrAborted} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// errorf wraps a sentinel with a message: errorf(ErrInvalid, "table %s: ...").
// The sentinel's own text is not repeated in the message.
func errorf(sentinel error, format string, args ...any) error {
	return &codedError{sentinel: sentinel, msg: fmt.Sprintf(format, args...)}
}

// codedError is an error that matches its sentinel with errors.Is but whose
// text is only the message: clients read "table t: field f: ..." rather than
// "invalid argument: table t: ...".
type codedError struct {
	sentinel error
	msg      string
}

func (e *codedError) Error() string        { return e.msg }
func (e *codedError) Is(target error) bool { return target == e.sentinel }

// Errorf returns an error whose text is the formatted message and which
// matches sentinel with errors.Is. Backends use it to report P4Runtime-visible
// failures (e.g. Errorf(ErrFull, "table %s: map full", name)).
func Errorf(sentinel error, format string, args ...any) error {
	return errorf(sentinel, format, args...)
}
