package tcbackend

import (
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// entrySpec is one table entry as P4TC runtime messages carry it.
type entrySpec struct {
	tp   *tablePlan
	key  []byte // ceil(keysz/8) bytes
	mask []byte // same length; all ones for exact tables, as iproute2 sends
	// prio is the P4TC priority; 0 for exact tables, which must not send
	// one.
	prio uint32
	// action is nil for no action (NoAction or a delete/get).
	action *actionCall
	// permissions, when set, restrict the entry (const entries drop the
	// control-plane update and delete bits).
	permissions    uint16
	hasPermissions bool
	// agingMs > 0 makes the entry dynamic with that idle timeout.
	agingMs uint64
}

// placementFlags returns the TCA_ACT_FLAGS that place an entry: P4TC puts an
// entry in hardware only with skip_sw, in software only with skip_hw, and in
// both without flags (iproute2-p4tc tc/p4tc_table.c parse_table_action).
func placementFlags(a *abiTable, p translator.Placement) uint32 {
	switch p {
	case translator.PlaceSW:
		return a.tcaActFlagSkipHW
	case translator.PlaceHW:
		return a.tcaActFlagSkipSW
	}
	return 0
}

// placementOf reads an entry's placement back from its action's
// TCA_ACT_FLAGS.
func placementOf(a *abiTable, flags uint32) translator.Placement {
	switch {
	case flags&a.tcaActFlagSkipHW != 0:
		return translator.PlaceSW
	case flags&a.tcaActFlagSkipSW != 0:
		return translator.PlaceHW
	}
	return translator.PlaceBoth
}

// portMap maps P4 port numbers to interface indexes and back, for P4TC's
// dev type. nil maps every port to itself.
type portMap struct {
	toIfindex map[uint32]uint32
	toPort    map[uint32]uint32
}

func (m *portMap) ifindex(port uint32) (uint32, error) {
	if m == nil || m.toIfindex == nil {
		return port, nil
	}
	i, ok := m.toIfindex[port]
	if !ok {
		return 0, translator.Errorf(translator.ErrInvalid, "port %d is not mapped to an interface (--port)", port)
	}
	return i, nil
}

func (m *portMap) port(ifindex uint32) (uint32, error) {
	if m == nil || m.toPort == nil {
		return ifindex, nil
	}
	p, ok := m.toPort[ifindex]
	if !ok {
		return 0, fmt.Errorf("ifindex %d is not a mapped port", ifindex)
	}
	return p, nil
}

// keyBlobs returns the P4TC key and mask of an entry: the first
// ceil(keysz/8) bytes of the translator's blobs (checkKeyLayout proved the
// rest is padding), with P4 ports replaced by ifindexes in dev fields.
func (tp *tablePlan) keyBlobs(e *translator.Entry, ports *portMap) (key, mask []byte, err error) {
	l := tp.t.Layout
	full := append([]byte(nil), e.Key...)
	for i, fl := range l.Fields {
		if !fl.Port || !e.Match[i].Set {
			continue
		}
		v := fl.Get(full)
		idx, err := ports.ifindex(uint32(beUint(v)))
		if err != nil {
			return nil, nil, err
		}
		fl.Put(full, trimLeadingZeros(beBytes(uint64(idx))))
	}
	key = full[:tp.keyBytes]
	if tp.exact() || e.Mask == nil {
		mask = make([]byte, tp.keyBytes)
		for i := range mask {
			mask[i] = 0xff
		}
	} else {
		mask = append([]byte(nil), e.Mask[:tp.keyBytes]...)
	}
	return key, mask, nil
}

// actionCall translates an entry's action, nil for NoAction.
func (tp *tablePlan) actionCall(ac *translator.ActionCall, ports *portMap, flags uint32) (*actionCall, error) {
	if ac == nil {
		return nil, nil
	}
	ap := tp.actions[ac.Action.ID]
	if ap == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "table %s: action %s is not one of its P4TC actions", tp.describe(), ac.Action.Name)
	}
	if ap.noAction {
		if flags != 0 {
			return nil, translator.Errorf(translator.ErrUnsupported, "table %s: P4TC places an entry through its action's flags; NoAction entries cannot be placed sw or hw only", tp.describe())
		}
		return nil, nil
	}
	call := &actionCall{kind: ap.kind, flags: flags}
	for i, p := range ap.params {
		v := ac.Params[i]
		if p.typ.dev {
			idx, err := ports.ifindex(uint32(beUint(v)))
			if err != nil {
				return nil, err
			}
			v = trimLeadingZeros(beBytes(uint64(idx)))
		}
		raw, err := p.typ.encode(v)
		if err != nil {
			return nil, translator.Errorf(translator.ErrOutOfRange, "table %s: action %s: param %s: %v", tp.describe(), ac.Action.Name, p.name, err)
		}
		call.params = append(call.params, paramValue{name: p.name, id: p.id, typ: p.typ, value: raw})
	}
	return call, nil
}

// agingMs converts a P4Runtime idle timeout to P4TC's aging in
// milliseconds, rounding up.
func agingMs(a *abiTable, ns int64) (uint64, error) {
	if ns <= 0 {
		return 0, nil
	}
	ms := (uint64(ns) + 999_999) / 1_000_000
	if ms > a.maxAgingMs {
		return 0, translator.Errorf(translator.ErrOutOfRange, "idle timeout %dns exceeds P4TC's %dms", ns, a.maxAgingMs)
	}
	return ms, nil
}

// entryVerb is the runtime command an entry nest belongs to.
type entryVerb uint8

const (
	verbCreate entryVerb = iota // tc p4ctrl create
	verbUpdate                  // tc p4ctrl update
	verbDelete                  // tc p4ctrl delete
	verbGet                     // tc p4ctrl get
)

// entryNest is one element of a runtime batch: index i of P4TC_ROOT, holding
// P4TC_PARAMS with the entry and P4TC_PATH with the table id. The attribute
// order is iproute2-p4tc's for the command line
// `tc p4ctrl <verb> <p>/table/<cb>/<t> tblid <id> <key fields> prio <n>
// permissions <hex> dynamic aging <ms> action <a> param ... [skip_sw|skip_hw]`:
// options as they come, WHODUNNIT, the table name, then key and mask
// (tc/p4tc_table.c parse_table_entry_data).
func (e *encoder) entryNest(i int, verb entryVerb, s *entrySpec) *nl.RtAttr {
	var ps []*nl.RtAttr
	if s.prio != 0 {
		ps = append(ps, attrU32(e.a.entryPrio, s.prio))
	}
	if verb == verbCreate || verb == verbUpdate {
		if s.hasPermissions {
			ps = append(ps, attrU16(e.a.entryPermissions, s.permissions))
		}
		if s.agingMs != 0 {
			ps = append(ps, attrU8(e.a.entryDynamic, 1), attrU64(e.a.entryAging, s.agingMs))
		}
		if s.action != nil {
			ps = append(ps, nest(e.a.entryAct, e.actionListItem(s.action, false)))
		}
	}
	if verb != verbGet {
		ps = append(ps, attrU8(e.a.entryWhodunnit, e.a.entityTC))
	}
	ps = append(ps,
		attrString(e.a.entryTblName, s.tp.tt.name),
		attrBytes(e.a.entryKeyBlob, s.key),
		attrBytes(e.a.entryMaskBlob, s.mask))
	return nest(uint16(i), nest(e.a.params, ps...), attrU32(e.a.path, s.tp.tt.id))
}

// runtimeMsg wraps batch elements: p4tcmsg{0, RUNTIME_TABLE},
// P4TC_ROOT_PNAME, P4TC_ROOT.
func (e *encoder) runtimeMsg(typ, flags uint16, pname string, inRoot ...*nl.RtAttr) *message {
	return &message{
		typ: typ, flags: flags, obj: e.a.objRuntimeTable,
		attrs: []*nl.RtAttr{attrString(e.a.rootPName, pname), nest(e.a.root, inRoot...)},
	}
}

// entriesMsg is a batch of entries for one verb: `tc p4ctrl create|update|
// delete|get <p>/table/... entry ... entry ...`.
func (e *encoder) entriesMsg(verb entryVerb, pname string, specs []*entrySpec) *message {
	typ, flags := e.a.msgCreate, uint16(unix.NLM_F_EXCL|unix.NLM_F_CREATE)
	switch verb {
	case verbUpdate:
		typ, flags = e.a.msgUpdate, 0
	case verbDelete:
		typ, flags = e.a.msgDel, 0
	case verbGet:
		typ, flags = e.a.msgGet, 0
	}
	nests := make([]*nl.RtAttr, len(specs))
	for i, s := range specs {
		nests[i] = e.entryNest(i+1, verb, s)
	}
	return e.runtimeMsg(typ, flags, pname, nests...)
}

// tableAttrsMsg is `tc p4ctrl update <p>/table/<cb>/<t> tblid <id> tbl_attrs
// ...`: a runtime change to the table itself (default actions, timer
// profiles) rather than to an entry.
func (e *encoder) tableAttrsMsg(pname string, tp *tablePlan, tblAttrs ...*nl.RtAttr) *message {
	n := nest(1,
		nest(e.a.params,
			nest(e.a.entryTblAttrs, tblAttrs...),
			attrU8(e.a.entryWhodunnit, e.a.entityTC),
			attrString(e.a.entryTblName, tp.tt.name)),
		attrU32(e.a.path, tp.tt.id))
	return e.runtimeMsg(e.a.msgUpdate, 0, pname, n)
}

// defaultMissMsg sets a table's default miss action at runtime
// (`tbl_attrs default_miss_action action <a> param ...`); nil is NoAction.
func (e *encoder) defaultMissMsg(pname string, tp *tablePlan, call *actionCall) *message {
	d := &defaultAction{noAction: call == nil, call: call}
	return e.tableAttrsMsg(pname, tp, nest(e.a.tblAttrsDefaultMiss, e.defaultActionAttrs(d)...))
}

// timerProfileMsg sets one timer profile (`tbl_attrs timer_profile id <id>
// aging <ms>`).
func (e *encoder) timerProfileMsg(pname string, tp *tablePlan, id uint32, ms uint64) *message {
	return e.tableAttrsMsg(pname, tp, nest(e.a.tblAttrsTimerProfile,
		attrU32(e.a.timerProfileID, id), attrU64(e.a.timerProfileAging, ms)))
}

// tableRootMsg is the body of a flush or dump: `tc p4ctrl delete|get
// <p>/table/<cb>/<t> tblid <id>` without entries. A flush wraps it in batch
// index 1 and sets NLM_F_ROOT; a dump sends it bare with NLM_F_DUMP
// (tc/p4tc_table.c build_table_entry_root).
func (e *encoder) flushMsg(pname string, tp *tablePlan) *message {
	return e.runtimeMsg(e.a.msgDel, unix.NLM_F_ROOT, pname, nest(1, e.tableRootAttrs(tp)...))
}

func (e *encoder) dumpMsg(pname string, tp *tablePlan) *message {
	return e.runtimeMsg(e.a.msgGet, unix.NLM_F_DUMP, pname, e.tableRootAttrs(tp)...)
}

func (e *encoder) tableRootAttrs(tp *tablePlan) []*nl.RtAttr {
	return []*nl.RtAttr{
		nest(e.a.params, attrU8(e.a.entryWhodunnit, e.a.entityTC), attrString(e.a.entryTblName, tp.tt.name)),
		attrU32(e.a.path, tp.tt.id),
	}
}

func beUint(v []byte) uint64 {
	var x uint64
	for _, b := range v {
		x = x<<8 | uint64(b)
	}
	return x
}

func beBytes(x uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(x)
		x >>= 8
	}
	return b
}
