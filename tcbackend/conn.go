package tcbackend

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// socketOptions say where P4TC messages go. In production that is the
// kernel: NETLINK_ROUTE, port 0. Tests point the same code at a stand-in for
// a P4TC kernel that listens on a NETLINK_USERSOCK socket (userspace cannot
// answer rtnetlink); nothing else differs between the two paths.
type socketOptions struct {
	// proto is the netlink protocol: unix.NETLINK_ROUTE.
	proto int
	// peer is the netlink port of the P4TC peer: 0, the kernel.
	peer uint32
	// ns is the network namespace the socket lives in; not open: the
	// caller's.
	ns netns.NsHandle
	// timeout bounds each wait for a reply.
	timeout time.Duration
}

// conn is a netlink socket that speaks P4TC requests: one request at a time,
// each answered by replies and an ACK or error, or by a multipart dump.
type conn struct {
	sock    *nl.NetlinkSocket
	peer    uint32
	port    uint32
	timeout time.Duration

	// mu serializes requests; seq is the last sequence number used.
	mu  sync.Mutex
	seq uint32
}

// dial opens a socket for requests. The socket asks for extended acks and
// for capped acks (errors echo only the request's header, not a 16-entry
// batch).
func dial(o socketOptions) (*conn, error) {
	sock, err := openSocket(o)
	if err != nil {
		return nil, err
	}
	if o.timeout > 0 {
		tv := unix.NsecToTimeval(o.timeout.Nanoseconds())
		_ = sock.SetReceiveTimeout(&tv)
		_ = sock.SetSendTimeout(&tv)
	}
	if err := sock.SetExtAck(true); err != nil {
		sock.Close()
		return nil, fmt.Errorf("enable netlink extended ack: %w", err)
	}
	if err := unix.SetsockoptInt(sock.GetFd(), unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1); err != nil {
		sock.Close()
		return nil, fmt.Errorf("enable netlink capped ack: %w", err)
	}
	port, err := sock.GetPid()
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("read netlink port: %w", err)
	}
	return &conn{sock: sock, peer: o.peer, port: port, timeout: o.timeout, seq: uint32(time.Now().Unix())}, nil
}

func openSocket(o socketOptions) (*nl.NetlinkSocket, error) {
	sock, err := nl.GetNetlinkSocketAt(o.ns, netns.None(), o.proto)
	if err != nil {
		return nil, fmt.Errorf("open netlink socket (protocol %d): %w", o.proto, err)
	}
	return sock, nil
}

func (c *conn) close() { c.sock.Close() }

// send writes one message to the peer. A P4TC kernel consumes a request
// synchronously; a userspace peer may have a full queue, so EAGAIN is retried
// until the timeout.
func (c *conn) send(b []byte) error {
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: c.peer}
	deadline := time.Now().Add(c.timeout)
	for {
		err := unix.Sendto(c.sock.GetFd(), b, 0, to)
		if err != unix.EAGAIN && err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("send netlink message: %w", err)
			}
			return nil
		}
		if c.timeout > 0 && time.Now().After(deadline) {
			return fmt.Errorf("send netlink message: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// exchange sends m and collects what the peer answers with the same sequence
// number: P4TC messages (GET replies, dump parts) until the final ACK,
// error or NLMSG_DONE. A dump must end with NLMSG_DONE; any other request
// with an ACK or error (NLM_F_ACK is always set). P4TC dump parts carry the
// request's flags rather than NLM_F_MULTI (p4tc_tbl_entry_dumpit), so
// NLM_F_MULTI is not what ends a dump here.
func (c *conn) exchange(m *message) ([]*p4tcReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	dump := m.flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP
	if err := c.send(m.request(seq)); err != nil {
		return nil, err
	}
	var out []*p4tcReply
	intr := false
	for {
		msgs, from, err := c.sock.Receive()
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return out, fmt.Errorf("wait for reply to message type %d: %w", m.typ, syscall.ETIMEDOUT)
			}
			return out, fmt.Errorf("receive netlink message: %w", err)
		}
		if from.Pid != c.peer {
			continue // not from the P4TC peer
		}
		for _, nm := range msgs {
			h := nm.Header
			if h.Seq != seq || h.Pid != c.port {
				continue // stale reply or someone else's
			}
			if h.Flags&unix.NLM_F_DUMP_INTR != 0 {
				intr = true
			}
			switch h.Type {
			case unix.NLMSG_ERROR:
				errno, msg, err := parseNlmsgerr(h.Flags, nm.Data, false)
				if err != nil {
					return out, err
				}
				if errno != 0 {
					return out, newKernelError(syscall.Errno(-errno), msg)
				}
				if !dump {
					return out, nil
				}
			case unix.NLMSG_DONE:
				errno, msg, err := parseNlmsgerr(h.Flags, nm.Data, true)
				if err != nil && len(nm.Data) != 0 {
					return out, err
				}
				if errno != 0 {
					return out, newKernelError(syscall.Errno(-errno), msg)
				}
				if intr {
					return out, fmt.Errorf("dump message type %d: %w", m.typ, nl.ErrDumpInterrupted)
				}
				return out, nil
			case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
			default:
				r, err := parseP4TCPayload(h.Type, h.Flags, h.Seq, nm.Data)
				if err != nil {
					return out, err
				}
				out = append(out, r)
			}
		}
	}
}

// subscription is a socket joined to a multicast group, reading events.
type subscription struct {
	sock *nl.NetlinkSocket
	peer uint32
}

// subscribe opens a socket in the group. Groups above 32 cannot be bound
// through sockaddr_nl, so membership is always added with
// NETLINK_ADD_MEMBERSHIP (what iproute2's rtnl_add_nl_group does for
// RTNLGRP_P4TC).
func subscribe(o socketOptions, group uint32) (*subscription, error) {
	sock, err := openSocket(o)
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(sock.GetFd(), unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, int(group)); err != nil {
		sock.Close()
		return nil, fmt.Errorf("join netlink group %d: %w", group, err)
	}
	return &subscription{sock: sock, peer: o.peer}, nil
}

// receive returns the next batch of P4TC messages from the peer. ENOBUFS
// means the socket overflowed and events were lost; the caller reports it
// and keeps reading.
func (s *subscription) receive() ([]*p4tcReply, error) {
	for {
		msgs, from, err := s.sock.Receive()
		if err != nil {
			return nil, err
		}
		if from.Pid != s.peer {
			continue
		}
		var out []*p4tcReply
		for _, nm := range msgs {
			if nm.Header.Type < unix.NLMSG_MIN_TYPE {
				continue
			}
			r, err := parseP4TCPayload(nm.Header.Type, nm.Header.Flags, nm.Header.Seq, nm.Data)
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
		return out, nil
	}
}

func (s *subscription) close() { s.sock.Close() }
