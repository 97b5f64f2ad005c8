package tcbackend

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/p4tcd/p4tcd/translator"
)

// Sentinel errors of the package.
var (
	// ErrNotSupported: the kernel rejects P4TC's message types (a stock
	// kernel, or a kernel without the P4TC module loaded).
	ErrNotSupported = errors.New("kernel has no P4TC")
	// ErrUnknownABI: the ABI named is not one tcbackend encodes, or the
	// probe could not tell which one the kernel speaks.
	ErrUnknownABI = errors.New("unknown P4TC ABI")
	// ErrProtocol: the peer sent something that is not valid P4TC netlink
	// (short message, wrong sequence, undecodable attribute).
	ErrProtocol = errors.New("P4TC protocol error")
	// ErrClosed: the backend was closed.
	ErrClosed = errors.New("tcbackend closed")
)

// KernelError is an error the P4TC peer returned for a request: the errno of
// the NLMSG_ERROR message and the netlink extended ack text.
type KernelError struct {
	Errno syscall.Errno
	// Msg is the extended ack message (NLMSGERR_ATTR_MSG), without the
	// batch summary P4TC appends.
	Msg string
	// Done is how many entries of a batched runtime request took effect
	// before the failing one, from P4TC's "S <ok>/<batched>" summary; -1
	// when the reply did not say.
	Done int
	// Batched is how many entries the kernel saw in the request, or -1.
	Batched int
}

// Error returns the errno and the kernel's message.
func (e *KernelError) Error() string {
	if e.Msg == "" {
		return e.Errno.Error()
	}
	return e.Errno.Error() + ": " + e.Msg
}

// Unwrap lets errors.Is match the errno.
func (e *KernelError) Unwrap() error { return e.Errno }

// batchSummary matches the line P4TC's runtime handlers append to the
// extended ack of a failed batch (p4tc_tbl_entry.c __p4tc_tbl_entry_root):
// "S <succeeded>/<batched>(FE <events failed>) entries" when events are
// generated, "S <succeeded>/<batched> entries" on the fast path. On the
// event path a failed event does not count as succeeded although the entry
// took effect, so the entries done are succeeded+FE.
var batchSummary = regexp.MustCompile(`(?:^|\n)S (\d+)/(\d+)(?:\(FE (\d+)\))? entries$`)

// newKernelError builds a KernelError from an errno and extended ack text,
// splitting off P4TC's batch summary.
func newKernelError(errno syscall.Errno, msg string) *KernelError {
	e := &KernelError{Errno: errno, Msg: msg, Done: -1, Batched: -1}
	m := batchSummary.FindStringSubmatchIndex(msg)
	if m == nil {
		return e
	}
	num := func(i int) int {
		if m[2*i] < 0 {
			return 0
		}
		n, _ := strconv.Atoi(msg[m[2*i]:m[2*i+1]])
		return n
	}
	e.Done, e.Batched = num(1)+num(3), num(2)
	e.Msg = msg[:m[0]]
	if e.Msg == "(null)" {
		// The kernel formats a missing message with "%s".
		e.Msg = ""
	}
	return e
}

// mapKernelError wraps a kernel error in the translator sentinel P4Runtime
// clients should see, keeping the kernel's own text. what names the
// operation ("insert entry of table t").
func mapKernelError(what string, err error) error {
	var ke *KernelError
	if !errors.As(err, &ke) {
		return fmt.Errorf("%s: %w", what, err)
	}
	var sentinel error
	switch ke.Errno {
	case syscall.EEXIST:
		sentinel = translator.ErrExists
	case syscall.ENOENT, syscall.ESRCH:
		sentinel = translator.ErrNotFound
	case syscall.ENOSPC, syscall.E2BIG, syscall.ENOMEM, syscall.ENOBUFS:
		sentinel = translator.ErrFull
	case syscall.EPERM, syscall.EACCES:
		sentinel = translator.ErrPermission
	case syscall.EINVAL, syscall.ERANGE, syscall.EOPNOTSUPP:
		sentinel = translator.ErrInvalid
		if isNotFoundText(ke.Msg) {
			sentinel = translator.ErrNotFound
		}
	case syscall.EBUSY, syscall.EAGAIN:
		sentinel = translator.ErrPrecondition
	default:
		sentinel = translator.ErrInternal
	}
	return translator.Errorf(sentinel, "%s: kernel: %s", what, ke)
}

// isNotFoundText recognises P4TC's "not found" messages that come with
// EINVAL rather than ENOENT (p4tc_pipeline.c p4tc_pipeline_find_byany:
// "Pipeline name not found"; table and action lookups say "Unable to find").
func isNotFoundText(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "not found") || strings.Contains(m, "unable to find")
}
