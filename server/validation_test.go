package server

import (
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// Every table entry rule of P4Runtime v1.5 §9.1 with the code the spec
// gives it, through the whole server over gRPC. Tables and actions are
// those of p4runtime-shell's unittest P4Info.
func TestWriteValidation(t *testing.T) {
	const (
		actionA  = 16783703 // param 1: 48 bits
		actionB  = 16809468 // param 1: 8 bits
		actionC  = 16827074 // no params
		noAction = 16800567
	)
	e0 := newTestEnv(t)
	id := func(name string) uint32 { return tableID(e0, name) }
	ent := func(table string, prio int32, a *p4v1.TableAction, ms ...*p4v1.FieldMatch) *p4v1.TableEntry {
		return &p4v1.TableEntry{TableId: id(table), Match: ms, Priority: prio, Action: a}
	}
	okA := act(actionA, canon(0xaabb))
	k32 := exact(1, canon(0x0a000001))
	dflt := func(table string, a *p4v1.TableAction) *p4v1.TableEntry {
		return &p4v1.TableEntry{TableId: id(table), IsDefaultAction: true, Action: a}
	}
	with := func(te *p4v1.TableEntry, f func(*p4v1.TableEntry)) *p4v1.TableEntry { f(te); return te }

	tests := []struct {
		name     string
		setup    []*p4v1.Update
		update   *p4v1.Update
		wantCode codes.Code
		wantMsg  string
	}{
		// Exact match and bytestrings (§8.3, §9.1.1).
		{name: "exact ok", update: insert(ent("ExactOne", 0, okA, k32)), wantCode: codes.OK},
		{name: "exact zero-padded value fits", update: insert(ent("ExactOne", 0, okA, exact(1, be(0x0a000001, 8)))), wantCode: codes.OK},
		{name: "exact value too wide", update: insert(ent("ExactOne", 0, okA, exact(1, be(0x010a000001, 5)))), wantCode: codes.InvalidArgument, wantMsg: "does not fit in 32 bits"},
		{name: "exact 12-bit field given 13 bits", update: insert(ent("ExactOneNonAligned", 0, okA, exact(1, be(0x1000, 2)))), wantCode: codes.InvalidArgument, wantMsg: "0x1000"},
		{name: "exact empty value", update: insert(ent("ExactOne", 0, okA, exact(1, nil))), wantCode: codes.InvalidArgument, wantMsg: "empty value"},
		{name: "exact field missing", update: insert(ent("ExactOne", 0, okA)), wantCode: codes.InvalidArgument, wantMsg: "cannot be omitted"},
		{name: "unknown field id", update: insert(ent("ExactOne", 0, okA, k32, exact(9, canon(1)))), wantCode: codes.InvalidArgument, wantMsg: "no match field with id 9"},
		{name: "field given twice", update: insert(ent("ExactOne", 0, okA, k32, k32)), wantCode: codes.InvalidArgument, wantMsg: "given twice"},
		{name: "wrong match kind", update: insert(ent("ExactOne", 0, okA, lpm(1, canon(0x0a000000), 8))), wantCode: codes.InvalidArgument, wantMsg: "is exact, but the match gives lpm"},
		{name: "unknown table", update: insert(&p4v1.TableEntry{TableId: 0x02000999, Action: okA}), wantCode: codes.InvalidArgument, wantMsg: "not a table"},
		{name: "table id 0", update: insert(&p4v1.TableEntry{Action: okA}), wantCode: codes.InvalidArgument},
		{name: "priority on exact table", update: insert(ent("ExactOne", 5, okA, k32)), wantCode: codes.InvalidArgument, wantMsg: "priority must be 0"},
		// LPM.
		{name: "lpm ok", update: insert(ent("LpmOne", 0, okA, lpm(1, canon(0x0a000000), 8))), wantCode: codes.OK},
		{name: "lpm prefix 0", update: insert(ent("LpmOne", 0, okA, lpm(1, canon(0), 0))), wantCode: codes.InvalidArgument, wantMsg: "omit the field"},
		{name: "lpm prefix too long", update: insert(ent("LpmOne", 0, okA, lpm(1, canon(0x0a000000), 33))), wantCode: codes.InvalidArgument},
		{name: "lpm bits beyond prefix", update: insert(ent("LpmOne", 0, okA, lpm(1, canon(0x0a000001), 8))), wantCode: codes.InvalidArgument, wantMsg: "beyond prefix /8"},
		{name: "lpm don't care omitted", update: insert(ent("LpmOne", 0, okA)), wantCode: codes.OK},
		// Ternary.
		{name: "ternary ok", update: insert(ent("TernaryOne", 10, okA, ternary(1, canon(0x0a000000), canon(0xff000000)))), wantCode: codes.OK},
		{name: "ternary zero mask", update: insert(ent("TernaryOne", 10, okA, ternary(1, canon(0), canon(0)))), wantCode: codes.InvalidArgument, wantMsg: "mask is zero"},
		{name: "ternary value outside mask", update: insert(ent("TernaryOne", 10, okA, ternary(1, canon(0x0a000001), canon(0xff000000)))), wantCode: codes.InvalidArgument, wantMsg: "outside mask"},
		{name: "ternary value longer than mask", update: insert(ent("TernaryOne", 10, okA, ternary(1, canon(0x100), canon(0xff)))), wantCode: codes.InvalidArgument},
		{name: "ternary without priority", update: insert(ent("TernaryOne", 0, okA, ternary(1, canon(1), canon(1)))), wantCode: codes.InvalidArgument, wantMsg: "positive priority"},
		{name: "ternary negative priority", update: insert(ent("TernaryOne", -1, okA, ternary(1, canon(1), canon(1)))), wantCode: codes.InvalidArgument},
		{name: "ternary all don't care", update: insert(ent("TernaryOne", 3, okA)), wantCode: codes.OK},
		// Range and optional.
		{name: "range ok", update: insert(ent("RangeOne", 1, okA, rangeM(1, canon(10), canon(20)))), wantCode: codes.OK},
		{name: "range low above high", update: insert(ent("RangeOne", 1, okA, rangeM(1, canon(20), canon(10)))), wantCode: codes.InvalidArgument, wantMsg: "above high"},
		{name: "range full", update: insert(ent("RangeOne", 1, okA, rangeM(1, canon(0), canon(0xffffffff)))), wantCode: codes.InvalidArgument, wantMsg: "covers every value"},
		{name: "optional ok", update: insert(ent("OptionalOne", 1, okA, optional(1, canon(7)))), wantCode: codes.OK},
		{name: "mixed kinds ok", update: insert(ent("MixMany", 1, act(actionC), exact(1, canon(1)), lpm(2, canon(0x0a00), 8), ternary(3, canon(0x5), canon(0xf)), exact(4, canon(1)))), wantCode: codes.OK},
		{name: "valid bit too wide", update: insert(ent("MixMany", 1, act(actionC), exact(1, canon(1)), exact(4, canon(2)))), wantCode: codes.InvalidArgument},
		// Actions (§9.1.2).
		{name: "insert without action", update: insert(ent("ExactOne", 0, nil, k32)), wantCode: codes.InvalidArgument, wantMsg: "without an action"},
		{name: "unknown action", update: insert(ent("ExactOne", 0, act(0x01000999), k32)), wantCode: codes.InvalidArgument},
		{name: "action not in table", update: insert(ent("ExactOne", 0, act(actionC), k32)), wantCode: codes.InvalidArgument, wantMsg: "not one of the table's actions"},
		{name: "param missing", update: insert(ent("ExactOne", 0, act(actionA), k32)), wantCode: codes.InvalidArgument, wantMsg: "is missing"},
		{name: "param extra", update: insert(ent("ExactOne", 0, act(actionA, canon(1), canon(2)), k32)), wantCode: codes.InvalidArgument, wantMsg: "no param with id 2"},
		{name: "param too wide", update: insert(ent("ExactOne", 0, act(actionB, canon(0x100)), k32)), wantCode: codes.InvalidArgument, wantMsg: "does not fit in 8 bits"},
		{name: "param empty", update: insert(ent("ExactOne", 0, act(actionB, nil), k32)), wantCode: codes.InvalidArgument},
		{name: "defaultonly action in entry", update: insert(ent("ExactOne", 0, act(noAction), k32)), wantCode: codes.PermissionDenied, wantMsg: "@defaultonly"},
		{name: "tableonly action as default", update: modify(dflt("ActionsAnnotationsTable", act(actionB, canon(1)))), wantCode: codes.PermissionDenied, wantMsg: "@tableonly"},
		{name: "direct action on indirect table", update: insert(ent("IndirectWS", 0, okA, k32)), wantCode: codes.InvalidArgument, wantMsg: "action profile"},
		{name: "empty table action", update: insert(ent("ExactOne", 0, &p4v1.TableAction{}, k32)), wantCode: codes.InvalidArgument},
		// Default entry (§9.1.3).
		{name: "default modify", update: modify(dflt("ExactOne", okA)), wantCode: codes.OK},
		{name: "default reset", update: modify(dflt("ExactOne", nil)), wantCode: codes.OK},
		{name: "default insert", update: insert(dflt("ExactOne", okA)), wantCode: codes.InvalidArgument, wantMsg: "can only be modified"},
		{name: "default delete", update: del(dflt("ExactOne", nil)), wantCode: codes.InvalidArgument},
		{name: "default with match", update: modify(with(dflt("ExactOne", okA), func(te *p4v1.TableEntry) { te.Match = []*p4v1.FieldMatch{k32} })), wantCode: codes.InvalidArgument},
		{name: "default with priority", update: modify(with(dflt("ExactOne", okA), func(te *p4v1.TableEntry) { te.Priority = 1 })), wantCode: codes.InvalidArgument},
		{name: "default with idle timeout", update: modify(with(dflt("IdleTimeoutTable", okA), func(te *p4v1.TableEntry) { te.IdleTimeoutNs = 1e9 })), wantCode: codes.InvalidArgument},
		{name: "const default action", update: modify(dflt("ConstDefaultActionTable", act(actionB, canon(1)))), wantCode: codes.PermissionDenied, wantMsg: "is const"},
		// Const tables (§9.1.4) and is_const.
		{name: "const table insert", update: insert(ent("ConstTable", 0, okA, exact(1, canon(1)))), wantCode: codes.PermissionDenied},
		{name: "const table delete", update: del(ent("ConstTable", 0, nil, exact(1, canon(1)))), wantCode: codes.PermissionDenied},
		{name: "is_const set", update: insert(with(ent("ExactOne", 0, okA, k32), func(te *p4v1.TableEntry) { te.IsConst = true })), wantCode: codes.InvalidArgument, wantMsg: "is_const"},
		// Idle timeout (§9.1.7).
		{name: "idle timeout ok", update: insert(with(ent("IdleTimeoutTable", 0, okA, exact(1, canon(1))), func(te *p4v1.TableEntry) { te.IdleTimeoutNs = 2e9 })), wantCode: codes.OK},
		{name: "idle timeout unsupported", update: insert(with(ent("ExactOne", 0, okA, k32), func(te *p4v1.TableEntry) { te.IdleTimeoutNs = 1e9 })), wantCode: codes.InvalidArgument, wantMsg: "does not support idle timeouts"},
		{name: "time_since_last_hit in write", update: insert(with(ent("IdleTimeoutTable", 0, okA, exact(1, canon(1))), func(te *p4v1.TableEntry) { te.TimeSinceLastHit = &p4v1.TableEntry_IdleTimeout{} })), wantCode: codes.InvalidArgument},
		// Existence (§12).
		{name: "duplicate insert", setup: []*p4v1.Update{insert(ent("ExactOne", 0, okA, k32))}, update: insert(ent("ExactOne", 0, okA, k32)), wantCode: codes.AlreadyExists, wantMsg: "already exists"},
		{name: "duplicate insert of padded key", setup: []*p4v1.Update{insert(ent("ExactOne", 0, okA, k32))}, update: insert(ent("ExactOne", 0, okA, exact(1, be(0x0a000001, 16)))), wantCode: codes.AlreadyExists},
		{name: "modify missing", update: modify(ent("ExactOne", 0, okA, k32)), wantCode: codes.NotFound},
		{name: "delete missing", update: del(ent("ExactOne", 0, nil, k32)), wantCode: codes.NotFound},
		{name: "modify ok", setup: []*p4v1.Update{insert(ent("ExactOne", 0, okA, k32))}, update: modify(ent("ExactOne", 0, act(actionB, canon(3)), k32)), wantCode: codes.OK},
		{name: "delete ignores the action", setup: []*p4v1.Update{insert(ent("ExactOne", 0, okA, k32))}, update: del(ent("ExactOne", 0, act(0x0bad), k32)), wantCode: codes.OK},
		{name: "same match other priority is another entry", setup: []*p4v1.Update{insert(ent("TernaryOne", 1, okA, ternary(1, canon(1), canon(1))))}, update: insert(ent("TernaryOne", 2, okA, ternary(1, canon(1), canon(1)))), wantCode: codes.OK},
		// Messages and other entities.
		{name: "update type unspecified", update: &p4v1.Update{Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: ent("ExactOne", 0, okA, k32)}}}, wantCode: codes.InvalidArgument},
		{name: "entity not set", update: &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{}}, wantCode: codes.InvalidArgument},
		{name: "direct counter data without direct counter", update: insert(with(ent("LpmOne", 0, okA, lpm(1, canon(0x0a000000), 8)), func(te *p4v1.TableEntry) { te.CounterData = &p4v1.CounterData{} })), wantCode: codes.InvalidArgument, wantMsg: "no direct counter"},
		{name: "string key ok", update: insert(ent("StringMatchKeyTable", 0, okA, exact(1, []byte("eth0")))), wantCode: codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.primary(t, 1)
			e.setPipeline(t, 1)
			for _, u := range tc.setup {
				if err := e.write(1, 0, u); err != nil {
					t.Fatalf("setup: %v", err)
				}
			}
			before := countEntries(t, e)
			u := proto.Clone(tc.update).(*p4v1.Update)
			err := e.write(1, 0, u)
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
			if after := countEntries(t, e); after != before {
				t.Errorf("a failed write changed the entry count from %d to %d", before, after)
			}
		})
	}
}
