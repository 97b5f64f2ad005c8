package ebpfdp

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// mapError turns a failed map operation into the translator sentinel a
// P4Runtime client should see. The kernel reports a full hash as E2BIG and a
// full LPM trie as ENOSPC ("resource exhausted"); EEXIST and ENOENT mean the
// map disagrees with the store about an entry.
func mapError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(err, unix.E2BIG), errors.Is(err, unix.ENOSPC):
		return translator.Errorf(translator.ErrFull, "%s: table full (%v)", msg, err)
	case errors.Is(err, unix.ENOMEM):
		return translator.Errorf(translator.ErrFull, "%s: out of memory (%v)", msg, err)
	case errors.Is(err, ebpf.ErrKeyExist), errors.Is(err, unix.EEXIST):
		return translator.Errorf(translator.ErrExists, "%s: entry already in the map (%v)", msg, err)
	case errors.Is(err, ebpf.ErrKeyNotExist), errors.Is(err, unix.ENOENT):
		return translator.Errorf(translator.ErrNotFound, "%s: entry not in the map (%v)", msg, err)
	}
	return translator.Errorf(translator.ErrInternal, "%s: %v", msg, err)
}
