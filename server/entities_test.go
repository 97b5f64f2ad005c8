package server

import (
	"encoding/binary"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

func tableID(e *testEnv, name string) uint32 {
	for _, t := range e.info.GetTables() {
		if t.GetPreamble().GetName() == name {
			return t.GetPreamble().GetId()
		}
	}
	panic("no table " + name)
}

func actionID(e *testEnv, name string) uint32 {
	for _, a := range e.info.GetActions() {
		if a.GetPreamble().GetName() == name {
			return a.GetPreamble().GetId()
		}
	}
	panic("no action " + name)
}

// be returns v as a big-endian bytestring of n bytes.
func be(v uint64, n int) []byte {
	b := make([]byte, max(n, 8))
	binary.BigEndian.PutUint64(b[len(b)-8:], v)
	return b[len(b)-n:]
}

// canon returns v as a canonical (shortest) bytestring.
func canon(v uint64) []byte {
	b := be(v, 8)
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

func exact(id uint32, v []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}
}

func lpm(id uint32, v []byte, plen int32) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v, PrefixLen: plen}}}
}

func ternary(id uint32, v, m []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v, Mask: m}}}
}

func rangeM(id uint32, lo, hi []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: lo, High: hi}}}
}

func optional(id uint32, v []byte) *p4v1.FieldMatch {
	return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: v}}}
}

func act(id uint32, params ...[]byte) *p4v1.TableAction {
	a := &p4v1.Action{ActionId: id}
	for i, p := range params {
		a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: p})
	}
	return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
}

// exactEntry is an entry of a one-field exact table with a one-param action.
func exactEntry(e *testEnv, table string, key uint64, action string, param uint64) *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: tableID(e, table), Match: []*p4v1.FieldMatch{exact(1, canon(key))},
		Action: act(actionID(e, action), canon(param))}
}

func insert(te *p4v1.TableEntry) *p4v1.Update { return upd(p4v1.Update_INSERT, te) }
func modify(te *p4v1.TableEntry) *p4v1.Update { return upd(p4v1.Update_MODIFY, te) }
func del(te *p4v1.TableEntry) *p4v1.Update    { return upd(p4v1.Update_DELETE, te) }

func upd(t p4v1.Update_Type, te *p4v1.TableEntry) *p4v1.Update {
	return &p4v1.Update{Type: t, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
}

func tableRead(te *p4v1.TableEntry) *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}
}

// countEntries reads every entry of the device.
func countEntries(t testing.TB, e *testEnv) int {
	t.Helper()
	ents, _, err := e.readAll(t, tableRead(&p4v1.TableEntry{}))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func sortStrings(ss []string) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && ss[j] < ss[j-1]; j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}
