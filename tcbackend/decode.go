package tcbackend

import (
	"bytes"
	"fmt"

	"github.com/p4tcd/p4tcd/translator"
)

// Entity says who changed a table entry (P4TC_ENTITY_*).
type Entity uint8

const (
	// EntityUnspec: the kernel did not say.
	EntityUnspec Entity = iota
	// EntityKernel: the datapath (a BPF program calling
	// bpf_p4tc_entry_create_on_miss and friends).
	EntityKernel
	// EntityTC: a control plane (tc p4ctrl, p4tcd).
	EntityTC
	// EntityTimer: the entry's idle timer (aging).
	EntityTimer
)

// String returns the entity as iproute2 names it.
func (e Entity) String() string {
	switch e {
	case EntityUnspec:
		return "unspec"
	case EntityKernel:
		return "kernel"
	case EntityTC:
		return "tc"
	case EntityTimer:
		return "timer"
	}
	return fmt.Sprintf("Entity(%d)", uint8(e))
}

// Entry is a table entry as a P4TC kernel reports it in a GET reply, a dump
// or an event (`tc p4ctrl get`).
type Entry struct {
	// Pipeline is the pipeline name; Table the P4TC table name
	// ("<cb>/<table>") and TableID its P4TC id.
	Pipeline string
	Table    string
	TableID  uint32
	// Key and Mask are the blobs, ceil(keysz/8) bytes each.
	Key, Mask []byte
	// Prio is the P4TC priority (P4TC_TABLE_EXACT_PRIO for exact tables).
	Prio uint32
	// Action is the entry's action; nil when it has none.
	Action *Action
	// Permissions are the entry's CRUDXPS bits.
	Permissions uint16
	// CreatedBy, UpdatedBy, DeletedBy name who changed the entry
	// (EntityUnspec when not reported).
	CreatedBy, UpdatedBy, DeletedBy Entity
	// CreatorProcess and CreatorPID name the process that created the
	// entry (LK13 and later ABIs; empty and 0 otherwise or for the
	// datapath).
	CreatorProcess string
	CreatorPID     uint32
	// Dynamic entries age out after AgingMs without hits.
	Dynamic bool
	AgingMs uint64
	// TmplCreated: the entry came with the template (a const entry).
	TmplCreated bool
}

// Action is a P4 action instance of an entry.
type Action struct {
	// Kind is "<pipeline>/<cb>/<action>".
	Kind string
	// Params in the order the kernel listed them.
	Params []Param
	// Flags are TCA_ACT_FLAGS (skip_sw, skip_hw).
	Flags uint32
}

// Param is one argument as the kernel dumps it.
type Param struct {
	Name string
	ID   uint32
	// Container is the P4TC type id and Bits its declared width; 0 when
	// not reported.
	Container uint32
	Bits      int
	// Raw is P4TC_ACT_PARAMS_VALUE_RAW: the whole container.
	Raw []byte
}

// decodeEntries reads the entries of a GET reply, a dump part or an event:
// P4TC_ROOT holds batch indices, each with P4TC_PATH and P4TC_PARAMS
// (p4tc_tbl_entry_fill). Dump parts carry P4TC_ROOT_PNAME twice (a reserved
// 32-byte one first); the first is used.
func decodeEntries(a *abiTable, r *p4tcReply) ([]Entry, error) {
	if r.obj != a.objRuntimeTable {
		return nil, fmt.Errorf("decode entries: %w: object type %d is not a runtime table", ErrProtocol, r.obj)
	}
	pname, _ := r.attrs.str(a.rootPName)
	root, ok, err := r.attrs.nested(a.root)
	if err != nil {
		return nil, fmt.Errorf("decode entries: %w", err)
	}
	if !ok {
		return nil, nil
	}
	var out []Entry
	for _, item := range root {
		elem, err := parseAttrs(item.val)
		if err != nil {
			return out, fmt.Errorf("decode entry %d: %w", item.typ, err)
		}
		e, err := decodeEntry(a, elem)
		if err != nil {
			return out, fmt.Errorf("decode entry %d: %w", item.typ, err)
		}
		e.Pipeline = pname
		out = append(out, e)
	}
	return out, nil
}

func decodeEntry(a *abiTable, elem attrs) (Entry, error) {
	var e Entry
	if path, ok := elem.get(a.path); ok && len(path) >= 4 {
		e.TableID = native.Uint32(path[0:4])
	}
	ps, ok, err := elem.nested(a.params)
	if err != nil {
		return e, err
	}
	if !ok {
		return e, fmt.Errorf("%w: no P4TC_PARAMS", ErrProtocol)
	}
	e.Table, _ = ps.str(a.entryTblName)
	e.Key, _ = ps.get(a.entryKeyBlob)
	e.Mask, _ = ps.get(a.entryMaskBlob)
	if e.Prio, _, err = ps.u32(a.entryPrio); err != nil {
		return e, err
	}
	if e.Permissions, _, err = ps.u16(a.entryPermissions); err != nil {
		return e, err
	}
	for _, w := range []struct {
		typ uint16
		dst *Entity
	}{{a.entryWhoCreated, &e.CreatedBy}, {a.entryWhoUpdated, &e.UpdatedBy}, {a.entryWhoDeleted, &e.DeletedBy}} {
		v, _, err := ps.u8(w.typ)
		if err != nil {
			return e, err
		}
		*w.dst = Entity(v)
	}
	if a.entryWhoCreatedName != 0 {
		e.CreatorProcess, _ = ps.str(a.entryWhoCreatedName)
		if e.CreatorPID, _, err = ps.u32(a.entryWhoCreatedPID); err != nil {
			return e, err
		}
	}
	dyn, _, err := ps.u8(a.entryDynamic)
	if err != nil {
		return e, err
	}
	e.Dynamic = dyn != 0
	if e.AgingMs, _, err = ps.u64(a.entryAging); err != nil {
		return e, err
	}
	tc, _, err := ps.u8(a.entryTmplCreated)
	if err != nil {
		return e, err
	}
	e.TmplCreated = tc != 0
	acts, ok, err := ps.nested(a.entryAct)
	if err != nil {
		return e, err
	}
	if ok && len(acts) > 0 {
		act, err := decodeAction(a, acts[0].val)
		if err != nil {
			return e, fmt.Errorf("action: %w", err)
		}
		e.Action = act
	}
	return e, nil
}

// decodeAction reads one element of a tc action list as tcf_action_dump
// writes it: TCA_ACT_KIND, TCA_ACT_FLAGS, TCA_ACT_OPTIONS with the P4
// action's P4TC_ACT_PARMS (p4a_runt_dump).
func decodeAction(a *abiTable, b []byte) (*Action, error) {
	as, err := parseAttrs(b)
	if err != nil {
		return nil, err
	}
	act := &Action{}
	act.Kind, _ = as.str(a.tcaActKind)
	if act.Kind == "" {
		return nil, fmt.Errorf("%w: no TCA_ACT_KIND", ErrProtocol)
	}
	if v, ok := as.get(a.tcaActFlags); ok && len(v) >= 4 {
		act.Flags = native.Uint32(v[0:4])
	}
	opts, ok, err := as.nested(a.tcaActOptions)
	if err != nil || !ok {
		return act, err
	}
	parms, ok, err := opts.nested(a.actParms)
	if err != nil || !ok {
		return act, err
	}
	for _, item := range parms {
		pa, err := parseAttrs(item.val)
		if err != nil {
			return nil, err
		}
		var p Param
		p.Name, _ = pa.str(a.paramName)
		if p.ID, _, err = pa.u32(a.paramID); err != nil {
			return nil, err
		}
		if ty, ok, err := pa.nested(a.paramType); err != nil {
			return nil, err
		} else if ok {
			be, _, err := ty.u16(a.paramTypeBitend)
			if err != nil {
				return nil, err
			}
			if p.Container, _, err = ty.u32(a.paramTypeContainer); err != nil {
				return nil, err
			}
			p.Bits = int(be) + 1
		}
		val, ok, err := pa.nested(a.paramValue)
		if err != nil {
			return nil, err
		}
		if ok {
			p.Raw, _ = val.get(a.paramValueRaw)
		}
		act.Params = append(act.Params, p)
	}
	return act, nil
}

// saved translates an entry the kernel reported into P4Runtime terms, under
// the plan it was written with, and returns the table's plan.
func (p *plan) saved(e *Entry, ports *portMap) (*translator.SavedEntry, *tablePlan, error) {
	tp := p.byName[e.Table]
	if tp == nil {
		for _, c := range p.tables {
			if c.tt.id == e.TableID {
				tp = c
			}
		}
	}
	if tp == nil {
		return nil, nil, fmt.Errorf("translate entry: table %q (id %d) is not in pipeline %s", e.Table, e.TableID, p.pname)
	}
	t := tp.t
	if len(e.Key) != tp.keyBytes || (!tp.exact() && len(e.Mask) != tp.keyBytes) {
		return nil, tp, fmt.Errorf("translate entry of table %s: %w: key of %d bytes, want %d", tp.describe(), ErrProtocol, len(e.Key), tp.keyBytes)
	}
	l := t.Layout
	key := make([]byte, l.Size)
	mask := make([]byte, l.Size)
	copy(key, e.Key)
	copy(mask, e.Mask)
	se := &translator.SavedEntry{TableID: t.ID, Match: make([]translator.FieldMatch, len(t.Fields))}
	for i, f := range t.Fields {
		fl := &l.Fields[i]
		v := fl.Get(key)
		if fl.Port {
			port, err := ports.port(uint32(beUint(v)))
			if err != nil {
				return nil, tp, fmt.Errorf("translate entry of table %s: field %s: %w", tp.describe(), f.Name, err)
			}
			v = trimLeadingZeros(beBytes(uint64(port)))
		}
		fm := &se.Match[i]
		if tp.exact() {
			fm.Value, fm.Set = v, true
			continue
		}
		m := fl.Get(mask)
		zero := bitLen(m) == 0
		switch f.Kind {
		case translator.MatchExact:
			fm.Value, fm.Set = v, true
		case translator.MatchLPM:
			if !zero {
				fm.Value, fm.PrefixLen, fm.Set = v, prefixLen(m, fl.Bits), true
			}
		case translator.MatchTernary:
			if !zero {
				fm.Value, fm.Mask, fm.Set = v, m, true
			}
		case translator.MatchOptional:
			if !zero {
				fm.Value, fm.Set = v, true
			}
		}
	}
	if t.NeedsPriority() {
		se.Priority = p4rtPrio(e.Prio)
	}
	if e.Action != nil {
		se.Placement = placementOf(p.a, e.Action.Flags)
		ap := tp.byKind[e.Action.Kind]
		if ap == nil {
			return nil, tp, fmt.Errorf("translate entry of table %s: action %s is not one of its actions", tp.describe(), e.Action.Kind)
		}
		se.ActionID = ap.act.ID
		se.Params = make([][]byte, len(ap.params))
		for i, want := range ap.params {
			var raw []byte
			for _, got := range e.Action.Params {
				if (got.ID != 0 && got.ID == want.id) || (got.ID == 0 && got.Name == want.name) {
					raw = got.Raw
				}
			}
			if raw == nil {
				return nil, tp, fmt.Errorf("translate entry of table %s: action %s: no value for param %s", tp.describe(), e.Action.Kind, want.name)
			}
			v, err := want.typ.decode(raw)
			if err != nil {
				return nil, tp, fmt.Errorf("translate entry of table %s: action %s: param %s: %w", tp.describe(), e.Action.Kind, want.name, err)
			}
			if want.typ.dev {
				port, err := ports.port(uint32(beUint(v)))
				if err != nil {
					return nil, tp, err
				}
				v = trimLeadingZeros(beBytes(uint64(port)))
			}
			se.Params[i] = v
		}
	} else {
		for _, ap := range tp.actions {
			if ap.noAction {
				se.ActionID = ap.act.ID
			}
		}
	}
	if e.Dynamic && e.AgingMs > 0 {
		se.IdleTimeoutNs = int64(e.AgingMs) * 1_000_000
	}
	if e.CreatedBy == EntityKernel {
		se.Origin = translator.OriginDatapath
	}
	se.Const = e.TmplCreated
	return se, tp, nil
}

// prefixLen counts the leading ones of a canonical mask of a bits-wide
// field.
func prefixLen(m []byte, bits int) int {
	full := make([]byte, (bits+7)/8)
	if len(m) > len(full) {
		m = m[len(m)-len(full):]
	}
	copy(full[len(full)-len(m):], m)
	n := 0
	lead := len(full)*8 - bits
	for i := lead; i < len(full)*8; i++ {
		if full[i/8]&(0x80>>(i%8)) == 0 {
			break
		}
		n++
	}
	return n
}

// sameCall reports whether a reported action is the one a spec sends.
func sameCall(got *Action, want *actionCall) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	if got.Kind != want.kind {
		return false
	}
	for _, w := range want.params {
		found := false
		for _, g := range got.Params {
			if g.ID == w.id && len(g.Raw) >= len(w.value) && bytes.Equal(g.Raw[:len(w.value)], w.value) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
