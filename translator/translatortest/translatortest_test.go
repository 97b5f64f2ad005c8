package translatortest

import (
	"os"
	"testing"

	"github.com/p4tcd/p4tcd/translator"
)

func TestStepsOfExterns(t *testing.T) {
	info, err := os.ReadFile("../testdata/p4info/p4tcd-externs.p4info.txt")
	if err != nil {
		t.Fatal(err)
	}
	h := New(t, Pipeline{P4Info: string(info), Name: "externs"})
	steps := h.Steps(t,
		`type: INSERT entity { action_profile_member { action_profile_id: 0x11000001 member_id: 1 action { action_id: 0x01000004 } } }`,
		`type: INSERT entity { table_entry { table_id: 0x02000003 match { field_id: 1 exact { value: "\x01" } } action { action_profile_member_id: 1 } } }`,
		`type: MODIFY entity { counter_entry { counter_id: 0x12000001 index { index: 2 } data { packet_count: 3 } } }`,
	)
	if len(steps) != 3 || steps[0].Extern == nil || steps[0].Extern.Kind != translator.ExtInsertMember ||
		steps[1].Op == nil || steps[1].Op.Entry.Indirect.Member != 1 ||
		steps[2].Extern == nil || steps[2].Extern.Counter.Index != 2 || steps[2].Extern.Counter.Data.Packets != 3 {
		t.Fatalf("steps %+v", steps)
	}
	if ops := h.Ops(t, `type: DELETE entity { table_entry { table_id: 0x02000003 match { field_id: 1 exact { value: "\x01" } } } }`); len(ops) != 1 || ops[0].Kind != translator.OpDelete {
		t.Errorf("ops %+v", ops)
	}
}
