package tcbackend

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// probePipeline is the pipeline name the probes ask about. It need not
// exist: the probes only look at how the kernel refuses them.
const probePipeline = "p4tcd-probe"

// Probe reports whether the kernel (in o.NetNS) speaks P4TC — whether it
// answers `tc p4template get pipeline/<p>` (RTM_GETP4TEMPLATE) at all — and
// with ABIAuto whether its ABI is one tcbackend encodes. It returns nil, an error
// wrapping ErrNotSupported on a kernel without P4TC, or one wrapping
// ErrUnknownABI when P4TC answers in a way none of the known ABIs does.
// Probing sends only GET requests, which need no privilege.
func Probe(o Options) error {
	c, err := dial(o.socketOptions())
	if err != nil {
		return fmt.Errorf("probe P4TC: %w", err)
	}
	defer c.close()
	_, err = detect(c, o.ABI)
	return err
}

// detect checks that the peer handles P4TC messages and settles the ABI:
// want itself unless it is ABIAuto.
//
// The probes rely on how Linux validates netlink attributes: P4TC parses
// with strict policies, so an attribute number above an enum's maximum is
// refused with "Unknown attribute type" and an attribute of the wrong size
// with "invalid attribute length" (lib/nlattr.c), before P4TC looks for the
// (absent) probe pipeline. The ABIs differ exactly there:
//
//   - series 1 has P4TC_ENTRY_DELETE_WHODUNNIT (u8) as entry attribute 10,
//     LK13 and v17 P4TC_ENTRY_WHO_CREATED_PID (u32): a GET carrying a u32
//     in attribute 10 is refused for its length by series 1 only;
//   - P4TC_ROOT_MAX is 4 in LK13 and 5 (P4TC_ROOT_SUBSCRIBE) in v17: a
//     template GET with root attribute 5 is refused as unknown by LK13.
//
// None of this has been run against a real P4TC kernel (there is none on
// the machines tcbackend was written on); the stand-in kernel of the tests
// answers as the sources say the kernel would.
func detect(c *conn, want ABI) (ABI, error) {
	e := encoder{&abiSeries1} // message types and root numbers are common
	_, err := c.exchange(e.pipelineGet(probePipeline))
	if err := presence(err); err != nil {
		return ABIAuto, err
	}
	if want != ABIAuto {
		if _, err := tableFor(want); err != nil {
			return ABIAuto, err
		}
		return want, nil
	}
	// Series 1 or later?
	get := e.runtimeMsg(e.a.msgGet, 0, probePipeline,
		nest(1, nest(e.a.params, attrU32(10, 0)), attrU32(e.a.path, 0)))
	_, err = c.exchange(get)
	switch kind := refusal(err); kind {
	case refusedLength:
		return ABISeries1, nil
	case refusedOther:
	default:
		return ABIAuto, fmt.Errorf("probe P4TC ABI (entry attribute 10): %w: unexpected answer %v; set --p4tc-abi", ErrUnknownABI, err)
	}
	// LK13 or v17?
	tmpl := e.pipelineGet(probePipeline)
	tmpl.attrs = append(tmpl.attrs, nest(5))
	_, err = c.exchange(tmpl)
	switch refusal(err) {
	case refusedUnknown:
		return ABILK13, nil
	case refusedOther:
		return ABIV17, nil
	}
	return ABIAuto, fmt.Errorf("probe P4TC ABI (root attribute 5): %w: unexpected answer %v; set --p4tc-abi", ErrUnknownABI, err)
}

// presence interprets the answer to a template GET: rtnetlink refuses a
// message type without a handler with EOPNOTSUPP (rtnetlink_rcv_msg).
func presence(err error) error {
	var ke *KernelError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && ke.Errno == syscall.EOPNOTSUPP:
		return fmt.Errorf("probe P4TC: the kernel refuses RTM_GETP4TEMPLATE: %w: %w", ErrNotSupported, ke)
	case errors.As(err, &ke):
		return nil // a P4TC handler refused the probe pipeline
	}
	return fmt.Errorf("probe P4TC: %w", err)
}

type refusalKind uint8

const (
	refusedNone    refusalKind = iota // no kernel error
	refusedLength                     // "invalid attribute length"
	refusedUnknown                    // "Unknown attribute type"
	refusedOther                      // any other kernel error
)

func refusal(err error) refusalKind {
	var ke *KernelError
	if err == nil || !errors.As(err, &ke) {
		return refusedNone
	}
	m := strings.ToLower(ke.Msg)
	switch {
	case strings.Contains(m, "invalid attribute length"):
		return refusedLength
	case strings.Contains(m, "unknown attribute type"):
		return refusedUnknown
	}
	return refusedOther
}
