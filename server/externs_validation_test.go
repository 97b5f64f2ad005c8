package server

import (
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Every extern rule of P4Runtime v1.5 §9.2-§9.8 with the code the spec
// gives it, through the whole server over gRPC, on p4tcd's externs P4Info.
// A failed update must leave every entity of every kind as it was.
func TestExternWriteValidation(t *testing.T) {
	e := &testEnv{info: loadInfo(t, externsP4Info)} // for ids only
	port := func(p uint64) *p4v1.Action { return e.action("set_port", canon(p)) }
	k8 := func(v uint64) *p4v1.FieldMatch { return exact(1, canon(v)) }
	k16 := k8
	k32 := func(v uint64) *p4v1.FieldMatch { return exact(1, canon(v)) }
	l32 := func(v uint64, plen int32) *p4v1.FieldMatch { return lpm(1, canon(v), plen) }
	tdirect := func(v uint64) *p4v1.TableEntry { return e.te("t_direct", k32(v), direct(port(1))) }
	with := func(te *p4v1.TableEntry, f func(*p4v1.TableEntry)) *p4v1.TableEntry { f(te); return te }
	mode := func(a *p4v1.TableAction, m p4v1.ActionProfileActionSet_ActionSelectionMode, s p4v1.ActionProfileActionSet_SizeSemantics) *p4v1.TableAction {
		a.GetActionProfileActionSet().ActionSelectionMode, a.GetActionProfileActionSet().SizeSemantics = m, s
		return a
	}
	selMembers := []*p4v1.Update{ins(e.member("sel", 1, port(1))), ins(e.member("sel", 2, port(2))), ins(e.member("sel", 3, e.action("set_nhop", canon(3), canon(0xaabb))))}
	selmMembers := []*p4v1.Update{ins(e.member("sel_m", 1, port(1))), ins(e.member("sel_m", 2, port(2))), ins(e.member("sel_m", 3, port(3))), ins(e.member("sel_m", 4, port(4)))}
	nwMembers := []*p4v1.Update{ins(e.member("sel_nw", 1, port(1))), ins(e.member("sel_nw", 2, port(2)))}
	plus := func(a []*p4v1.Update, b ...*p4v1.Update) []*p4v1.Update {
		return append(append([]*p4v1.Update{}, a...), b...)
	}
	dflt := func(table string) *p4v1.TableEntry {
		return &p4v1.TableEntry{TableId: e.id(table), IsDefaultAction: true}
	}
	dce := func(te *p4v1.TableEntry, d *p4v1.CounterData) *p4v1.DirectCounterEntry {
		return &p4v1.DirectCounterEntry{TableEntry: te, Data: d}
	}
	dme := func(te *p4v1.TableEntry, c *p4v1.MeterConfig) *p4v1.DirectMeterEntry {
		return &p4v1.DirectMeterEntry{TableEntry: te, Config: c}
	}

	tests := []struct {
		name     string
		setup    []*p4v1.Update
		update   *p4v1.Update
		wantCode codes.Code
		wantMsg  string
	}{
		// ActionProfileMember (§9.2.1).
		{name: "member insert", update: ins(e.member("prof", 1, port(1))), wantCode: codes.OK},
		{name: "member duplicate", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: ins(e.member("prof", 1, port(2))), wantCode: codes.AlreadyExists},
		{name: "member modify", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: mod(e.member("prof", 1, e.action("drop"))), wantCode: codes.OK},
		{name: "member modify missing", update: mod(e.member("prof", 1, port(1))), wantCode: codes.NotFound},
		{name: "member modify without action", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: mod(e.member("prof", 1, nil)), wantCode: codes.InvalidArgument, wantMsg: "action is required"},
		{name: "member delete missing", update: rm(e.member("prof", 1, nil)), wantCode: codes.NotFound},
		{name: "member delete ignores the action", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: rm(e.member("prof", 1, e.action("set_nhop"))), wantCode: codes.OK},
		{name: "member insert without action", update: ins(e.member("prof", 1, nil)), wantCode: codes.InvalidArgument},
		{name: "member action not in table", update: ins(e.member("prof", 1, e.action("set_nhop", canon(1), canon(2)))), wantCode: codes.InvalidArgument, wantMsg: "not an action of table"},
		{name: "member defaultonly action", update: ins(e.member("prof", 1, e.action("NoAction"))), wantCode: codes.PermissionDenied, wantMsg: "@defaultonly"},
		{name: "member param too wide", update: ins(e.member("prof", 1, e.action("set_port", canon(0x10000)))), wantCode: codes.InvalidArgument, wantMsg: "does not fit in 16 bits"},
		{name: "member id 0", update: ins(e.member("prof", 0, port(1))), wantCode: codes.InvalidArgument},
		{name: "member of profile id 0", update: ins(&p4v1.ActionProfileMember{MemberId: 1, Action: port(1)}), wantCode: codes.InvalidArgument},
		{name: "member of a table id", update: ins(&p4v1.ActionProfileMember{ActionProfileId: e.id("t_prof"), MemberId: 1, Action: port(1)}), wantCode: codes.InvalidArgument, wantMsg: "it is a table"},
		{name: "profile full", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1))), ins(e.member("prof", 2, port(1))), ins(e.member("prof", 3, port(1))), ins(e.member("prof", 4, port(1)))},
			update: ins(e.member("prof", 5, port(1))), wantCode: codes.ResourceExhausted},
		{name: "member delete while in a group", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1)))), update: rm(e.member("sel", 1, nil)), wantCode: codes.FailedPrecondition, wantMsg: "in 1 group"},
		{name: "member delete while used by an entry", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1))), ins(e.te("t_prof", k16(1), memberRef(1)))},
			update: rm(e.member("prof", 1, nil)), wantCode: codes.FailedPrecondition, wantMsg: "used by 1 table"},
		{name: "member delete after its entry went", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1))), ins(e.te("t_prof", k16(1), memberRef(1))), rm(e.te("t_prof", k16(1), nil))},
			update: rm(e.member("prof", 1, nil)), wantCode: codes.OK},

		// ActionProfileGroup (§9.2.2).
		{name: "group insert", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, 1), gm(2, 3))), wantCode: codes.OK},
		{name: "group with members of different actions", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, 1), gm(3, 1))), wantCode: codes.OK},
		{name: "empty group", setup: selMembers, update: ins(e.group("sel", 1, 0)), wantCode: codes.OK},
		{name: "group duplicate", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1)))), update: ins(e.group("sel", 1, 0, gm(2, 1))), wantCode: codes.AlreadyExists},
		{name: "group on a profile without selector", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: ins(e.group("prof", 1, 0, gm(1, 1))), wantCode: codes.InvalidArgument, wantMsg: "no selector"},
		{name: "group with unknown member", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(9, 1))), wantCode: codes.NotFound},
		{name: "group member listed twice", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, 1), gm(1, 2))), wantCode: codes.InvalidArgument, wantMsg: "listed twice"},
		{name: "group weight 0", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, 0))), wantCode: codes.InvalidArgument, wantMsg: "weight must be positive"},
		{name: "group negative weight", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, -1))), wantCode: codes.InvalidArgument},
		{name: "weights disallowed, weight 0", setup: nwMembers, update: ins(e.group("sel_nw", 1, 0, gm(1, 0), gm(2, 0))), wantCode: codes.OK},
		{name: "weights disallowed, weight 1", setup: nwMembers, update: ins(e.group("sel_nw", 1, 0, gm(1, 1))), wantCode: codes.InvalidArgument, wantMsg: "disallows weights"},
		{name: "max_member_weight exceeded", setup: selmMembers, update: ins(e.group("sel_m", 1, 0, gm(1, 5))), wantCode: codes.InvalidArgument, wantMsg: "max_member_weight 4"},
		{name: "sum_of_members ignores weights", setup: selmMembers, update: ins(e.group("sel_m", 1, 0, gm(1, 4), gm(2, 4), gm(3, 4))), wantCode: codes.OK},
		{name: "sum_of_members over max_group_size", setup: selmMembers, update: ins(e.group("sel_m", 1, 0, gm(1, 1), gm(2, 1), gm(3, 1), gm(4, 1))), wantCode: codes.ResourceExhausted},
		{name: "max_size above max_group_size", setup: selMembers, update: ins(e.group("sel", 1, 9, gm(1, 1))), wantCode: codes.InvalidArgument, wantMsg: "max_group_size 8"},
		{name: "negative max_size", setup: selMembers, update: ins(e.group("sel", 1, -1, gm(1, 1))), wantCode: codes.InvalidArgument},
		{name: "weights over max_size", setup: selMembers, update: ins(e.group("sel", 1, 2, gm(1, 1), gm(2, 2))), wantCode: codes.ResourceExhausted, wantMsg: "bound 2"},
		{name: "weights over max_group_size", setup: selMembers, update: ins(e.group("sel", 1, 0, gm(1, 4), gm(2, 5))), wantCode: codes.ResourceExhausted, wantMsg: "bound 8"},
		{name: "max_size beyond what the selector holds", setup: nwMembers, update: ins(e.group("sel_nw", 1, 9, gm(1, 0))), wantCode: codes.ResourceExhausted, wantMsg: "cannot be supported"},
		{name: "selector full across groups", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 8))), ins(e.group("sel", 2, 0, gm(2, 8)))),
			update: ins(e.group("sel", 3, 0, gm(3, 1))), wantCode: codes.ResourceExhausted, wantMsg: "is full"},
		{name: "group modify", setup: plus(selMembers, ins(e.group("sel", 1, 4, gm(1, 1)))), update: mod(e.group("sel", 1, 4, gm(2, 2), gm(3, 2))), wantCode: codes.OK},
		{name: "group modify changes max_size", setup: plus(selMembers, ins(e.group("sel", 1, 4, gm(1, 1)))), update: mod(e.group("sel", 1, 5, gm(1, 1))), wantCode: codes.InvalidArgument, wantMsg: "fixed at INSERT"},
		{name: "group modify missing", setup: selMembers, update: mod(e.group("sel", 1, 0, gm(1, 1))), wantCode: codes.NotFound},
		{name: "group modify to a missing member", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1)))), update: mod(e.group("sel", 1, 0, gm(7, 1))), wantCode: codes.NotFound},
		{name: "group delete", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1)))), update: rm(e.group("sel", 1, 0)), wantCode: codes.OK},
		{name: "group delete missing", update: rm(e.group("sel", 1, 0)), wantCode: codes.NotFound},
		{name: "group delete while used", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1))), ins(e.te("t_sel", l32(0x0a000000, 8), groupRef(1)))),
			update: rm(e.group("sel", 1, 0)), wantCode: codes.FailedPrecondition},
		{name: "group id 0", setup: selMembers, update: ins(e.group("sel", 0, 0, gm(1, 1))), wantCode: codes.InvalidArgument},
		{name: "watch_port", setup: selMembers, update: ins(e.group("sel", 1, 0, gmPort(1, 1, []byte{0, 0, 0, 7}))), wantCode: codes.OK},
		{name: "watch_port 0", setup: selMembers, update: ins(e.group("sel", 1, 0, gmPort(1, 1, []byte{0}))), wantCode: codes.InvalidArgument, wantMsg: "SDN port 0"},
		{name: "watch_port too wide", setup: selMembers, update: ins(e.group("sel", 1, 0, gmPort(1, 1, []byte{1, 0, 0, 0, 0}))), wantCode: codes.InvalidArgument, wantMsg: "0x0100000000"},
		{name: "deprecated watch", setup: selMembers, update: ins(e.group("sel", 1, 0, gmWatch(1, 1, 3))), wantCode: codes.OK},
		{name: "deprecated watch negative", setup: selMembers, update: ins(e.group("sel", 1, 0, gmWatch(1, 1, -3))), wantCode: codes.InvalidArgument},

		// Indirect table entries (§9.1.2, §9.2.3).
		{name: "entry with member", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1)))}, update: ins(e.te("t_prof", k16(1), memberRef(1))), wantCode: codes.OK},
		{name: "entry with missing member", update: ins(e.te("t_prof", k16(1), memberRef(1))), wantCode: codes.NotFound},
		{name: "entry with member id 0", update: ins(e.te("t_prof", k16(1), memberRef(0))), wantCode: codes.InvalidArgument},
		{name: "entry with group on profile without selector", update: ins(e.te("t_prof", k16(1), groupRef(1))), wantCode: codes.InvalidArgument, wantMsg: "no selector"},
		{name: "entry with group", setup: plus(selMembers, ins(e.group("sel", 1, 0, gm(1, 1)))), update: ins(e.te("t_sel", l32(0x0a000000, 8), groupRef(1))), wantCode: codes.OK},
		{name: "entry with missing group", update: ins(e.te("t_sel", l32(0x0a000000, 8), groupRef(1))), wantCode: codes.NotFound},
		{name: "direct action on indirect table", update: ins(e.te("t_prof", k16(1), direct(port(1)))), wantCode: codes.InvalidArgument},
		{name: "member on direct table", update: ins(e.te("t_direct", k32(1), memberRef(1))), wantCode: codes.InvalidArgument, wantMsg: "direct table"},
		{name: "entry modify to another member", setup: []*p4v1.Update{ins(e.member("prof", 1, port(1))), ins(e.member("prof", 2, port(2))), ins(e.te("t_prof", k16(1), memberRef(1)))},
			update: mod(e.te("t_prof", k16(1), memberRef(2))), wantCode: codes.OK},
		{name: "indirect default entry", update: mod(with(dflt("t_prof"), func(te *p4v1.TableEntry) { te.Action = memberRef(1) })), wantCode: codes.PermissionDenied},
		{name: "one-shot", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(2), 6)))), wantCode: codes.OK},
		{name: "one-shot HASH mode", update: ins(e.te("t_sel", l32(0x0a000000, 8), mode(oneShot(osa(port(1), 1)), p4v1.ActionProfileActionSet_HASH, p4v1.ActionProfileActionSet_SUM_OF_WEIGHTS))), wantCode: codes.OK},
		{name: "one-shot RANDOM mode", update: ins(e.te("t_sel", l32(0x0a000000, 8), mode(oneShot(osa(port(1), 1)), p4v1.ActionProfileActionSet_RANDOM, 0))), wantCode: codes.Unimplemented},
		{name: "one-shot other size semantics", update: ins(e.te("t_sel", l32(0x0a000000, 8), mode(oneShot(osa(port(1), 1)), 0, p4v1.ActionProfileActionSet_SUM_OF_MEMBERS))), wantCode: codes.Unimplemented},
		{name: "one-shot unknown mode", update: ins(e.te("t_sel", l32(0x0a000000, 8), mode(oneShot(osa(port(1), 1)), 7, 0))), wantCode: codes.InvalidArgument},
		{name: "one-shot without selector", update: ins(e.te("t_prof", k16(1), oneShot(osa(port(1), 1)))), wantCode: codes.InvalidArgument, wantMsg: "need an action selector"},
		{name: "one-shot empty", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot())), wantCode: codes.InvalidArgument, wantMsg: "no actions"},
		{name: "one-shot action not in table", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(e.action("drop"), 1)))), wantCode: codes.InvalidArgument},
		{name: "one-shot weight 0", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 0)))), wantCode: codes.InvalidArgument},
		{name: "one-shot weights over max_group_size", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 4), osa(port(2), 5)))), wantCode: codes.InvalidArgument, wantMsg: "sum of weights 9"},
		{name: "one-shot actions over max_group_size", update: ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1), osa(port(1), 1)))), wantCode: codes.InvalidArgument, wantMsg: "number of actions 4"},
		{name: "one-shot max_member_weight", update: ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 5)))), wantCode: codes.InvalidArgument},
		{name: "one-shot weights disallowed", update: ins(e.te("t_sel_nw", k8(1), oneShot(osa(port(1), 1)))), wantCode: codes.InvalidArgument},
		{name: "one-shot watch_port 0", update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(&p4v1.ActionProfileAction{Action: port(1), Weight: 1, WatchKind: &p4v1.ActionProfileAction_WatchPort{WatchPort: []byte{0}}}))), wantCode: codes.InvalidArgument},
		{name: "one-shot selector full", setup: []*p4v1.Update{ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1)))), ins(e.te("t_sel_m", k8(2), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1))))},
			update: ins(e.te("t_sel_m", k8(3), oneShot(osa(port(1), 1)))), wantCode: codes.ResourceExhausted},
		{name: "one-shot duplicate entry in a full selector", setup: []*p4v1.Update{ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1)))), ins(e.te("t_sel_m", k8(2), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1))))},
			update: ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 1)))), wantCode: codes.AlreadyExists},
		{name: "one-shot mixed into members", setup: selMembers, update: ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 1)))), wantCode: codes.InvalidArgument, wantMsg: "cannot be mixed"},
		{name: "member mixed into one-shots", setup: []*p4v1.Update{ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 1))))}, update: ins(e.member("sel", 1, port(1))), wantCode: codes.InvalidArgument, wantMsg: "cannot be mixed"},
		{name: "group mixed into one-shots", setup: []*p4v1.Update{ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 1))))}, update: ins(e.group("sel", 1, 0)), wantCode: codes.InvalidArgument, wantMsg: "cannot be mixed"},
		{name: "members again once one-shots are gone", setup: []*p4v1.Update{ins(e.te("t_sel", l32(0x0a000000, 8), oneShot(osa(port(1), 1)))), rm(e.te("t_sel", l32(0x0a000000, 8), nil))},
			update: ins(e.member("sel", 1, port(1))), wantCode: codes.OK},
		{name: "one-shot modify", setup: []*p4v1.Update{ins(e.te("t_sel_m", k8(1), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1)))), ins(e.te("t_sel_m", k8(2), oneShot(osa(port(1), 1), osa(port(1), 1))))},
			update: mod(e.te("t_sel_m", k8(2), oneShot(osa(port(3), 1)))), wantCode: codes.OK},

		// CounterEntry (§9.3.2).
		{name: "counter modify", update: mod(e.counter("c_pkts", ix(3), cdata(0, 10))), wantCode: codes.OK},
		{name: "counter modify every cell", update: mod(e.counter("c_pkts", nil, cdata(0, 10))), wantCode: codes.OK},
		{name: "counter modify without data", update: mod(e.counter("c_pkts", ix(3), nil)), wantCode: codes.OK},
		{name: "counter insert", update: ins(e.counter("c_pkts", ix(3), cdata(0, 1))), wantCode: codes.InvalidArgument, wantMsg: "only be modified"},
		{name: "counter delete", update: rm(e.counter("c_pkts", ix(3), nil)), wantCode: codes.InvalidArgument},
		{name: "counter id 0", update: mod(&p4v1.CounterEntry{Index: ix(1), Data: cdata(0, 1)}), wantCode: codes.InvalidArgument},
		{name: "counter id of a direct counter", update: mod(e.counter("t_direct_counter", ix(1), cdata(0, 1))), wantCode: codes.InvalidArgument, wantMsg: "direct counter"},
		{name: "counter negative index", update: mod(e.counter("c_pkts", ix(-1), cdata(0, 1))), wantCode: codes.InvalidArgument, wantMsg: "negative index"},
		{name: "counter index too large", update: mod(e.counter("c_pkts", ix(8), cdata(0, 1))), wantCode: codes.OutOfRange},
		{name: "counter negative count", update: mod(e.counter("c_pkts", ix(1), cdata(0, -1))), wantCode: codes.InvalidArgument},

		// DirectCounterEntry and TableEntry.counter_data (§9.3.1, §9.1.6).
		{name: "direct counter modify", setup: []*p4v1.Update{insert(tdirect(1))}, update: mod(dce(e.te("t_direct", k32(1), nil), cdata(100, 2))), wantCode: codes.OK},
		{name: "direct counter of the default entry", update: mod(dce(dflt("t_direct"), cdata(100, 2))), wantCode: codes.OK},
		{name: "direct counter of a missing entry", update: mod(dce(e.te("t_direct", k32(1), nil), cdata(1, 1))), wantCode: codes.NotFound},
		{name: "direct counter insert", setup: []*p4v1.Update{insert(tdirect(1))}, update: ins(dce(e.te("t_direct", k32(1), nil), cdata(1, 1))), wantCode: codes.InvalidArgument},
		{name: "direct counter without table_entry", update: mod(dce(nil, cdata(1, 1))), wantCode: codes.InvalidArgument},
		{name: "direct counter of table 0", update: mod(dce(&p4v1.TableEntry{}, cdata(1, 1))), wantCode: codes.InvalidArgument},
		{name: "direct counter of a table without one", setup: []*p4v1.Update{insert(e.te("t_srtcm", k8(1), direct(port(1))))}, update: mod(dce(e.te("t_srtcm", k8(1), nil), cdata(1, 1))), wantCode: codes.InvalidArgument},
		{name: "counter_data on insert", update: insert(with(tdirect(1), func(te *p4v1.TableEntry) { te.CounterData = cdata(5, 1) })), wantCode: codes.OK},
		{name: "negative counter_data", update: insert(with(tdirect(1), func(te *p4v1.TableEntry) { te.CounterData = cdata(-5, 1) })), wantCode: codes.InvalidArgument},
		{name: "counter_data on a table without counter", update: insert(with(e.te("t_srtcm", k8(1), direct(port(1))), func(te *p4v1.TableEntry) { te.CounterData = cdata(5, 1) })), wantCode: codes.InvalidArgument},

		// MeterEntry (§9.4.2).
		{name: "meter modify", update: mod(e.meter("m_tr", ix(1), mcfg(100, 10, 200, 20, 0))), wantCode: codes.OK},
		{name: "meter reset", update: mod(e.meter("m_tr", ix(1), nil)), wantCode: codes.OK},
		{name: "meter every cell", update: mod(e.meter("m_tr", nil, mcfg(100, 10, 200, 20, 0))), wantCode: codes.OK},
		{name: "trTCM with eburst", update: mod(e.meter("m_tr", ix(1), mcfg(100, 10, 200, 20, 5))), wantCode: codes.InvalidArgument, wantMsg: "no eburst"},
		{name: "srTCM", update: mod(e.meter("m_sr", ix(1), mcfg(100, 10, 100, 10, 50))), wantCode: codes.OK},
		{name: "srTCM pir differs", update: mod(e.meter("m_sr", ix(1), mcfg(100, 10, 200, 10, 50))), wantCode: codes.InvalidArgument, wantMsg: "pir == cir"},
		{name: "srTCM pburst differs", update: mod(e.meter("m_sr", ix(1), mcfg(100, 10, 100, 20, 0))), wantCode: codes.InvalidArgument},
		{name: "two-color", update: mod(e.meter("m_2c", ix(0), mcfg(100, 10, 100, 10, 0))), wantCode: codes.OK},
		{name: "two-color with eburst", update: mod(e.meter("m_2c", ix(0), mcfg(100, 10, 100, 10, 1))), wantCode: codes.InvalidArgument},
		{name: "two-color pir differs", update: mod(e.meter("m_2c", ix(0), mcfg(100, 10, 101, 10, 0))), wantCode: codes.InvalidArgument},
		{name: "meter negative rate", update: mod(e.meter("m_tr", ix(1), mcfg(-1, 10, 200, 20, 0))), wantCode: codes.InvalidArgument},
		{name: "meter insert", update: ins(e.meter("m_tr", ix(1), nil)), wantCode: codes.InvalidArgument},
		{name: "meter index too large", update: mod(e.meter("m_tr", ix(4), nil)), wantCode: codes.OutOfRange},
		{name: "meter negative index", update: mod(e.meter("m_tr", ix(-4), nil)), wantCode: codes.InvalidArgument},
		{name: "meter per-colour counters", update: mod(with2(e.meter("m_tr", ix(1), nil), func(m *p4v1.MeterEntry) { m.CounterData = &p4v1.MeterCounterData{} })), wantCode: codes.Unimplemented},

		// DirectMeterEntry and TableEntry.meter_config (§9.4.1, §9.1.6).
		{name: "direct meter modify", setup: []*p4v1.Update{insert(tdirect(1))}, update: mod(dme(e.te("t_direct", k32(1), nil), mcfg(1, 2, 3, 4, 0))), wantCode: codes.OK},
		{name: "direct meter reset", setup: []*p4v1.Update{insert(tdirect(1))}, update: mod(dme(e.te("t_direct", k32(1), nil), nil)), wantCode: codes.OK},
		{name: "direct meter of a missing entry", update: mod(dme(e.te("t_direct", k32(1), nil), nil)), wantCode: codes.NotFound},
		{name: "direct meter delete", setup: []*p4v1.Update{insert(tdirect(1))}, update: rm(dme(e.te("t_direct", k32(1), nil), nil)), wantCode: codes.InvalidArgument},
		{name: "direct srTCM pir differs", setup: []*p4v1.Update{insert(e.te("t_srtcm", k8(1), direct(port(1))))}, update: mod(dme(e.te("t_srtcm", k8(1), nil), mcfg(1, 2, 3, 2, 0))), wantCode: codes.InvalidArgument},
		{name: "direct meter per-colour counters", setup: []*p4v1.Update{insert(tdirect(1))}, update: mod(&p4v1.DirectMeterEntry{TableEntry: e.te("t_direct", k32(1), nil), CounterData: &p4v1.MeterCounterData{}}), wantCode: codes.Unimplemented},
		{name: "meter_config on insert", update: insert(with(tdirect(1), func(te *p4v1.TableEntry) { te.MeterConfig = mcfg(1, 2, 3, 4, 0) })), wantCode: codes.OK},
		{name: "meter_config with eburst on trTCM", update: insert(with(tdirect(1), func(te *p4v1.TableEntry) { te.MeterConfig = mcfg(1, 2, 3, 4, 5) })), wantCode: codes.InvalidArgument},
		{name: "meter_config on a table without meter", update: insert(with(e.te("t_prof", k16(1), memberRef(1)), func(te *p4v1.TableEntry) { te.MeterConfig = mcfg(1, 2, 3, 4, 0) })), wantCode: codes.InvalidArgument, wantMsg: "no direct meter"},
		{name: "meter_counter_data", update: insert(with(tdirect(1), func(te *p4v1.TableEntry) { te.MeterCounterData = &p4v1.MeterCounterData{} })), wantCode: codes.Unimplemented},

		// RegisterEntry (§9.7).
		{name: "register bit<12>", update: mod(e.reg("r_bit", ix(1), bitsData(canon(0xfff)))), wantCode: codes.OK},
		{name: "register bit<12> padded", update: mod(e.reg("r_bit", ix(1), bitsData([]byte{0, 0, 0x0f, 0xff}))), wantCode: codes.OK},
		{name: "register bit<12> too wide", update: mod(e.reg("r_bit", ix(1), bitsData(canon(0x1000)))), wantCode: codes.InvalidArgument, wantMsg: "0x1000"},
		{name: "register empty bitstring", update: mod(e.reg("r_bit", ix(1), bitsData(nil))), wantCode: codes.InvalidArgument},
		{name: "register bit<100>", update: mod(e.reg("r_wide", ix(1), bitsData(append([]byte{0x0f}, make([]byte, 12)...)))), wantCode: codes.OK},
		{name: "register bit<100> given 101 bits", update: mod(e.reg("r_wide", ix(1), bitsData(append([]byte{0x10}, make([]byte, 12)...)))), wantCode: codes.InvalidArgument},
		{name: "register int<8> -128", update: mod(e.reg("r_int", ix(0), bitsData([]byte{0x80}))), wantCode: codes.OK},
		{name: "register int<8> sign-extended", update: mod(e.reg("r_int", ix(0), bitsData([]byte{0xff, 0xff, 0x80}))), wantCode: codes.OK},
		{name: "register int<8> 128", update: mod(e.reg("r_int", ix(0), bitsData([]byte{0x00, 0x80}))), wantCode: codes.InvalidArgument},
		{name: "register bool", update: mod(e.reg("r_bool", ix(1), boolData(true))), wantCode: codes.OK},
		{name: "register bool given a bitstring", update: mod(e.reg("r_bool", ix(1), bitsData([]byte{1}))), wantCode: codes.InvalidArgument, wantMsg: "must be a bool"},
		{name: "register bit given a bool", update: mod(e.reg("r_bit", ix(1), boolData(true))), wantCode: codes.InvalidArgument},
		{name: "register without data", update: mod(e.reg("r_bit", ix(1), nil)), wantCode: codes.InvalidArgument},
		{name: "register of a struct", update: mod(e.reg("r_struct", ix(0), bitsData([]byte{1}))), wantCode: codes.Unimplemented},
		{name: "register every cell", update: mod(e.reg("r_bit", nil, bitsData(canon(7)))), wantCode: codes.OK},
		{name: "register insert", update: ins(e.reg("r_bit", ix(1), bitsData(canon(1)))), wantCode: codes.InvalidArgument},
		{name: "register index too large", update: mod(e.reg("r_bit", ix(4), bitsData(canon(1)))), wantCode: codes.OutOfRange},
		{name: "register negative index", update: mod(e.reg("r_bit", ix(-1), bitsData(canon(1)))), wantCode: codes.InvalidArgument},
		{name: "register id 0", update: mod(&p4v1.RegisterEntry{Index: ix(1), Data: bitsData(canon(1))}), wantCode: codes.InvalidArgument},

		// MulticastGroupEntry (§9.5.1).
		{name: "multicast egress_port", update: ins(mcast(1, repE(1, 1), repE(2, 1))), wantCode: codes.OK},
		{name: "multicast egress_port 0", update: ins(mcast(1, repE(0, 1))), wantCode: codes.OK},
		{name: "multicast port", update: ins(mcast(1, repP([]byte{0, 5}, 1), repP([]byte{6}, 1))), wantCode: codes.OK},
		{name: "multicast same port other instance", update: ins(mcast(1, repP([]byte{5}, 1), repP([]byte{5}, 2))), wantCode: codes.OK},
		{name: "multicast empty", update: ins(mcast(1)), wantCode: codes.OK},
		{name: "multicast id 0", update: ins(mcast(0, repE(1, 1))), wantCode: codes.InvalidArgument},
		{name: "multicast duplicate", setup: []*p4v1.Update{ins(mcast(1, repE(1, 1)))}, update: ins(mcast(1, repE(2, 1))), wantCode: codes.AlreadyExists},
		{name: "multicast modify", setup: []*p4v1.Update{ins(mcast(1, repE(1, 1)))}, update: mod(mcast(1, repE(2, 1))), wantCode: codes.OK},
		{name: "multicast modify missing", update: mod(mcast(1, repE(1, 1))), wantCode: codes.NotFound},
		{name: "multicast delete missing", update: rm(mcast(1)), wantCode: codes.NotFound},
		{name: "multicast delete", setup: []*p4v1.Update{ins(mcast(1, repE(1, 1)))}, update: rm(mcast(1)), wantCode: codes.OK},
		{name: "multicast duplicate replica", update: ins(mcast(1, repE(1, 1), repE(1, 1))), wantCode: codes.InvalidArgument, wantMsg: "given twice"},
		{name: "multicast duplicate replica across forms", update: ins(mcast(1, repE(5, 1), repP([]byte{0, 0, 5}, 1))), wantCode: codes.InvalidArgument},
		{name: "multicast replica without port", update: ins(mcast(1, &p4v1.Replica{Instance: 1})), wantCode: codes.InvalidArgument, wantMsg: "no port"},
		{name: "multicast port empty", update: ins(mcast(1, repP(nil, 1))), wantCode: codes.InvalidArgument},
		{name: "multicast port 0", update: ins(mcast(1, repP([]byte{0, 0}, 1))), wantCode: codes.InvalidArgument, wantMsg: "SDN port 0"},
		{name: "multicast port too wide", update: ins(mcast(1, repP([]byte{1, 2, 3, 4, 5}, 1))), wantCode: codes.InvalidArgument, wantMsg: "32 bits"},
		{name: "multicast backup replicas", update: ins(mcast(1, repP([]byte{1}, 1, backup([]byte{2}, 1), backup([]byte{3}, 1)))), wantCode: codes.OK},
		{name: "multicast backup on the replica's port", update: ins(mcast(1, repP([]byte{1}, 1, backup([]byte{1}, 2)))), wantCode: codes.InvalidArgument, wantMsg: "own port"},
		{name: "multicast backup repeats a replica", update: ins(mcast(1, repP([]byte{1}, 1, backup([]byte{2}, 1)), repP([]byte{2}, 1))), wantCode: codes.InvalidArgument},

		// CloneSessionEntry (§9.5.2).
		{name: "clone session", update: ins(cloneS(1, 2, 4096, repP([]byte{0xff, 0xff, 0xff, 0xfd}, 1))), wantCode: codes.OK},
		{name: "clone session 0", update: ins(cloneS(0, 0, 0, repE(1, 1))), wantCode: codes.InvalidArgument},
		{name: "clone negative length", update: ins(cloneS(1, 0, -1, repE(1, 1))), wantCode: codes.InvalidArgument},
		{name: "clone duplicate", setup: []*p4v1.Update{ins(cloneS(1, 0, 0, repE(1, 1)))}, update: ins(cloneS(1, 0, 0, repE(1, 1))), wantCode: codes.AlreadyExists},
		{name: "clone modify missing", update: mod(cloneS(1, 0, 0, repE(1, 1))), wantCode: codes.NotFound},
		{name: "clone with backup replicas", update: ins(cloneS(1, 0, 0, repP([]byte{1}, 1, backup([]byte{2}, 1)))), wantCode: codes.InvalidArgument},

		// ValueSetEntry (§9.6).
		{name: "value set", update: mod(e.vset("vs_eth", vsm(exact(1, canon(0x22f3))), vsm(exact(1, canon(0x893b))))), wantCode: codes.OK},
		{name: "value set cleared", setup: []*p4v1.Update{mod(e.vset("vs_eth", vsm(exact(1, canon(0x22f3)))))}, update: mod(e.vset("vs_eth")), wantCode: codes.OK},
		{name: "value set insert", update: ins(e.vset("vs_eth", vsm(exact(1, canon(0x22f3))))), wantCode: codes.InvalidArgument},
		{name: "value set delete", update: rm(e.vset("vs_eth")), wantCode: codes.InvalidArgument},
		{name: "value set over size", update: mod(e.vset("vs_eth", vsm(exact(1, canon(1))), vsm(exact(1, canon(2))), vsm(exact(1, canon(3))), vsm(exact(1, canon(4))))), wantCode: codes.ResourceExhausted},
		{name: "value set duplicate member", update: mod(e.vset("vs_eth", vsm(exact(1, canon(0x22f3))), vsm(exact(1, []byte{0, 0, 0x22, 0xf3})))), wantCode: codes.AlreadyExists},
		{name: "value set unknown field", update: mod(e.vset("vs_eth", vsm(exact(2, canon(1))))), wantCode: codes.InvalidArgument},
		{name: "value set value too wide", update: mod(e.vset("vs_eth", vsm(exact(1, canon(0x10000))))), wantCode: codes.InvalidArgument, wantMsg: "value set parser.vs_eth"},
		{name: "value set exact field missing", update: mod(e.vset("vs_tern", vsm(ternary(1, canon(6), canon(0xff))))), wantCode: codes.InvalidArgument, wantMsg: "cannot be omitted"},
		{name: "value set ternary", update: mod(e.vset("vs_tern", vsm(ternary(1, canon(6), canon(0xff)), exact(2, canon(1))), vsm(exact(2, canon(2))))), wantCode: codes.OK},
		{name: "value set ternary zero mask", update: mod(e.vset("vs_tern", vsm(ternary(1, canon(0), canon(0)), exact(2, canon(1))))), wantCode: codes.InvalidArgument},
		{name: "value set id 0", update: mod(&p4v1.ValueSetEntry{}), wantCode: codes.InvalidArgument},
		{name: "value set of a table id", update: mod(&p4v1.ValueSetEntry{ValueSetId: e.id("t_direct")}), wantCode: codes.InvalidArgument},

		// DigestEntry (§9.8).
		{name: "digest insert", update: ins(e.digest("learn_t", dcfg(1e6, 10, 1e9))), wantCode: codes.OK},
		{name: "digest duplicate", setup: []*p4v1.Update{ins(e.digest("learn_t", dcfg(0, 1, 0)))}, update: ins(e.digest("learn_t", dcfg(0, 1, 0))), wantCode: codes.AlreadyExists},
		{name: "digest modify", setup: []*p4v1.Update{ins(e.digest("learn_t", dcfg(0, 1, 0)))}, update: mod(e.digest("learn_t", dcfg(5, 5, 5))), wantCode: codes.OK},
		{name: "digest modify not enabled", update: mod(e.digest("learn_t", dcfg(0, 1, 0))), wantCode: codes.NotFound},
		{name: "digest delete", setup: []*p4v1.Update{ins(e.digest("learn_t", dcfg(0, 1, 0)))}, update: rm(e.digest("learn_t", nil)), wantCode: codes.OK},
		{name: "digest delete not enabled", update: rm(e.digest("learn_t", nil)), wantCode: codes.NotFound},
		{name: "digest without config", update: ins(e.digest("learn_t", nil)), wantCode: codes.InvalidArgument},
		{name: "digest negative timeout", update: ins(e.digest("learn_t", dcfg(-1, 1, 0))), wantCode: codes.InvalidArgument},
		{name: "digest of a counter id", update: ins(&p4v1.DigestEntry{DigestId: e.id("c_pkts"), Config: dcfg(0, 1, 0)}), wantCode: codes.InvalidArgument, wantMsg: "it is a counter"},

		{name: "extern entry", update: &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_ExternEntry{ExternEntry: &p4v1.ExternEntry{ExternTypeId: 1}}}}, wantCode: codes.Unimplemented},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newExternEnv(t, nil)
			for i, u := range tc.setup {
				if err := e.write(1, 0, proto.Clone(u).(*p4v1.Update)); err != nil {
					t.Fatalf("setup %d: %v", i, err)
				}
			}
			before := allState(t, e)
			err := e.write(1, 0, proto.Clone(tc.update).(*p4v1.Update))
			if tc.wantCode == codes.OK {
				if err != nil {
					t.Fatalf("write: %v, want OK", err)
				}
				return
			}
			ds := details(t, err)
			if len(ds) != 1 {
				t.Fatalf("%d error details, want 1", len(ds))
			}
			if got := codes.Code(ds[0].GetCanonicalCode()); got != tc.wantCode {
				t.Fatalf("code %v (%q), want %v", got, ds[0].GetMessage(), tc.wantCode)
			}
			if !strings.Contains(ds[0].GetMessage(), tc.wantMsg) {
				t.Errorf("message %q does not say %q", ds[0].GetMessage(), tc.wantMsg)
			}
			if after := allState(t, e); after != before {
				t.Errorf("a failed write changed the state:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func with2[T any](x T, f func(T)) T { f(x); return x }
