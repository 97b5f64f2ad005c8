package ebpfdp

import "testing"

// TestPoolSlotsNeverWrap: slots taken and given back through the shared
// pool word stay within 0..capacity, also when the datapath's release has
// just gone below zero and not yet taken it back (the word reads as a
// count above the capacity: p4tc_pool_release).
func TestPoolSlotsNeverWrap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		used      uint32
		op        func(*tableState) bool
		want      uint32
		wantTaken bool
	}{
		{name: "release at zero", used: 0, op: release, want: 0},
		{name: "release of a datapath release gone below zero", used: 0xffffffff, op: release, want: 0xffffffff},
		{name: "release", used: 3, op: release, want: 2},
		{name: "take", used: 3, op: (*tableState).takeSlot, want: 4, wantTaken: true},
		{name: "take when full", used: 4, op: (*tableState).takeSlot, want: 4},
		{name: "take while a datapath release is below zero", used: 0xffffffff, op: (*tableState).takeSlot, want: 0xffffffff},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := &tableState{poolMem: make([]byte, 8)}
			ts.setPoolCap(4)
			*ts.poolWord(1) = tc.used
			if got := tc.op(ts); got != tc.wantTaken {
				t.Errorf("taken %v, want %v", got, tc.wantTaken)
			}
			if _, used := ts.poolUsage(); used != tc.want {
				t.Errorf("used %d → %d, want %d", tc.used, used, tc.want)
			}
		})
	}
}

func release(ts *tableState) bool { ts.releaseSlot(); return false }
