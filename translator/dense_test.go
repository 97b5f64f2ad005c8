package translator

import "testing"

// TestDenseByID: a lookup through the dense slice finds what the map
// holds, for small ids, ids between them that have no value, and ids
// too large for the slice.
func TestDenseByID(t *testing.T) {
	for _, ids := range [][]uint32{nil, {1}, {1, 2, 3}, {3, 1 << 20}, {0x01000001, 7}, {1, 2, 100}} {
		m := map[uint32]*Param{}
		for _, id := range ids {
			m[id] = &Param{ID: id}
		}
		a := &Action{paramByID: m, paramDense: denseByID(m)}
		if len(a.paramDense) > 4*len(m)+16 {
			t.Errorf("ids %v: dense slice of %d", ids, len(a.paramDense))
		}
		for _, id := range []uint32{0, 1, 2, 3, 4, 7, 99, 100, 101, 1 << 20, 0x01000001, ^uint32(0)} {
			if got, want := a.Param(id), m[id]; got != want {
				t.Errorf("ids %v: Param(%d) = %v, want %v", ids, id, got, want)
			}
		}
	}
}

// TestActionRef: the scan of a table's action ids finds what
// Table.Actions holds, and nothing for other ids, in every table of the
// test pipelines.
func TestActionRef(t *testing.T) {
	for _, p := range viewPipelines(t) {
		for _, tbl := range p.TableOrder {
			ids := []uint32{0, 1, ^uint32(0)}
			for id := range p.Actions {
				ids = append(ids, id, id+1)
			}
			for _, id := range ids {
				if got, want := tbl.actionRef(id), tbl.Actions[id]; got != want {
					t.Errorf("table %s: actionRef(%#x) = %v, want %v", tbl.Name, id, got, want)
				}
			}
		}
	}
}
