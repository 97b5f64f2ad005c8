package tcbackend

import (
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// sizeofP4TCMsg is sizeof(struct p4tcmsg { __u32 pipeid; __u32 obj; }).
const sizeofP4TCMsg = 8

// message is one P4TC request: the rtnetlink type and flags, the p4tcmsg
// header, and the attributes after it. Sequence number and port are set when
// it is sent.
type message struct {
	typ    uint16
	flags  uint16 // NLM_F_* besides NLM_F_REQUEST
	pipeID uint32
	obj    uint32
	attrs  []*nl.RtAttr
}

// p4tcMsg is struct p4tcmsg as nl request data.
type p4tcMsg struct{ pipeID, obj uint32 }

// Len is nl.NetlinkRequestData's size.
func (m p4tcMsg) Len() int { return sizeofP4TCMsg }

// Serialize lays the header out in host order.
func (m p4tcMsg) Serialize() []byte {
	b := make([]byte, sizeofP4TCMsg)
	native.PutUint32(b[0:4], m.pipeID)
	native.PutUint32(b[4:8], m.obj)
	return b
}

// serialize renders the message with its netlink header. pid is the
// sender's port as iproute2 leaves it: 0, the kernel fills it in.
func (m *message) serialize(seq uint32) []byte {
	req := &nl.NetlinkRequest{NlMsghdr: unix.NlMsghdr{
		Type:  m.typ,
		Flags: unix.NLM_F_REQUEST | m.flags,
		Seq:   seq,
	}}
	req.AddData(p4tcMsg{m.pipeID, m.obj})
	for _, a := range m.attrs {
		req.AddData(a)
	}
	return req.Serialize()
}

// request renders the message as it goes on the wire: every request but a
// dump asks for an ACK, so that success is reported too (iproute2's
// rtnl_talk does the same).
func (m *message) request(seq uint32) []byte {
	if m.flags&unix.NLM_F_DUMP != unix.NLM_F_DUMP {
		m.flags |= unix.NLM_F_ACK
	}
	return m.serialize(seq)
}

// p4tcReply is a P4TC message from the peer: a reply to a GET, a dump part,
// or an event.
type p4tcReply struct {
	typ    uint16
	flags  uint16
	seq    uint32
	pipeID uint32
	obj    uint32
	attrs  attrs
}

// parseP4TCPayload parses what follows the netlink header of a P4TC message.
func parseP4TCPayload(typ, flags uint16, seq uint32, data []byte) (*p4tcReply, error) {
	if len(data) < sizeofP4TCMsg {
		return nil, fmt.Errorf("parse message type %d: %w: %d bytes, shorter than struct p4tcmsg", typ, ErrProtocol, len(data))
	}
	r := &p4tcReply{
		typ: typ, flags: flags, seq: seq,
		pipeID: native.Uint32(data[0:4]),
		obj:    native.Uint32(data[4:8]),
	}
	as, err := parseAttrs(data[sizeofP4TCMsg:])
	if err != nil {
		return nil, fmt.Errorf("parse message type %d: %w", typ, err)
	}
	r.attrs = as
	return r, nil
}

// parseNetlinkMessages splits a buffer into netlink messages and parses the
// P4TC ones. It is what a recorded capture (testdata) goes through.
func parseNetlinkMessages(b []byte) ([]*p4tcReply, error) {
	var out []*p4tcReply
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return out, fmt.Errorf("parse netlink message: %w: %d trailing bytes", ErrProtocol, len(b))
		}
		l := native.Uint32(b[0:4])
		if l < unix.NLMSG_HDRLEN || int(l) > len(b) {
			return out, fmt.Errorf("parse netlink message: %w: length %d of %d bytes", ErrProtocol, l, len(b))
		}
		typ := native.Uint16(b[4:6])
		flags := native.Uint16(b[6:8])
		seq := native.Uint32(b[8:12])
		if typ >= unix.NLMSG_MIN_TYPE {
			r, err := parseP4TCPayload(typ, flags, seq, b[unix.NLMSG_HDRLEN:l])
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
		next := (int(l) + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		if next > len(b) {
			next = len(b)
		}
		b = b[next:]
	}
	return out, nil
}

// parseNlmsgerr decodes the payload of an NLMSG_ERROR message (done false)
// or an NLMSG_DONE message (done true): the errno, and the extended ack
// message when NLM_F_ACK_TLVS is set. An NLMSG_ERROR echoes the request
// before its TLVs: only its header with NLM_F_CAPPED, else all of it.
func parseNlmsgerr(flags uint16, data []byte, done bool) (errno int32, msg string, err error) {
	if len(data) < 4 {
		return 0, "", fmt.Errorf("parse netlink error: %w: %d bytes", ErrProtocol, len(data))
	}
	errno = int32(native.Uint32(data[0:4]))
	rest := data[4:]
	if flags&unix.NLM_F_ACK_TLVS == 0 {
		return errno, "", nil
	}
	if !done {
		if len(rest) < unix.NLMSG_HDRLEN {
			return errno, "", fmt.Errorf("parse netlink error: %w: no echoed request", ErrProtocol)
		}
		skip := unix.NLMSG_HDRLEN
		if flags&unix.NLM_F_CAPPED == 0 {
			skip = int(native.Uint32(rest[0:4]))
			skip = (skip + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
		}
		if skip > len(rest) || skip < unix.NLMSG_HDRLEN {
			return errno, "", fmt.Errorf("parse netlink error: %w: echoed request of %d bytes in %d", ErrProtocol, skip, len(rest))
		}
		rest = rest[skip:]
	}
	as, err := parseAttrs(rest)
	if err != nil {
		return errno, "", fmt.Errorf("parse extended ack: %w", err)
	}
	msg, _ = as.str(nl.NLMSGERR_ATTR_MSG)
	return errno, msg, nil
}
