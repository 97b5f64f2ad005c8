package tcbackend

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/testutil"
)

// standIn is a stand-in for a P4TC kernel, for tests. Userspace cannot
// answer rtnetlink, so it listens on a NETLINK_USERSOCK socket in a network
// namespace the test creates, and tcbackend's socket layer is pointed at it
// (protocol and port); everything above the socket is the production code.
//
// It is not P4TC. It keeps pipelines, tables and entries in maps and answers
// as net/sched/p4tc (series 1 and LK13 sources) says the kernel does, for the
// behaviour tcbackend relies on: sequence numbers and ACKs, extended-ack
// errors with P4TC's batch summary (truncated to the kernel's 80 bytes),
// batches that stop at the first failure, multipart dumps of 16 entries per
// part that carry the request's flags and end with NLMSG_DONE, strict
// attribute validation (unknown types, wrong lengths), GET replies in the
// kernel's dump format, and events multicast to a group. Tests can inject
// failures and datapath actions (an entry created by the datapath, one aged
// out). It decodes requests with its own attribute walker and the uAPI
// numbers of uapi_test.go, not with tcbackend's decoder.
type standIn struct {
	t     *testing.T
	sock  *nl.NetlinkSocket
	port  uint32
	abi   ABI
	u     entryAttrs
	rootN uint16 // P4TC_ROOT_MAX

	mu sync.Mutex
	// stock makes it answer like a kernel without P4TC.
	stock bool
	// events multicasts entry events to group when it is not 0.
	group     uint32
	pipelines map[string]*siPipeline
	// failEntry, when set, is asked before each batch element is applied;
	// a non-zero errno fails it with msg.
	failEntry func(verb uint16, idx int, e *siEntry) (syscall.Errno, string)
	// requests counts messages by type.
	requests map[uint16]int
}

type siPipeline struct {
	name    string
	sealed  bool
	actions map[string]bool
	tables  map[string]*siTable
}

type siTable struct {
	name       string
	id         uint32
	typ        uint8
	keysz      uint32
	maxEntries uint32
	perms      uint16
	profiles   []uint64
	entries    map[string]*siEntry
	prios      map[uint32]bool
	defaultAct []byte // the DEFAULT_MISS nest of the last update
}

type siEntry struct {
	table      string
	key, mask  []byte
	prio       uint32
	act        *siAction
	perms      uint16
	createdBy  uint8
	updatedBy  uint8
	dynamic    bool
	aging      uint64
	creatorPID uint32
}

type siAction struct {
	kind   string
	flags  []byte // TCA_ACT_FLAGS payload, or nil
	params []siParam
}

type siParam struct {
	name      string
	id        uint32
	bitend    uint16
	container uint32
	raw       []byte
}

// newStandIn starts a stand-in speaking abi in ns.
func newStandIn(t *testing.T, ns *testutil.NetNS, abi ABI) *standIn {
	t.Helper()
	sock, err := nl.GetNetlinkSocketAt(ns.Handle(), netns.None(), unix.NETLINK_USERSOCK)
	if err != nil {
		t.Fatalf("stand-in socket: %v", err)
	}
	port, err := sock.GetPid()
	if err != nil {
		t.Fatal(err)
	}
	u, _, rootMax := uapiFor(abi)
	s := &standIn{t: t, sock: sock, port: port, abi: abi, u: u, rootN: rootMax, pipelines: map[string]*siPipeline{}, requests: map[uint16]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		sock.Close()
		<-done
	})
	return s
}

// options points a Backend at the stand-in.
func (s *standIn) options(ns *testutil.NetNS) Options {
	return Options{NetNS: ns.Handle(), sock: socketOptions{proto: unix.NETLINK_USERSOCK, peer: s.port}}
}

func (s *standIn) serve() {
	for {
		msgs, from, err := s.sock.Receive()
		if err != nil {
			return // closed
		}
		for _, m := range msgs {
			s.mu.Lock()
			s.requests[m.Header.Type]++
			replies := s.handle(m, from.Pid)
			s.mu.Unlock()
			for _, r := range replies {
				if err := unix.Sendto(s.sock.GetFd(), r.b, 0, r.to); err != nil && !errors.Is(err, unix.ESRCH) {
					s.t.Logf("stand-in: send: %v", err)
				}
			}
		}
	}
}

type siReply struct {
	b  []byte
	to *unix.SockaddrNetlink
}

// siAttr is one attribute as the stand-in's walker sees it.
type siAttr struct {
	typ    uint16
	nested bool
	val    []byte
}

func siWalk(b []byte) ([]siAttr, error) {
	var out []siAttr
	for len(b) >= 4 {
		l := int(ne().Uint16(b))
		if l < 4 || l > len(b) {
			return out, fmt.Errorf("attribute length %d of %d", l, len(b))
		}
		typ := ne().Uint16(b[2:])
		out = append(out, siAttr{typ: typ &^ (NLA_F_NESTED | 1<<14), nested: typ&NLA_F_NESTED != 0, val: b[4:l]})
		n := (l + 3) &^ 3
		if n > len(b) {
			n = len(b)
		}
		b = b[n:]
	}
	return out, nil
}

func siFind(as []siAttr, typ uint16) *siAttr {
	for i := range as {
		if as[i].typ == typ {
			return &as[i]
		}
	}
	return nil
}

func siStr(a *siAttr) string {
	if a == nil {
		return ""
	}
	return strings.TrimRight(string(a.val), "\x00")
}

// kerr is a kernel error: errno and extended ack text.
type kerr struct {
	errno syscall.Errno
	msg   string
}

func (s *standIn) handle(m syscall.NetlinkMessage, from uint32) []siReply {
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: from}
	h := m.Header
	ack := func(e *kerr) siReply { return siReply{b: s.nlmsgerr(h, from, e), to: to} }
	if s.stock || h.Type < RTM_CREATEP4TEMPLATE || h.Type > RTM_P4TC_UPDATE {
		// rtnetlink_rcv_msg: no handler for the type.
		return []siReply{ack(&kerr{errno: syscall.EOPNOTSUPP})}
	}
	if len(m.Data) < 8 {
		return []siReply{ack(&kerr{syscall.EINVAL, "message too short"})}
	}
	obj := ne().Uint32(m.Data[4:])
	root, err := siWalk(m.Data[8:])
	if err != nil {
		return []siReply{ack(&kerr{syscall.EINVAL, err.Error()})}
	}
	for _, a := range root {
		if a.typ == 0 || a.typ > s.rootN {
			return []siReply{ack(&kerr{syscall.EINVAL, "Unknown attribute type"})}
		}
	}
	pname := siStr(siFind(root, P4TC_ROOT_PNAME))
	rootNest := siFind(root, P4TC_ROOT)
	if rootNest == nil || !rootNest.nested {
		return []siReply{ack(&kerr{syscall.EINVAL, "Netlink P4TC attributes missing"})}
	}
	var replies []siReply
	var e *kerr
	if h.Type <= RTM_UPDATEP4TEMPLATE {
		e = s.template(h.Type, obj, pname, rootNest.val)
	} else {
		replies, e = s.runtime(h, from, pname, rootNest.val)
		if h.Type == RTM_P4TC_GET && h.Flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP && e == nil {
			for i := range replies {
				replies[i].to = to
			}
			done := make([]byte, 20)
			ne().PutUint32(done[0:], 20)
			ne().PutUint16(done[4:], unix.NLMSG_DONE)
			ne().PutUint16(done[6:], unix.NLM_F_MULTI)
			ne().PutUint32(done[8:], h.Seq)
			ne().PutUint32(done[12:], from)
			return append(replies, siReply{b: done, to: to})
		}
	}
	for i := range replies {
		if replies[i].to == nil {
			replies[i].to = to
		}
	}
	if e != nil || h.Flags&unix.NLM_F_ACK != 0 {
		replies = append(replies, ack(e))
	}
	return replies
}

// nlmsgerr builds an NLMSG_ERROR answering h: capped (only h echoed) with
// the message as NLMSGERR_ATTR_MSG. The text is cut to 79 bytes as the
// kernel's NL_SET_ERR_MSG_FMT cuts it (NETLINK_MAX_FMTMSG_LEN).
func (s *standIn) nlmsgerr(h syscall.NlMsghdr, to uint32, e *kerr) []byte {
	w := &wb{b: make([]byte, 16)}
	var errno int32
	if e != nil {
		errno = -int32(e.errno)
	}
	w.b = ne().AppendUint32(w.b, uint32(errno))
	hdr := make([]byte, 16)
	ne().PutUint32(hdr[0:], h.Len)
	ne().PutUint16(hdr[4:], h.Type)
	ne().PutUint16(hdr[6:], h.Flags)
	ne().PutUint32(hdr[8:], h.Seq)
	ne().PutUint32(hdr[12:], h.Pid)
	w.b = append(w.b, hdr...)
	flags := uint16(unix.NLM_F_CAPPED)
	if e != nil && e.msg != "" {
		msg := e.msg
		if len(msg) > 79 {
			msg = msg[:79]
		}
		w.str(nl.NLMSGERR_ATTR_MSG, msg)
		flags |= unix.NLM_F_ACK_TLVS
	}
	ne().PutUint32(w.b[0:], uint32(len(w.b)))
	ne().PutUint16(w.b[4:], unix.NLMSG_ERROR)
	ne().PutUint16(w.b[6:], flags)
	ne().PutUint32(w.b[8:], h.Seq)
	ne().PutUint32(w.b[12:], to)
	return w.b
}

func (s *standIn) template(typ uint16, obj uint32, pname string, root []byte) *kerr {
	as, err := siWalk(root)
	if err != nil {
		return &kerr{syscall.EINVAL, err.Error()}
	}
	params := []siAttr{}
	if p := siFind(as, P4TC_PARAMS); p != nil {
		if params, err = siWalk(p.val); err != nil {
			return &kerr{syscall.EINVAL, err.Error()}
		}
	}
	var id uint32
	if p := siFind(as, P4TC_PATH); p != nil && len(p.val) >= 4 {
		id = ne().Uint32(p.val)
	}
	pl := s.pipelines[pname]
	if obj == P4TC_OBJ_PIPELINE {
		switch typ {
		case RTM_CREATEP4TEMPLATE:
			if pl != nil {
				return &kerr{syscall.EEXIST, "Pipeline exists"}
			}
			s.pipelines[pname] = &siPipeline{name: pname, actions: map[string]bool{}, tables: map[string]*siTable{}}
			return nil
		case RTM_GETP4TEMPLATE:
			if pl == nil {
				return &kerr{syscall.EINVAL, "Pipeline name not found"}
			}
			return nil
		case RTM_DELP4TEMPLATE:
			if pl == nil {
				return &kerr{syscall.EINVAL, "Pipeline name not found"}
			}
			delete(s.pipelines, pname)
			return nil
		case RTM_UPDATEP4TEMPLATE:
			if pl == nil {
				return &kerr{syscall.EINVAL, "Pipeline name not found"}
			}
			if pl.sealed {
				return &kerr{syscall.EINVAL, "Pipeline is sealed"}
			}
			if siFind(params, P4TC_PIPELINE_STATE) != nil {
				pl.sealed = true
			}
			return nil
		}
	}
	if pl == nil {
		return &kerr{syscall.EINVAL, "Pipeline name not found"}
	}
	if pl.sealed {
		return &kerr{syscall.EINVAL, "Pipeline is sealed"}
	}
	switch obj {
	case P4TC_OBJ_ACT:
		name := pname + "/" + siStr(siFind(params, P4TC_ACT_NAME))
		if typ == RTM_CREATEP4TEMPLATE {
			if pl.actions[name] {
				return &kerr{syscall.EEXIST, "Action already exists with same name"}
			}
			pl.actions[name] = false
		} else if a := siFind(params, P4TC_ACT_ACTIVE); a != nil {
			pl.actions[name] = true
		}
		return nil
	case P4TC_OBJ_TABLE:
		name := siStr(siFind(params, P4TC_TABLE_NAME))
		if typ == RTM_UPDATEP4TEMPLATE {
			tb := pl.tables[name]
			if tb == nil {
				return &kerr{syscall.EINVAL, "Table name not found"}
			}
			if d := siFind(params, P4TC_TABLE_DEFAULT_MISS); d != nil {
				tb.defaultAct = d.val
			}
			return nil
		}
		tb := &siTable{name: name, id: id, typ: P4TC_TABLE_TYPE_EXACT, maxEntries: 256, perms: 0x3da4, entries: map[string]*siEntry{}, prios: map[uint32]bool{}}
		for _, a := range params {
			switch a.typ {
			case P4TC_TABLE_KEYSZ:
				tb.keysz = ne().Uint32(a.val)
			case P4TC_TABLE_MAX_ENTRIES:
				tb.maxEntries = ne().Uint32(a.val)
			case P4TC_TABLE_TYPE:
				tb.typ = a.val[0]
			case P4TC_TABLE_PERMISSIONS:
				tb.perms = ne().Uint16(a.val)
			case P4TC_TABLE_NUM_TIMER_PROFILES:
				tb.profiles = make([]uint64, ne().Uint32(a.val))
			case P4TC_TABLE_ACTS_LIST:
				acts, _ := siWalk(a.val)
				for _, act := range acts {
					as, _ := siWalk(act.val)
					if n := siStr(siFind(as, P4TC_TABLE_ACT_NAME)); n != "NoAction" && !pl.actionKnown(n) {
						return &kerr{syscall.EINVAL, "Unknown action " + n}
					}
				}
			}
		}
		if tb.profiles == nil {
			tb.profiles = make([]uint64, 4)
		}
		for i := range tb.profiles {
			tb.profiles[i] = uint64(i+1) * 30000
		}
		pl.tables[name] = tb
		return nil
	}
	return &kerr{syscall.EINVAL, "Invalid object type"}
}

func (pl *siPipeline) actionKnown(n string) bool { _, ok := pl.actions[n]; return ok }

// entryPolicy is the kind of each entry attribute of the ABI (series 1 or
// LK13 p4tc_entry_policy): 'b' binary, 's' string, 'n' nested, or the byte
// size of an integer; 0 for types without a policy.
func (s *standIn) entryPolicy(typ uint16) byte {
	u := s.u
	switch typ {
	case u.TBLNAME:
		return 's'
	case u.KEY_BLOB, u.MASK_BLOB:
		return 'b'
	case u.PRIO:
		return 4
	case u.ACT, u.TBL_ATTRS, u.FILTER:
		return 'n'
	case u.WHODUNNIT, u.WHO_CREATED, u.WHO_UPDATED, u.WHO_DELETED, u.DYNAMIC:
		return 1
	case u.PERMISSIONS:
		return 2
	case u.AGING:
		return 8
	case u.PROFILE_ID:
		return 4
	}
	if u.WHO_CREATED_PID != 0 && typ == u.WHO_CREATED_PID {
		return 4
	}
	return 0
}

// runtime handles RTM_P4TC_* for runtime tables.
func (s *standIn) runtime(h syscall.NlMsghdr, from uint32, pname string, rootB []byte) ([]siReply, *kerr) {
	pl := s.pipelines[pname]
	rootAttrs, err := siWalk(rootB)
	if err != nil {
		return nil, &kerr{syscall.EINVAL, err.Error()}
	}
	if h.Type == RTM_P4TC_GET && h.Flags&unix.NLM_F_DUMP == unix.NLM_F_DUMP {
		return s.dump(h, from, pl, rootAttrs)
	}
	for _, a := range rootAttrs {
		if a.typ == 0 || a.typ > P4TC_MSGBATCH_SIZE {
			return nil, &kerr{syscall.EINVAL, "Unknown attribute type"}
		}
	}
	if len(rootAttrs) == 0 {
		return nil, &kerr{syscall.EINVAL, "No elements in root table array"}
	}
	listening := s.group != 0
	var replies []siReply
	for i, el := range rootAttrs {
		r, e := s.element(h, from, pl, el.val, i)
		replies = append(replies, r...)
		if e != nil {
			// __p4tc_tbl_entry_root: the summary goes after the message.
			if listening || h.Type == RTM_P4TC_GET {
				e.msg = fmt.Sprintf("%s\nS %d/%d(FE %d) entries", orNull(e.msg), i, len(rootAttrs), 0)
			} else {
				e.msg = fmt.Sprintf("%s\nS %d/%d entries", orNull(e.msg), i, len(rootAttrs))
			}
			return replies, e
		}
	}
	return replies, nil
}

func orNull(s string) string {
	if s == "" {
		return "(null)"
	}
	return s
}

// element handles one batch element: P4TC_PATH and P4TC_PARAMS.
func (s *standIn) element(h syscall.NlMsghdr, from uint32, pl *siPipeline, b []byte, idx int) ([]siReply, *kerr) {
	as, err := siWalk(b)
	if err != nil {
		return nil, &kerr{syscall.EINVAL, err.Error()}
	}
	pa := siFind(as, P4TC_PARAMS)
	if pa == nil {
		return nil, &kerr{syscall.EINVAL, "Must specify parameters"}
	}
	ps, err := siWalk(pa.val)
	if err != nil {
		return nil, &kerr{syscall.EINVAL, err.Error()}
	}
	for _, a := range ps {
		if a.typ == 0 || a.typ > s.u.MAX {
			return nil, &kerr{syscall.EINVAL, "Unknown attribute type"}
		}
		switch k := s.entryPolicy(a.typ); k {
		case 1, 2, 4, 8:
			if len(a.val) != int(k) {
				return nil, &kerr{syscall.EINVAL, "invalid attribute length"}
			}
		case 'n':
			if !a.nested {
				return nil, &kerr{syscall.EINVAL, "NLA_F_NESTED is missing"}
			}
		}
	}
	if pl == nil {
		return nil, &kerr{syscall.EINVAL, "Pipeline name not found"}
	}
	if h.Type != RTM_P4TC_GET && !pl.sealed {
		return nil, &kerr{syscall.EINVAL, "Pipeline must be sealed for runtime changes"}
	}
	tb := pl.tables[siStr(siFind(ps, s.u.TBLNAME))]
	if p := siFind(as, P4TC_PATH); tb == nil && p != nil && len(p.val) >= 4 {
		for _, t := range pl.tables {
			if t.id == ne().Uint32(p.val) {
				tb = t
			}
		}
	}
	if tb == nil {
		return nil, &kerr{syscall.EINVAL, "Table name not found"}
	}
	if h.Type == RTM_P4TC_UPDATE && siFind(ps, s.u.TBL_ATTRS) != nil {
		return nil, s.tblAttrs(tb, siFind(ps, s.u.TBL_ATTRS).val)
	}
	if h.Type == RTM_P4TC_DEL && h.Flags&unix.NLM_F_ROOT != 0 {
		for k, e := range tb.entries {
			delete(tb.prios, e.prio)
			delete(tb.entries, k)
		}
		return nil, nil
	}
	if h.Type != RTM_P4TC_GET && siFind(ps, s.u.WHODUNNIT) == nil {
		return nil, &kerr{syscall.EINVAL, "Must specify whodunnit attribute"}
	}
	e := &siEntry{table: tb.name}
	if k := siFind(ps, s.u.KEY_BLOB); k != nil {
		e.key = append([]byte(nil), k.val...)
	}
	if int(tb.keysz+7)/8 != len(e.key) {
		return nil, &kerr{syscall.EINVAL, "Key blob size and table key size differ"}
	}
	e.mask = bytes.Repeat([]byte{0xff}, len(e.key))
	if tb.typ != P4TC_TABLE_TYPE_EXACT {
		m := siFind(ps, s.u.MASK_BLOB)
		if m == nil || len(m.val) != len(e.key) {
			return nil, &kerr{syscall.EINVAL, "Key and mask blob must have the same length"}
		}
		e.mask = append([]byte(nil), m.val...)
		for i := range e.key {
			e.key[i] &= e.mask[i]
		}
	}
	if p := siFind(ps, s.u.PRIO); p != nil {
		e.prio = ne().Uint32(p.val)
	}
	if tb.typ == P4TC_TABLE_TYPE_EXACT {
		if e.prio != 0 {
			return nil, &kerr{syscall.EINVAL, "Mustn't specify entry priority for exact"}
		}
		e.prio = 64000 // P4TC_TABLE_EXACT_PRIO
	} else if e.prio == 0 && h.Type != RTM_P4TC_CREATE {
		return nil, &kerr{syscall.EINVAL, "Must specify table entry priority"}
	}
	if w := siFind(ps, s.u.WHODUNNIT); w != nil {
		e.createdBy = w.val[0]
	}
	if a := siFind(ps, s.u.ACT); a != nil {
		act, err := s.parseAction(a.val)
		if err != nil {
			return nil, &kerr{syscall.EINVAL, err.Error()}
		}
		e.act = act
	}
	e.perms = tb.perms &^ (1<<13 | 1<<6)
	if p := siFind(ps, s.u.PERMISSIONS); p != nil {
		e.perms = ne().Uint16(p.val)
	}
	if siFind(ps, s.u.DYNAMIC) != nil {
		e.dynamic = true
	}
	if a := siFind(ps, s.u.AGING); a != nil {
		if !e.dynamic {
			return nil, &kerr{syscall.EINVAL, "Aging may only be set alongside dynamic"}
		}
		e.aging = ne().Uint64(a.val)
		found := false
		for _, p := range tb.profiles {
			found = found || p == e.aging
		}
		if !found {
			return nil, &kerr{syscall.EINVAL, fmt.Sprintf("Specified aging %d doesn't match any timer profile", e.aging)}
		}
	}
	if s.failEntry != nil {
		if errno, msg := s.failEntry(h.Type, idx, e); errno != 0 {
			return nil, &kerr{errno, msg}
		}
	}
	id := siID(tb, e)
	old := tb.entries[id]
	switch h.Type {
	case RTM_P4TC_CREATE:
		if old != nil {
			return nil, &kerr{syscall.EEXIST, "Failed to create/update entry"}
		}
		if uint32(len(tb.entries)) >= tb.maxEntries {
			return nil, &kerr{syscall.ENOSPC, "Table max entries reached"}
		}
		if tb.typ != P4TC_TABLE_TYPE_EXACT {
			if e.prio == 0 {
				for e.prio = 1; tb.prios[e.prio]; e.prio++ {
				}
				id = siID(tb, e)
			} else if tb.prios[e.prio] {
				return nil, &kerr{syscall.ENOSPC, "Unable to allocate priority"}
			}
			tb.prios[e.prio] = true
		}
		e.creatorPID = 4242
		tb.entries[id] = e
		return nil, s.event(RTM_P4TC_CREATE, pl, tb, e, 0)
	case RTM_P4TC_UPDATE:
		if old == nil {
			return nil, &kerr{syscall.ENOENT, "Unable to find entry"}
		}
		e.createdBy, e.updatedBy, e.creatorPID = old.createdBy, P4TC_ENTITY_TC, old.creatorPID
		tb.entries[id] = e
		return nil, s.event(RTM_P4TC_UPDATE, pl, tb, e, 0)
	case RTM_P4TC_DEL:
		if old == nil {
			return nil, &kerr{syscall.ENOENT, "Unable to find entry"}
		}
		delete(tb.entries, id)
		delete(tb.prios, old.prio)
		return nil, s.event(RTM_P4TC_DEL, pl, tb, old, P4TC_ENTITY_TC)
	case RTM_P4TC_GET:
		if old == nil {
			return nil, &kerr{syscall.ENOENT, "Unable to find entry"}
		}
		return []siReply{{b: s.entryMsg(RTM_P4TC_GET, h.Seq, from, pl, []*siEntry{old}, tb, 0, 0)}}, nil
	}
	return nil, &kerr{syscall.EOPNOTSUPP, "unknown command"}
}

func siID(tb *siTable, e *siEntry) string {
	if tb.typ == P4TC_TABLE_TYPE_EXACT {
		return string(e.key)
	}
	return fmt.Sprintf("%x/%x/%d", e.key, e.mask, e.prio)
}

func (s *standIn) tblAttrs(tb *siTable, b []byte) *kerr {
	as, err := siWalk(b)
	if err != nil {
		return &kerr{syscall.EINVAL, err.Error()}
	}
	for _, a := range as {
		switch a.typ {
		case P4TC_ENTRY_TBL_ATTRS_DEFAULT_MISS:
			tb.defaultAct = a.val
		case P4TC_ENTRY_TBL_ATTRS_TIMER_PROFILE:
			ps, _ := siWalk(a.val)
			id, ag := siFind(ps, P4TC_TIMER_PROFILE_ID), siFind(ps, P4TC_TIMER_PROFILE_AGING)
			if id == nil || ag == nil {
				return &kerr{syscall.EINVAL, "Must specify table profile ID and aging"}
			}
			pid, aging := ne().Uint32(id.val), ne().Uint64(ag.val)
			if int(pid) >= len(tb.profiles) {
				return &kerr{syscall.ENOENT, fmt.Sprintf("Unable to find timer profile with ID %d", pid)}
			}
			for i, p := range tb.profiles {
				if p == aging && uint32(i) != pid {
					return &kerr{syscall.EINVAL, fmt.Sprintf("Aging %d was already specified by profile ID %d", aging, i)}
				}
			}
			tb.profiles[pid] = aging
		}
	}
	return nil
}

// parseAction reads P4TC_ENTRY_ACT as the kernel's tc action code would.
func (s *standIn) parseAction(b []byte) (*siAction, error) {
	list, err := siWalk(b)
	if err != nil || len(list) != 1 {
		return nil, fmt.Errorf("Only one action is allowed")
	}
	as, err := siWalk(list[0].val)
	if err != nil {
		return nil, err
	}
	act := &siAction{kind: siStr(siFind(as, TCA_ACT_KIND))}
	if f := siFind(as, TCA_ACT_FLAGS); f != nil {
		act.flags = f.val
	}
	opts := siFind(as, TCA_ACT_OPTIONS)
	if opts == nil {
		return nil, fmt.Errorf("Must specify action options")
	}
	os, _ := siWalk(opts.val)
	if p := siFind(os, P4TC_ACT_PARMS); p != nil {
		items, _ := siWalk(p.val)
		for _, it := range items {
			pa, _ := siWalk(it.val)
			prm := siParam{name: siStr(siFind(pa, P4TC_ACT_PARAMS_NAME))}
			if id := siFind(pa, P4TC_ACT_PARAMS_ID); id != nil {
				prm.id = ne().Uint32(id.val)
			}
			if ty := siFind(pa, P4TC_ACT_PARAMS_TYPE); ty != nil {
				ts, _ := siWalk(ty.val)
				prm.bitend = ne().Uint16(siFind(ts, P4TC_ACT_PARAMS_TYPE_BITEND).val)
				prm.container = ne().Uint32(siFind(ts, P4TC_ACT_PARAMS_TYPE_CONTAINER_ID).val)
			}
			if v := siFind(pa, P4TC_ACT_PARAMS_VALUE); v != nil {
				vs, _ := siWalk(v.val)
				prm.raw = append([]byte(nil), siFind(vs, P4TC_ACT_PARAMS_VALUE_RAW).val...)
			}
			if prm.container == P4TC_T_MACADDR && len(prm.raw) != 6 {
				return nil, fmt.Errorf("Value length differs from template's")
			}
			act.params = append(act.params, prm)
		}
	}
	return act, nil
}

// fill writes an entry as p4tc_tbl_entry_fill does: P4TC_PATH (two ids),
// then P4TC_PARAMS with prio, key, mask, the action in tcf_action_dump's
// form, permissions, who, tm, dynamic/aging.
func (s *standIn) fill(w *wb, tb *siTable, e *siEntry, whoDeleted uint8) {
	w.attr(P4TC_PATH, append(ne().AppendUint32(nil, tb.id), 0xde, 0xad, 0xbe, 0xef))
	w.nest(P4TC_PARAMS, func(w *wb) {
		w.u32(s.u.PRIO, e.prio)
		w.attr(s.u.KEY_BLOB, e.key).attr(s.u.MASK_BLOB, e.mask)
		if e.act != nil {
			w.nest(s.u.ACT, func(w *wb) {
				w.nestNoFlag(1, func(w *wb) {
					w.str(TCA_ACT_KIND, e.act.kind)
					if e.act.flags != nil {
						w.attr(TCA_ACT_FLAGS, e.act.flags)
					}
					w.u32(10, 0) // TCA_ACT_IN_HW_COUNT
					w.nestNoFlag(TCA_ACT_OPTIONS, func(w *wb) {
						w.attr(P4TC_ACT_OPT, tcActP4Bytes())
						w.str(P4TC_ACT_NAME, e.act.kind)
						w.nest(P4TC_ACT_PARMS, func(w *wb) {
							for i, p := range e.act.params {
								w.nest(uint16(i+1), func(w *wb) {
									w.str(P4TC_ACT_PARAMS_NAME, p.name).u32(P4TC_ACT_PARAMS_ID, p.id)
									raw := p.raw
									if p.container == P4TC_T_MACADDR {
										raw = append(append([]byte(nil), raw...), 0, 0) // a 64-bit container
									}
									w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.attr(P4TC_ACT_PARAMS_VALUE_RAW, raw) })
									w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
										w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, p.bitend).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, p.container)
									})
								})
							}
						})
					})
				})
			})
		}
		w.u16(s.u.PERMISSIONS, e.perms)
		w.u8(s.u.WHO_CREATED, e.createdBy)
		if s.u.WHO_CREATED_PID != 0 && e.creatorPID != 0 {
			w.str(s.u.WHO_CREATED_NAME, "p4tcd.test")
			w.u32(s.u.WHO_CREATED_PID, e.creatorPID)
		}
		if e.updatedBy != 0 {
			w.u8(s.u.WHO_UPDATED, e.updatedBy)
		}
		if whoDeleted != 0 {
			w.u8(s.u.WHO_DELETED, whoDeleted)
		}
		w.attr(s.u.TM, make([]byte, sizeofP4TCTableEntryTM))
		if e.dynamic {
			w.u8(s.u.DYNAMIC, 1)
			if e.aging != 0 {
				w.u64(s.u.AGING, e.aging)
			}
		}
	})
}

// entryMsg is a P4TC message holding entries (a GET reply, an event, a dump
// part): p4tcmsg, P4TC_ROOT_PNAME, P4TC_ROOT{1..n}.
func (s *standIn) entryMsg(typ uint16, seq, pid uint32, pl *siPipeline, es []*siEntry, tb *siTable, flags uint16, whoDeleted uint8) []byte {
	b := nlmsg(typ, flags, seq, 1, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
		w.str(P4TC_ROOT_PNAME, pl.name)
		w.nest(P4TC_ROOT, func(w *wb) {
			for i, e := range es {
				w.nest(uint16(i+1), func(w *wb) { s.fill(w, tb, e, whoDeleted) })
			}
		})
	})
	ne().PutUint32(b[12:], pid)
	return b
}

// dump answers a dump request: up to 16 entries per part, each part
// carrying the request's flags (p4tc_tbl_entry_dumpit), a reserved 32-byte
// P4TC_ROOT_PNAME first and the name again after P4TC_ROOT.
func (s *standIn) dump(h syscall.NlMsghdr, from uint32, pl *siPipeline, as []siAttr) ([]siReply, *kerr) {
	if pl == nil {
		return nil, &kerr{syscall.EINVAL, "Pipeline name not found"}
	}
	pa := siFind(as, P4TC_PARAMS)
	if pa == nil || siFind(as, P4TC_PATH) == nil {
		return nil, &kerr{syscall.EINVAL, "Must specify object path"}
	}
	ps, _ := siWalk(pa.val)
	tb := pl.tables[siStr(siFind(ps, s.u.TBLNAME))]
	if tb == nil {
		return nil, &kerr{syscall.EINVAL, "Table name not found"}
	}
	keys := make([]string, 0, len(tb.entries))
	for k := range tb.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []siReply
	for len(keys) > 0 {
		n := min(len(keys), P4TC_MSGBATCH_SIZE)
		part := keys[:n]
		keys = keys[n:]
		b := nlmsg(RTM_P4TC_GET, h.Flags, h.Seq, 1, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
			name := make([]byte, 32)
			copy(name, pl.name)
			w.attr(P4TC_ROOT_PNAME, name)
			w.nest(P4TC_ROOT, func(w *wb) {
				for i, k := range part {
					w.nest(uint16(i+1), func(w *wb) { s.fill(w, tb, tb.entries[k], 0) })
				}
			})
			w.str(P4TC_ROOT_PNAME, pl.name)
		})
		ne().PutUint32(b[12:], from)
		out = append(out, siReply{b: b})
	}
	return out, nil
}

// event multicasts an entry event when the stand-in publishes events and
// the entry's permissions have ctrl-P.
func (s *standIn) event(cmd uint16, pl *siPipeline, tb *siTable, e *siEntry, whoDeleted uint8) *kerr {
	if s.group == 0 || e.perms&(1<<8) == 0 {
		return nil
	}
	b := s.entryMsg(cmd, 0, 0, pl, []*siEntry{e}, tb, NLM_F_REQUEST, whoDeleted)
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (s.group - 1)}
	// The broadcast reaches the group; sendmsg then also tries port 0,
	// which on NETLINK_USERSOCK refuses.
	if err := unix.Sendto(s.sock.GetFd(), b, 0, to); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ECONNREFUSED) {
		s.t.Logf("stand-in: multicast: %v", err)
	}
	return nil
}

// datapathCreate adds an entry as a BPF program calling
// bpf_p4tc_entry_create_on_miss would: created by the kernel, dynamic, aged
// by profile 0, announced with RTM_P4TC_CREATE.
func (s *standIn) datapathCreate(pipeline, table string, key []byte, act *siAction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.pipelines[pipeline]
	tb := pl.tables[table]
	e := &siEntry{table: table, key: key, mask: bytes.Repeat([]byte{0xff}, len(key)), prio: 64000, act: act,
		perms: tb.perms &^ (1<<13 | 1<<6), createdBy: P4TC_ENTITY_KERNEL, dynamic: true, aging: tb.profiles[0]}
	tb.entries[siID(tb, e)] = e
	s.event(RTM_P4TC_CREATE, pl, tb, e, 0)
}

// age removes an entry as its idle timer would, announced with
// RTM_P4TC_DEL and who_deleted TIMER.
func (s *standIn) age(pipeline, table string, key []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.pipelines[pipeline]
	tb := pl.tables[table]
	for id, e := range tb.entries {
		if bytes.Equal(e.key, key) {
			delete(tb.entries, id)
			delete(tb.prios, e.prio)
			s.event(RTM_P4TC_DEL, pl, tb, e, P4TC_ENTITY_TIMER)
			return true
		}
	}
	return false
}

// entries returns the stand-in's entries of a table.
func (s *standIn) entries(pipeline, table string) []*siEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.pipelines[pipeline]
	if pl == nil || pl.tables[table] == nil {
		return nil
	}
	var out []*siEntry
	for _, e := range pl.tables[table].entries {
		out = append(out, e)
	}
	return out
}

func (s *standIn) set(f func(s *standIn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}
