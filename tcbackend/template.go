package tcbackend

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// A pipeline template is what a P4TC kernel must hold before entries can be
// written: the pipeline, its action kinds and its tables. The p4c `tc`
// backend writes it as a shell script of `tc p4template` commands next to
// the introspection JSON; tcbackend derives the same objects from the JSON
// and sends them as netlink messages.

// pipelineTemplate is a whole template.
type pipelineTemplate struct {
	name    string
	actions []*actionTemplate
	tables  []*tableTemplate
}

// actionTemplate is one P4 action kind.
type actionTemplate struct {
	name   string // "<control block>/<action>"
	id     uint32
	params []paramTemplate
}

// paramTemplate is one action parameter; id 0 lets the kernel number it.
type paramTemplate struct {
	name string
	id   uint32
	typ  p4tcType
}

// tableTemplate is one table.
type tableTemplate struct {
	name        string // "<control block>/<table>"
	id          uint32
	typ         uint8 // P4TC_TABLE_TYPE_*
	keySz       uint32
	maxEntries  uint32 // 0: kernel default
	maxMasks    uint32 // 0: kernel default
	permissions uint16
	// hasPermissions: send permissions (else the kernel default).
	hasPermissions bool
	// timerProfiles is the number of timer profiles; 0: kernel default.
	timerProfiles uint32
	acts          []tableAct
	defaultHit    *defaultAction
	defaultMiss   *defaultAction
}

// tableAct is one entry of a table's action list.
type tableAct struct {
	name  string // "<pipeline>/<control block>/<action>", or "NoAction"
	flags uint8  // bits P4TC_TABLE_ACTS_DEFAULT_ONLY, _TABLE_ONLY; 0: not sent
}

// defaultAction is a table's default hit or miss action.
type defaultAction struct {
	permissions    uint16
	hasPermissions bool
	noAction       bool
	call           *actionCall
}

// actionCall is a P4 action instance: a kind with argument values.
type actionCall struct {
	kind   string // "<pipeline>/<control block>/<action>"
	params []paramValue
	// flags are TCA_ACT_FLAGS (skip_sw, skip_hw); 0: not sent.
	flags uint32
}

// paramValue is one argument in wire form.
type paramValue struct {
	name  string
	id    uint32
	typ   p4tcType
	value []byte
}

// Permission bits (include/uapi/linux/p4tc.h P4TC_CTRL_PERM_* and
// P4TC_DATA_PERM_*); they are the same in every ABI.
const (
	permCtrlCreate uint16 = 1 << 13
	permCtrlRead   uint16 = 1 << 12
	permCtrlUpdate uint16 = 1 << 11
	permCtrlDelete uint16 = 1 << 10
	permCtrlPub    uint16 = 1 << 8
	permDataCreate uint16 = 1 << 6
	permDataRead   uint16 = 1 << 5
	permDataExec   uint16 = 1 << 2

	// permDefaultConst is a default action the control plane may read but
	// not change (p4c writes it for tables: ctrl R, data R X).
	permDefaultConst = permCtrlRead | permDataRead | permDataExec
	// permDefault is a default action the control plane may also update.
	permDefault = permDefaultConst | permCtrlUpdate
)

// templateExtras is what the template needs beyond the introspection JSON,
// from P4Info: the arguments of default actions and which defaults are
// const, and which tables age entries. Keys are P4TC table names.
type templateExtras struct {
	defaults      map[string]*translator.ActionCall
	constDefault  map[string]bool
	timerProfiles map[string]uint32
}

// buildTemplate derives a pipeline template from an introspection JSON the
// way the p4c `tc` backend's template script does: every action kind once
// (first appearance, with the JSON's ids and P4TC types), then every table
// with its action list and default actions.
func buildTemplate(a *abiTable, in *translator.Introspection, x templateExtras) (*pipelineTemplate, error) {
	if err := checkName(a, "pipeline", in.PipelineName); err != nil {
		return nil, err
	}
	t := &pipelineTemplate{name: in.PipelineName}
	if len(in.Tables) > 32 {
		return nil, fmt.Errorf("build template: %d tables, P4TC allows 32 (P4TC_MAXTABLES_COUNT)", len(in.Tables))
	}
	seen := map[string]*actionTemplate{}
	for ti := range in.Tables {
		it := &in.Tables[ti]
		tt, err := buildTable(a, in.PipelineName, it, x)
		if err != nil {
			return nil, err
		}
		t.tables = append(t.tables, tt)
		for ai := range it.Actions {
			ia := &it.Actions[ai]
			if isNoAction(ia.Name) {
				continue
			}
			at, err := buildAction(a, ia)
			if err != nil {
				return nil, fmt.Errorf("build template: table %s: %w", it.Name, err)
			}
			if prev := seen[at.name]; prev != nil {
				if !sameAction(prev, at) {
					return nil, fmt.Errorf("build template: action %s is described twice, differently (tables disagree on id or params)", at.name)
				}
				continue
			}
			seen[at.name] = at
			t.actions = append(t.actions, at)
		}
	}
	return t, nil
}

func isNoAction(name string) bool { return name == "NoAction" || strings.HasSuffix(name, "/NoAction") }

func checkName(a *abiTable, what, name string) error {
	if name == "" {
		return fmt.Errorf("build template: empty %s name", what)
	}
	if len(name) >= a.nameSize {
		return fmt.Errorf("build template: %s name %q is %d bytes; P4TC names hold %d", what, name, len(name), a.nameSize-1)
	}
	return nil
}

func buildAction(a *abiTable, ia *translator.IntrospectAction) (*actionTemplate, error) {
	if err := checkName(a, "action", ia.Name); err != nil {
		return nil, err
	}
	if !strings.Contains(ia.Name, "/") {
		return nil, fmt.Errorf("action %q: want <control block>/<action>", ia.Name)
	}
	if ia.ID == 0 {
		return nil, fmt.Errorf("action %s: id 0 is NoAction's", ia.Name)
	}
	if len(ia.Params) > a.maxParams {
		return nil, fmt.Errorf("action %s: %d params; P4TC allows %d", ia.Name, len(ia.Params), a.maxParams)
	}
	at := &actionTemplate{name: ia.Name, id: ia.ID}
	for _, p := range ia.Params {
		if err := checkName(a, "parameter", p.Name); err != nil {
			return nil, fmt.Errorf("action %s: %w", ia.Name, err)
		}
		typ, err := paramType(a, p)
		if err != nil {
			return nil, fmt.Errorf("action %s: param %s: %w", ia.Name, p.Name, err)
		}
		at.params = append(at.params, paramTemplate{name: p.Name, id: p.ID, typ: typ})
	}
	return at, nil
}

// paramType resolves a JSON parameter's P4TC type: its "type" when that is
// a P4TC type name, else bit<bitwidth>.
func paramType(a *abiTable, p translator.IntrospectField) (p4tcType, error) {
	name := p.Type
	if name == "" || (!strings.HasPrefix(name, "bit") && !strings.HasPrefix(name, "int") && !knownNamedType(name)) {
		name = "bit" + strconv.Itoa(p.Bitwidth)
	}
	typ, err := parseType(a, name)
	if err != nil {
		return typ, err
	}
	if p.Bitwidth != 0 && p.Bitwidth != typ.bits {
		return typ, fmt.Errorf("type %s is %d bits, the JSON says %d", name, typ.bits, p.Bitwidth)
	}
	return typ, nil
}

func knownNamedType(n string) bool {
	switch n {
	case "macaddr", "ipv4", "ipv6", "be16", "be32", "be64", "dev", "bool":
		return true
	}
	return false
}

func sameAction(x, y *actionTemplate) bool {
	if x.id != y.id || len(x.params) != len(y.params) {
		return false
	}
	for i := range x.params {
		if x.params[i] != y.params[i] {
			return false
		}
	}
	return true
}

func buildTable(a *abiTable, pname string, it *translator.IntrospectTable, x templateExtras) (*tableTemplate, error) {
	if err := checkName(a, "table", it.Name); err != nil {
		return nil, err
	}
	if !strings.Contains(it.Name, "/") {
		return nil, fmt.Errorf("build template: table %q: want <control block>/<table>", it.Name)
	}
	tt := &tableTemplate{
		name: it.Name, id: it.ID, keySz: it.KeySize,
		maxEntries: it.TEntries, maxMasks: it.NumMask,
		timerProfiles: x.timerProfiles[it.Name],
	}
	sum := 0
	kind := a.tableTypeExact
	for _, kf := range it.KeyFields {
		sum += kf.Bitwidth
		switch kf.MatchType {
		case "exact":
		case "lpm":
			if kind == a.tableTypeExact {
				kind = a.tableTypeLPM
			}
		case "ternary", "optional":
			kind = a.tableTypeTernary
		default:
			return nil, fmt.Errorf("build template: table %s: key field %s: match type %q has no P4TC table type", it.Name, kf.Name, kf.MatchType)
		}
	}
	tt.typ = kind
	if len(it.KeyFields) > 0 && uint32(sum) != it.KeySize {
		return nil, fmt.Errorf("build template: table %s: keysize %d, but its key fields add up to %d bits", it.Name, it.KeySize, sum)
	}
	if it.KeySize == 0 || int(it.KeySize) > a.maxKeySz {
		return nil, fmt.Errorf("build template: table %s: keysize %d not in 1..%d (P4TC_MAX_KEYSZ)", it.Name, it.KeySize, a.maxKeySz)
	}
	if it.Permissions != "" {
		p, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(it.Permissions), "0x"), 16, 16)
		if err != nil || p >= 1<<14 {
			return nil, fmt.Errorf("build template: table %s: permissions %q: want a 14-bit hex number", it.Name, it.Permissions)
		}
		tt.permissions, tt.hasPermissions = uint16(p), true
	}
	for ai := range it.Actions {
		ia := &it.Actions[ai]
		ta := tableAct{name: pname + "/" + ia.Name}
		if isNoAction(ia.Name) {
			ta.name = "NoAction"
		}
		switch ia.Scope {
		case "TableOnly":
			ta.flags = 1 << a.tableActTableOnly
		case "DefaultOnly":
			ta.flags = 1 << a.tableActDefaultOnlyBit
		case "", "TableAndDefault":
		default:
			return nil, fmt.Errorf("build template: table %s: action %s: unknown action_scope %q", it.Name, ia.Name, ia.Scope)
		}
		tt.acts = append(tt.acts, ta)
		if ia.DefaultMissAction || ia.DefaultHitAction {
			d, err := buildDefault(a, pname, it.Name, ia, x)
			if err != nil {
				return nil, err
			}
			if ia.DefaultMissAction {
				tt.defaultMiss = d
			}
			if ia.DefaultHitAction {
				tt.defaultHit = d
			}
		}
	}
	return tt, nil
}

// buildDefault makes the default action of a table: its arguments come from
// P4Info (the JSON has none); const defaults get read-only permissions.
func buildDefault(a *abiTable, pname, table string, ia *translator.IntrospectAction, x templateExtras) (*defaultAction, error) {
	d := &defaultAction{permissions: permDefault, hasPermissions: true}
	if x.constDefault[table] {
		d.permissions = permDefaultConst
	}
	if isNoAction(ia.Name) {
		d.noAction = true
		return d, nil
	}
	at, err := buildAction(a, ia)
	if err != nil {
		return nil, fmt.Errorf("build template: table %s: %w", table, err)
	}
	call := &actionCall{kind: pname + "/" + ia.Name}
	ac := x.defaults[table]
	if len(at.params) > 0 && (ac == nil || len(ac.Params) != len(at.params)) {
		return nil, fmt.Errorf("build template: table %s: default action %s takes %d arguments; their values come from P4Info", table, ia.Name, len(at.params))
	}
	for i, p := range at.params {
		v, err := p.typ.encode(ac.Params[i])
		if err != nil {
			return nil, fmt.Errorf("build template: table %s: default action %s: param %s: %w", table, ia.Name, p.name, err)
		}
		call.params = append(call.params, paramValue{name: p.name, id: p.id, typ: p.typ, value: v})
	}
	d.call = call
	return d, nil
}

// The template script: each function below is one `tc p4template` command
// as iproute2-p4tc (tc/p4tc_template.c) encodes it, attribute for
// attribute and in its order.

// templateScript is the sequence of messages that realises t, in the order
// of a p4c template script.
func (e *encoder) templateScript(t *pipelineTemplate) []*message {
	msgs := []*message{e.pipelineCreate(t.name, uint16(len(t.tables)))}
	for _, at := range t.actions {
		msgs = append(msgs, e.actionCreate(t.name, at), e.actionActivate(t.name, at.name))
	}
	for _, tt := range t.tables {
		msgs = append(msgs, e.tableCreate(t.name, tt))
		if tt.defaultMiss != nil {
			msgs = append(msgs, e.tableDefault(t.name, tt.name, false, tt.defaultMiss))
		}
		if tt.defaultHit != nil {
			msgs = append(msgs, e.tableDefault(t.name, tt.name, true, tt.defaultHit))
		}
	}
	return append(msgs, e.pipelineReady(t.name))
}

// encoder builds P4TC messages for one ABI.
type encoder struct{ a *abiTable }

// templateMsg starts a template message: p4tcmsg{pipeid 0, obj},
// P4TC_ROOT_PNAME, then P4TC_ROOT around the object's attributes.
func (e *encoder) templateMsg(typ, flags uint16, obj uint32, pname string, inRoot ...*nl.RtAttr) *message {
	return &message{
		typ: typ, flags: flags, obj: obj,
		attrs: []*nl.RtAttr{attrString(e.a.rootPName, pname), nest(e.a.root, inRoot...)},
	}
}

// pipelineCreate is `tc p4template create pipeline/<p> numtables <n>`.
func (e *encoder) pipelineCreate(pname string, numTables uint16) *message {
	return e.templateMsg(e.a.msgCreateTemplate, unix.NLM_F_EXCL|unix.NLM_F_CREATE, e.a.objPipeline, pname,
		nest(e.a.params, attrU16(e.a.pipelineNumTables, numTables)))
}

// pipelineReady is `tc p4template update pipeline/<p> state ready`: it seals
// the pipeline, after which templates are frozen and entries may be written.
// The kernel acts on the attribute's presence; tcbackend sends
// P4TC_STATE_READY where iproute2 sends 0.
func (e *encoder) pipelineReady(pname string) *message {
	return e.templateMsg(e.a.msgUpdateTemplate, 0, e.a.objPipeline, pname,
		nest(e.a.params, attrU8(e.a.pipelineState, e.a.stateReady)))
}

// pipelineDelete is `tc p4template del pipeline/<p>`: it removes the
// pipeline with its actions, tables and entries.
func (e *encoder) pipelineDelete(pname string) *message {
	return e.templateMsg(e.a.msgDelTemplate, 0, e.a.objPipeline, pname)
}

// pipelineGet is `tc p4template get pipeline/<p>`.
func (e *encoder) pipelineGet(pname string) *message {
	return e.templateMsg(e.a.msgGetTemplate, 0, e.a.objPipeline, pname)
}

// actionCreate is `tc p4template create action/<p>/<cb>/<act> actid <id>
// param <name> type <type> [id <id>] ...`.
func (e *encoder) actionCreate(pname string, at *actionTemplate) *message {
	ps := []*nl.RtAttr{}
	if len(at.params) > 0 {
		parms := nest(e.a.actParms)
		for i, p := range at.params {
			parms.AddChild(nest(uint16(i+1), e.paramTemplateAttrs(p)...))
		}
		ps = append(ps, parms)
	}
	ps = append(ps, attrString(e.a.actName, at.name))
	root := []*nl.RtAttr{nest(e.a.params, ps...)}
	if at.id != 0 {
		root = append(root, attrU32(e.a.path, at.id))
	}
	return e.templateMsg(e.a.msgCreateTemplate, unix.NLM_F_EXCL|unix.NLM_F_CREATE, e.a.objAction, pname, root...)
}

func (e *encoder) paramTemplateAttrs(p paramTemplate) []*nl.RtAttr {
	as := []*nl.RtAttr{attrString(e.a.paramName, p.name)}
	if p.id != 0 {
		as = append(as, attrU32(e.a.paramID, p.id))
	}
	return append(as, e.paramTypeAttr(p.typ))
}

func (e *encoder) paramTypeAttr(t p4tcType) *nl.RtAttr {
	return nest(e.a.paramType,
		attrU16(e.a.paramTypeBitend, uint16(t.bits-1)),
		attrU32(e.a.paramTypeContainer, t.container))
}

// actionActivate is `tc p4template update action/<p>/<cb>/<act> state
// active`: an action kind can be instantiated only once active.
func (e *encoder) actionActivate(pname, name string) *message {
	return e.templateMsg(e.a.msgUpdateTemplate, 0, e.a.objAction, pname,
		nest(e.a.params, attrU8(e.a.actActive, 1), attrString(e.a.actName, name)))
}

// tableCreate is `tc p4template create table/<p>/<cb>/<t> tblid <id> type
// <type> keysz <bits> permissions <hex> tentries <n> nummasks <n>
// [num_timer_profiles <n>] table_acts act name <a> [flags <f>] ...`.
// iproute2 adds num_timer_profiles and table_acts as it parses them and the
// scalar attributes after the loop.
func (e *encoder) tableCreate(pname string, t *tableTemplate) *message {
	ps := []*nl.RtAttr{}
	if t.timerProfiles != 0 {
		ps = append(ps, attrU32(e.a.tableNumTimerProfiles, t.timerProfiles))
	}
	if len(t.acts) > 0 {
		list := nest(e.a.tableActsList)
		for i, ta := range t.acts {
			act := nest(uint16(i+1), attrString(e.a.tableActName, ta.name))
			if ta.flags != 0 {
				act.AddChild(attrU8(e.a.tableActFlags, ta.flags))
			}
			list.AddChild(act)
		}
		ps = append(ps, list)
	}
	ps = append(ps, attrU32(e.a.tableKeySz, t.keySz))
	if t.maxEntries != 0 {
		ps = append(ps, attrU32(e.a.tableMaxEntries, t.maxEntries))
	}
	if t.maxMasks != 0 {
		ps = append(ps, attrU32(e.a.tableMaxMasks, t.maxMasks))
	}
	if t.hasPermissions {
		ps = append(ps, attrU16(e.a.tablePermissions, t.permissions))
	}
	if t.typ != 0 {
		ps = append(ps, attrU8(e.a.tableType, t.typ))
	}
	ps = append(ps, attrString(e.a.tableName, t.name))
	root := []*nl.RtAttr{nest(e.a.params, ps...)}
	if t.id != 0 {
		root = append(root, attrU32(e.a.path, t.id))
	}
	return e.templateMsg(e.a.msgCreateTemplate, unix.NLM_F_EXCL|unix.NLM_F_CREATE, e.a.objTable, pname, root...)
}

// tableDefault is `tc p4template update table/<p>/<cb>/<t>
// default_miss_action [permissions <hex>] action <a> [param ...]` (or
// default_hit_action).
func (e *encoder) tableDefault(pname, table string, hit bool, d *defaultAction) *message {
	typ := e.a.tableDefaultMiss
	if hit {
		typ = e.a.tableDefaultHit
	}
	return e.templateMsg(e.a.msgUpdateTemplate, 0, e.a.objTable, pname,
		nest(e.a.params, nest(typ, e.defaultActionAttrs(d)...), attrString(e.a.tableName, table)))
}

// defaultActionAttrs encodes a default action as iproute2's
// parse_table_default_action does: permissions, then the action, where
// NoAction is a flag and any other action a tc action list (tc/m_action.c
// parse_action: kind before options).
func (e *encoder) defaultActionAttrs(d *defaultAction) []*nl.RtAttr {
	var as []*nl.RtAttr
	if d.hasPermissions {
		as = append(as, attrU16(e.a.defaultPermissions, d.permissions))
	}
	if d.noAction || d.call == nil {
		return append(as, attrU8(e.a.defaultNoAction, 1))
	}
	return append(as, nest(e.a.defaultAction, e.actionListItem(d.call, true)))
}

// actionListItem is index 1 of a tc action list holding a P4 action:
// TCA_ACT_KIND, TCA_ACT_OPTIONS {P4TC_ACT_PARMS, P4TC_ACT_OPT} and the
// TCA_ACT_FLAGS bitfield. iproute2 puts the kind first in generic action
// lists (m_action.c) and last in table entries (p4tc_table.c).
func (e *encoder) actionListItem(c *actionCall, kindFirst bool) *nl.RtAttr {
	opts := nest(e.a.tcaActOptions)
	if len(c.params) > 0 {
		parms := nest(e.a.actParms)
		for i, p := range c.params {
			parms.AddChild(nest(uint16(i+1), e.paramValueAttrs(p)...))
		}
		opts.AddChild(parms)
	}
	opts.AddChild(attrBytes(e.a.actOpt, tcActP4(e.a.tcActPipe)))
	kind := attrString(e.a.tcaActKind, c.kind)
	item := nestNoFlag(1)
	if kindFirst {
		item.AddChild(kind)
		item.AddChild(opts)
	} else {
		item.AddChild(opts)
		item.AddChild(kind)
	}
	if c.flags != 0 {
		item.AddChild(attrBitfield32(e.a.tcaActFlags, c.flags, c.flags))
	}
	return item
}

// paramValueAttrs is one runtime argument (tc/m_dyna.c dyna_add_param):
// name, id, type, the value, and an all-zero mask of the value's size.
func (e *encoder) paramValueAttrs(p paramValue) []*nl.RtAttr {
	as := []*nl.RtAttr{attrString(e.a.paramName, p.name)}
	if p.id != 0 {
		as = append(as, attrU32(e.a.paramID, p.id))
	}
	return append(as,
		e.paramTypeAttr(p.typ),
		nest(e.a.paramValue, attrBytes(e.a.paramValueRaw, p.value)),
		attrBytes(e.a.paramMask, make([]byte, len(p.value))))
}

// tcActP4 is struct tc_act_p4 { tc_gen; }: index, capab, action, refcnt,
// bindcnt, with the given verdict.
func tcActP4(action int32) []byte {
	b := make([]byte, 20)
	native.PutUint32(b[8:12], uint32(action))
	return b
}
