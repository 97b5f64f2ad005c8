package tcbackend

import "testing"

// The P4TC uAPI as typed by hand from its headers, for tests only. These
// numbers are the independent source the golden messages are built from:
// they were copied by reading the enums, never from abi.go, and cross-checked
// by compiling the headers and printing the values.
//
// Sources:
//   - series 1: p4tc-dev/linux-p4tc-pub commit 31cbe0790,
//     include/uapi/linux/p4tc.h, rtnetlink.h, pkt_cls.h, tc_act/tc_p4.h;
//   - LK13: same repository, tag release-v13;
//   - v17: tammela/iproute2-p4tc-pub branch master-v17-rc6 (commit
//     d4427b7e), include/uapi/linux/p4tc.h and rtnetlink.h.
//
// The names are the headers' own, to make them easy to check.
const (
	// rtnetlink.h
	RTM_CREATEP4TEMPLATE = 124
	RTM_DELP4TEMPLATE    = 125
	RTM_GETP4TEMPLATE    = 126
	RTM_UPDATEP4TEMPLATE = 127
	RTM_P4TC_CREATE      = 128
	RTM_P4TC_DEL         = 129
	RTM_P4TC_GET         = 130
	RTM_P4TC_UPDATE      = 131
	RTNLGRP_TC           = 4  // enum rtnetlink_groups, 5th
	RTNLGRP_P4TC_V17     = 34 // after RTNLGRP_STATS (33) in the v17 header

	// linux/netlink.h
	NLM_F_REQUEST = 0x01
	NLM_F_ACK     = 0x04
	NLM_F_ROOT    = 0x100
	NLM_F_MATCH   = 0x200
	NLM_F_EXCL    = 0x200
	NLM_F_CREATE  = 0x400
	NLA_F_NESTED  = 1 << 15

	// p4tc.h: root, object, common
	P4TC_ROOT               = 1
	P4TC_ROOT_PNAME         = 2
	P4TC_OBJ_PIPELINE       = 1
	P4TC_OBJ_ACT            = 2
	P4TC_OBJ_TABLE          = 3
	P4TC_OBJ_RUNTIME_TABLE  = 1
	P4TC_PATH               = 1
	P4TC_PARAMS             = 2
	P4TC_PIPELINE_NUMTABLES = 1
	P4TC_PIPELINE_STATE     = 2
	P4TC_STATE_READY        = 1
	P4TC_MSGBATCH_SIZE      = 16
	P4TC_TABLE_TYPE_EXACT   = 1
	P4TC_TABLE_TYPE_LPM     = 2
	P4TC_TABLE_TYPE_TERNARY = 3

	// p4tc.h: types
	P4TC_T_U8       = 1
	P4TC_T_U16      = 2
	P4TC_T_U32      = 3
	P4TC_T_U64      = 4
	P4TC_T_S8       = 6
	P4TC_T_MACADDR  = 10
	P4TC_T_IPV4ADDR = 11
	P4TC_T_BE16     = 12
	P4TC_T_BE32     = 13
	P4TC_T_U128     = 15
	P4TC_T_DEV      = 18

	// p4tc.h: table template
	P4TC_TABLE_DEFAULT_ACTION             = 1
	P4TC_TABLE_DEFAULT_ACTION_NOACTION    = 2
	P4TC_TABLE_DEFAULT_ACTION_PERMISSIONS = 3
	P4TC_TABLE_ACTS_DEFAULT_ONLY          = 0
	P4TC_TABLE_ACTS_TABLE_ONLY            = 1
	P4TC_TABLE_ACT_FLAGS                  = 1
	P4TC_TABLE_ACT_NAME                   = 2
	P4TC_TABLE_NAME                       = 1
	P4TC_TABLE_KEYSZ                      = 2
	P4TC_TABLE_MAX_ENTRIES                = 3
	P4TC_TABLE_MAX_MASKS                  = 4
	P4TC_TABLE_PERMISSIONS                = 6
	P4TC_TABLE_TYPE                       = 7
	P4TC_TABLE_DEFAULT_HIT                = 8
	P4TC_TABLE_DEFAULT_MISS               = 9
	P4TC_TABLE_ACTS_LIST                  = 10
	P4TC_TABLE_NUM_TIMER_PROFILES         = 11
	P4TC_TIMER_PROFILE_ID                 = 1
	P4TC_TIMER_PROFILE_AGING              = 2

	// p4tc.h: actions and their parameters
	P4TC_ACT_NAME                     = 1
	P4TC_ACT_PARMS                    = 2
	P4TC_ACT_OPT                      = 3
	P4TC_ACT_ACTIVE                   = 5
	P4TC_ACT_PARAMS_VALUE_RAW         = 1
	P4TC_ACT_PARAMS_TYPE_BITEND       = 1
	P4TC_ACT_PARAMS_TYPE_CONTAINER_ID = 2
	P4TC_ACT_PARAMS_NAME              = 1
	P4TC_ACT_PARAMS_ID                = 2
	P4TC_ACT_PARAMS_TYPE              = 3
	P4TC_ACT_PARAMS_VALUE             = 5
	P4TC_ACT_PARAMS_MASK              = 6

	// p4tc.h: runtime table attributes
	P4TC_ENTRY_TBL_ATTRS_DEFAULT_HIT   = 1
	P4TC_ENTRY_TBL_ATTRS_DEFAULT_MISS  = 2
	P4TC_ENTRY_TBL_ATTRS_PERMISSIONS   = 3
	P4TC_ENTRY_TBL_ATTRS_TIMER_PROFILE = 4
	P4TC_ENTITY_KERNEL                 = 1
	P4TC_ENTITY_TC                     = 2
	P4TC_ENTITY_TIMER                  = 3

	// pkt_cls.h
	TCA_ACT_KIND           = 1
	TCA_ACT_OPTIONS        = 2
	TCA_ACT_FLAGS          = 7
	TCA_ACT_FLAGS_SKIP_HW  = 1 << 1
	TCA_ACT_FLAGS_SKIP_SW  = 1 << 2
	TC_ACT_PIPE            = 3
	sizeofTcActP4          = 20 // struct tc_act_p4 { tc_gen; }: 5 x 32 bits
	sizeofP4TCTableEntryTM = 32 // struct p4tc_table_entry_tm
)

// entryAttrs are the table entry attributes (enum P4TC_ENTRY_*), the part
// of the uAPI that moved between releases.
type entryAttrs struct {
	TBLNAME, KEY_BLOB, MASK_BLOB, PRIO, ACT, TM, WHODUNNIT uint16
	// series 1: CREATE_/UPDATE_/DELETE_WHODUNNIT; later:
	// WHO_CREATED_ENT, WHO_UPDATED_ENT, WHO_DELETED_ENT.
	WHO_CREATED, WHO_UPDATED, WHO_DELETED uint16
	// LK13 and v17 only (0 in series 1).
	WHO_CREATED_NAME, WHO_CREATED_PID                                                  uint16
	PERMISSIONS, TBL_ATTRS, TMPL_CREATED, DYNAMIC, AGING, PROFILE_ID, FILTER, PAD, MAX uint16
}

var (
	uapiEntrySeries1 = entryAttrs{
		TBLNAME: 1, KEY_BLOB: 2, MASK_BLOB: 3, PRIO: 4, ACT: 5, TM: 6, WHODUNNIT: 7,
		WHO_CREATED: 8, WHO_UPDATED: 9, WHO_DELETED: 10,
		PERMISSIONS: 11, TBL_ATTRS: 12, TMPL_CREATED: 13, DYNAMIC: 14, AGING: 15, PROFILE_ID: 16, FILTER: 17, PAD: 18, MAX: 18,
	}
	uapiEntryLK13 = entryAttrs{
		TBLNAME: 1, KEY_BLOB: 2, MASK_BLOB: 3, PRIO: 4, ACT: 5, TM: 6, WHODUNNIT: 7,
		WHO_CREATED: 8, WHO_CREATED_NAME: 9, WHO_CREATED_PID: 10,
		WHO_UPDATED: 11, WHO_DELETED: 14,
		PERMISSIONS: 17, TBL_ATTRS: 18, TMPL_CREATED: 19, DYNAMIC: 20, AGING: 21, PROFILE_ID: 22, FILTER: 23, PAD: 25, MAX: 25,
	}
	// v17 keeps LK13's entry numbering (P4TC_ENTRY_EXTERNS replaces
	// P4TC_ENTRY_COUNTER at 24).
	uapiEntryV17 = uapiEntryLK13
)

// uapiFor returns the hand-typed entry attributes and event group of an ABI.
func uapiFor(a ABI) (entryAttrs, uint32, uint16) {
	switch a {
	case ABISeries1:
		return uapiEntrySeries1, RTNLGRP_TC, 2
	case ABILK13:
		return uapiEntryLK13, RTNLGRP_TC, 4
	}
	return uapiEntryV17, RTNLGRP_P4TC_V17, 5
}

// TestABITables checks every ABI table against the hand-typed headers.
func TestABITables(t *testing.T) {
	for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
		t.Run(abi.String(), func(t *testing.T) {
			a, err := tableFor(abi)
			if err != nil {
				t.Fatal(err)
			}
			u, group, rootMax := uapiFor(abi)
			type pair struct {
				name      string
				got, want uint64
			}
			checks := []pair{
				{"RTM_CREATEP4TEMPLATE", uint64(a.msgCreateTemplate), RTM_CREATEP4TEMPLATE},
				{"RTM_DELP4TEMPLATE", uint64(a.msgDelTemplate), RTM_DELP4TEMPLATE},
				{"RTM_GETP4TEMPLATE", uint64(a.msgGetTemplate), RTM_GETP4TEMPLATE},
				{"RTM_UPDATEP4TEMPLATE", uint64(a.msgUpdateTemplate), RTM_UPDATEP4TEMPLATE},
				{"RTM_P4TC_CREATE", uint64(a.msgCreate), RTM_P4TC_CREATE},
				{"RTM_P4TC_DEL", uint64(a.msgDel), RTM_P4TC_DEL},
				{"RTM_P4TC_GET", uint64(a.msgGet), RTM_P4TC_GET},
				{"RTM_P4TC_UPDATE", uint64(a.msgUpdate), RTM_P4TC_UPDATE},
				{"event group", uint64(a.eventGroup), uint64(group)},
				{"P4TC_ROOT_MAX", uint64(a.rootMax), uint64(rootMax)},
				{"P4TC_ROOT", uint64(a.root), P4TC_ROOT},
				{"P4TC_ROOT_PNAME", uint64(a.rootPName), P4TC_ROOT_PNAME},
				{"P4TC_OBJ_PIPELINE", uint64(a.objPipeline), P4TC_OBJ_PIPELINE},
				{"P4TC_OBJ_ACT", uint64(a.objAction), P4TC_OBJ_ACT},
				{"P4TC_OBJ_TABLE", uint64(a.objTable), P4TC_OBJ_TABLE},
				{"P4TC_OBJ_RUNTIME_TABLE", uint64(a.objRuntimeTable), P4TC_OBJ_RUNTIME_TABLE},
				{"P4TC_PATH", uint64(a.path), P4TC_PATH},
				{"P4TC_PARAMS", uint64(a.params), P4TC_PARAMS},
				{"P4TC_TABLE_NAME", uint64(a.tableName), P4TC_TABLE_NAME},
				{"P4TC_TABLE_ACTS_LIST", uint64(a.tableActsList), P4TC_TABLE_ACTS_LIST},
				{"P4TC_TABLE_NUM_TIMER_PROFILES", uint64(a.tableNumTimerProfiles), P4TC_TABLE_NUM_TIMER_PROFILES},
				{"P4TC_ENTRY_TBLNAME", uint64(a.entryTblName), uint64(u.TBLNAME)},
				{"P4TC_ENTRY_KEY_BLOB", uint64(a.entryKeyBlob), uint64(u.KEY_BLOB)},
				{"P4TC_ENTRY_MASK_BLOB", uint64(a.entryMaskBlob), uint64(u.MASK_BLOB)},
				{"P4TC_ENTRY_PRIO", uint64(a.entryPrio), uint64(u.PRIO)},
				{"P4TC_ENTRY_ACT", uint64(a.entryAct), uint64(u.ACT)},
				{"P4TC_ENTRY_TM", uint64(a.entryTM), uint64(u.TM)},
				{"P4TC_ENTRY_WHODUNNIT", uint64(a.entryWhodunnit), uint64(u.WHODUNNIT)},
				{"who created", uint64(a.entryWhoCreated), uint64(u.WHO_CREATED)},
				{"who updated", uint64(a.entryWhoUpdated), uint64(u.WHO_UPDATED)},
				{"who deleted", uint64(a.entryWhoDeleted), uint64(u.WHO_DELETED)},
				{"who created (name)", uint64(a.entryWhoCreatedName), uint64(u.WHO_CREATED_NAME)},
				{"who created (pid)", uint64(a.entryWhoCreatedPID), uint64(u.WHO_CREATED_PID)},
				{"P4TC_ENTRY_PERMISSIONS", uint64(a.entryPermissions), uint64(u.PERMISSIONS)},
				{"P4TC_ENTRY_TBL_ATTRS", uint64(a.entryTblAttrs), uint64(u.TBL_ATTRS)},
				{"P4TC_ENTRY_TMPL_CREATED", uint64(a.entryTmplCreated), uint64(u.TMPL_CREATED)},
				{"P4TC_ENTRY_DYNAMIC", uint64(a.entryDynamic), uint64(u.DYNAMIC)},
				{"P4TC_ENTRY_AGING", uint64(a.entryAging), uint64(u.AGING)},
				{"P4TC_ENTRY_PROFILE_ID", uint64(a.entryProfileID), uint64(u.PROFILE_ID)},
				{"P4TC_ENTRY_FILTER", uint64(a.entryFilter), uint64(u.FILTER)},
				{"P4TC_ENTRY_PAD", uint64(a.entryPad), uint64(u.PAD)},
				{"P4TC_ENTRY_MAX", uint64(a.entryMax), uint64(u.MAX)},
				{"TCA_ACT_FLAGS", uint64(a.tcaActFlags), TCA_ACT_FLAGS},
				{"TCA_ACT_FLAGS_SKIP_SW", uint64(a.tcaActFlagSkipSW), TCA_ACT_FLAGS_SKIP_SW},
				{"TCA_ACT_FLAGS_SKIP_HW", uint64(a.tcaActFlagSkipHW), TCA_ACT_FLAGS_SKIP_HW},
				{"P4TC_T_MACADDR", uint64(a.typeMAC), P4TC_T_MACADDR},
				{"P4TC_T_DEV", uint64(a.typeDev), P4TC_T_DEV},
				{"P4TC_T_U128", uint64(a.typeU128), P4TC_T_U128},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %d, header says %d", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestParseABI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ABI
		bad  bool
	}{
		{"auto", ABIAuto, false}, {"", ABIAuto, false}, {"series1", ABISeries1, false}, {"v13", ABISeries1, false},
		{"LK13", ABILK13, false}, {"v17", ABIV17, false}, {"v16", ABIAuto, true},
	} {
		got, err := ParseABI(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseABI(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
