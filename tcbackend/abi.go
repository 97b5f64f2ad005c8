package tcbackend

import (
	"fmt"
	"strings"
)

// ABI names a P4TC kernel ABI: the numbering of P4TC's rtnetlink message
// types, attributes and multicast groups. P4TC never merged upstream, and its
// out-of-tree releases renumbered attributes, so p4tcd must speak the one
// the running kernel was built with.
type ABI uint8

const (
	// ABIAuto asks New to detect the ABI by probing the kernel.
	ABIAuto ABI = iota
	// ABISeries1 is the uAPI of the "series 1" patches as posted up to v13
	// (p4tc-dev/linux-p4tc-pub, commit 31cbe0790): entries name who
	// created, updated and deleted them with P4TC_ENTRY_*_WHODUNNIT;
	// events go to RTNLGRP_TC.
	ABISeries1
	// ABILK13 is the out-of-tree v13 branch (linux-p4tc-pub master-v13,
	// tag release-v13): entries also carry the name and pid of the process
	// that changed them, which shifts P4TC_ENTRY_PERMISSIONS and every later
	// entry attribute; root attributes gain COUNT and FLAGS.
	ABILK13
	// ABIV17 is the v17 release candidates (uAPI headers as synced into
	// iproute2-p4tc, branch master-v17-rc6): LK13's numbering plus
	// P4TC_ROOT_SUBSCRIBE, and events on the dedicated RTNLGRP_P4TC group.
	ABIV17
)

var abiNames = [...]string{"auto", "series1", "lk13", "v17"}

// String returns the name ParseABI takes.
func (a ABI) String() string {
	if int(a) < len(abiNames) {
		return abiNames[a]
	}
	return fmt.Sprintf("ABI(%d)", uint8(a))
}

// ParseABI parses an ABI name as the --p4tc-abi flag takes it: auto,
// series1 (also "s1", "v13"), lk13, or v17.
func ParseABI(s string) (ABI, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return ABIAuto, nil
	case "series1", "s1", "v13":
		return ABISeries1, nil
	case "lk13":
		return ABILK13, nil
	case "v17":
		return ABIV17, nil
	}
	return ABIAuto, fmt.Errorf("parse P4TC ABI %q: want auto, series1, lk13 or v17: %w", s, ErrUnknownABI)
}

// abiTable holds every number p4tcd puts on the wire for one ABI. The
// encoder and decoder read numbers only from here, so that an ABI is one
// table, reviewable line by line against its header. Names follow the uAPI
// (include/uapi/linux/p4tc.h, rtnetlink.h, pkt_cls.h).
type abiTable struct {
	abi ABI

	// rtnetlink message types (rtnetlink.h).
	msgCreateTemplate, msgDelTemplate, msgGetTemplate, msgUpdateTemplate uint16
	msgCreate, msgDel, msgGet, msgUpdate                                 uint16
	// eventGroup is the multicast group of table entry events.
	eventGroup uint32

	// struct p4tcmsg.obj.
	objPipeline, objAction, objTable uint32
	objRuntimeTable                  uint32

	// Root attributes (P4TC_ROOT_*); rootMax is P4TC_ROOT_MAX.
	root, rootPName, rootMax uint16
	// Per-object attributes (P4TC_PATH, P4TC_PARAMS).
	path, params uint16

	// Pipeline attributes (P4TC_PIPELINE_*).
	pipelineNumTables, pipelineState uint16
	stateReady                       uint8

	// Action attributes (P4TC_ACT_*).
	actName, actParms, actOpt, actTM, actActive, actNumPrealloc uint16
	// Action parameter attributes (P4TC_ACT_PARAMS_*).
	paramName, paramID, paramType, paramFlags, paramValue, paramMask uint16
	paramTypeBitend, paramTypeContainer                              uint16
	paramValueRaw                                                    uint16

	// Table template attributes (P4TC_TABLE_*).
	tableName, tableKeySz, tableMaxEntries, tableMaxMasks, tableNumEntries uint16
	tablePermissions, tableType, tableDefaultHit, tableDefaultMiss         uint16
	tableActsList, tableNumTimerProfiles, tableTimerProfiles               uint16
	// Table action list (P4TC_TABLE_ACT_*) and its flag bit numbers
	// (P4TC_TABLE_ACTS_*).
	tableActFlags, tableActName               uint16
	tableActDefaultOnlyBit, tableActTableOnly uint8
	// Default action attributes (P4TC_TABLE_DEFAULT_ACTION_*).
	defaultAction, defaultNoAction, defaultPermissions uint16
	// Timer profile attributes (P4TC_TIMER_PROFILE_*).
	timerProfileID, timerProfileAging uint16
	// Table types (P4TC_TABLE_TYPE_*).
	tableTypeExact, tableTypeLPM, tableTypeTernary uint8

	// Table entry attributes (P4TC_ENTRY_*): the part that moves between
	// ABIs. whoCreated, whoUpdated and whoDeleted are the u8 entity
	// attributes (P4TC_ENTRY_{CREATE,UPDATE,DELETE}_WHODUNNIT in series 1,
	// P4TC_ENTRY_WHO_{CREATED,UPDATED,DELETED}_ENT later); whoCreatedName
	// and its pid exist from LK13 on (0: absent).
	entryTblName, entryKeyBlob, entryMaskBlob, entryPrio, entryAct  uint16
	entryTM, entryWhodunnit                                         uint16
	entryWhoCreated, entryWhoUpdated, entryWhoDeleted               uint16
	entryWhoCreatedName, entryWhoCreatedPID                         uint16
	entryPermissions, entryTblAttrs, entryTmplCreated               uint16
	entryDynamic, entryAging, entryProfileID, entryFilter, entryPad uint16
	entryMax                                                        uint16
	// Runtime table attributes (P4TC_ENTRY_TBL_ATTRS_*).
	tblAttrsDefaultHit, tblAttrsDefaultMiss, tblAttrsPermissions, tblAttrsTimerProfile uint16

	// Entities (P4TC_ENTITY_*).
	entityKernel, entityTC, entityTimer uint8

	// P4 types (P4TC_T_*).
	typeU8, typeU16, typeU32, typeU64, typeU128     uint32
	typeS8, typeS16, typeS32, typeS64, typeS128     uint32
	typeMAC, typeIPv4, typeBE16, typeBE32, typeBE64 uint32
	typeBool, typeDev                               uint32

	// Generic tc action attributes (pkt_cls.h TCA_ACT_*).
	tcaActKind, tcaActOptions, tcaActFlags uint16
	tcaActFlagSkipHW, tcaActFlagSkipSW     uint32
	// tc action control (pkt_cls.h TC_ACT_PIPE): the verdict iproute2
	// gives a P4 action when none is named.
	tcActPipe int32

	// Limits (p4tc.h and include/net/p4tc.h).
	msgBatch         int    // P4TC_MSGBATCH_SIZE
	maxKeySz         int    // P4TC_MAX_KEYSZ, bits
	nameSize         int    // P4TC_TMPL_NAMSZ, with the NUL
	actKindSize      int    // ACTNAMSIZ (include/net/act_api.h), with the NUL
	maxParams        int    // P4TC_ACT_MAX_NUM_PARAMS
	maxTimerProfiles uint32 // P4TC_MAX_NUM_TIMER_PROFILES
	maxAgingMs       uint64 // P4TC_MAX_T_AGING_MS
	profileAgingStep uint64 // P4TC_TIMER_PROFILE_ZERO_AGING_MS
	defaultProfiles  uint32 // P4TC_DEFAULT_NUM_TIMER_PROFILES
}

// abiSeries1: include/uapi/linux/p4tc.h and rtnetlink.h of linux-p4tc-pub at
// commit 31cbe0790 (series 1, v13).
var abiSeries1 = abiTable{
	abi:               ABISeries1,
	msgCreateTemplate: 124, msgDelTemplate: 125, msgGetTemplate: 126, msgUpdateTemplate: 127,
	msgCreate: 128, msgDel: 129, msgGet: 130, msgUpdate: 131,
	eventGroup: 4, // RTNLGRP_TC

	objPipeline: 1, objAction: 2, objTable: 3,
	objRuntimeTable: 1,

	root: 1, rootPName: 2, rootMax: 2,
	path: 1, params: 2,

	pipelineNumTables: 1, pipelineState: 2, stateReady: 1,

	actName: 1, actParms: 2, actOpt: 3, actTM: 4, actActive: 5, actNumPrealloc: 6,
	paramName: 1, paramID: 2, paramType: 3, paramFlags: 4, paramValue: 5, paramMask: 6,
	paramTypeBitend: 1, paramTypeContainer: 2,
	paramValueRaw: 1,

	tableName: 1, tableKeySz: 2, tableMaxEntries: 3, tableMaxMasks: 4, tableNumEntries: 5,
	tablePermissions: 6, tableType: 7, tableDefaultHit: 8, tableDefaultMiss: 9,
	tableActsList: 10, tableNumTimerProfiles: 11, tableTimerProfiles: 12,
	tableActFlags: 1, tableActName: 2,
	tableActDefaultOnlyBit: 0, tableActTableOnly: 1,
	defaultAction: 1, defaultNoAction: 2, defaultPermissions: 3,
	timerProfileID: 1, timerProfileAging: 2,
	tableTypeExact: 1, tableTypeLPM: 2, tableTypeTernary: 3,

	entryTblName: 1, entryKeyBlob: 2, entryMaskBlob: 3, entryPrio: 4, entryAct: 5,
	entryTM: 6, entryWhodunnit: 7,
	entryWhoCreated: 8, entryWhoUpdated: 9, entryWhoDeleted: 10,
	entryWhoCreatedName: 0, entryWhoCreatedPID: 0,
	entryPermissions: 11, entryTblAttrs: 12, entryTmplCreated: 13,
	entryDynamic: 14, entryAging: 15, entryProfileID: 16, entryFilter: 17, entryPad: 18,
	entryMax:           18,
	tblAttrsDefaultHit: 1, tblAttrsDefaultMiss: 2, tblAttrsPermissions: 3, tblAttrsTimerProfile: 4,

	entityKernel: 1, entityTC: 2, entityTimer: 3,

	typeU8: 1, typeU16: 2, typeU32: 3, typeU64: 4, typeU128: 15,
	typeS8: 6, typeS16: 7, typeS32: 8, typeS64: 9, typeS128: 16,
	typeMAC: 10, typeIPv4: 11, typeBE16: 12, typeBE32: 13, typeBE64: 14,
	typeBool: 17, typeDev: 18,

	tcaActKind: 1, tcaActOptions: 2, tcaActFlags: 7,
	tcaActFlagSkipHW: 1 << 1, tcaActFlagSkipSW: 1 << 2,
	tcActPipe: 3,

	msgBatch: 16, maxKeySz: 512, nameSize: 32, actKindSize: 64, maxParams: 16,
	maxTimerProfiles: 16, maxAgingMs: 864000000, profileAgingStep: 30000, defaultProfiles: 4,
}

// abiLK13: include/uapi/linux/p4tc.h and rtnetlink.h of linux-p4tc-pub at tag
// release-v13 (branch master-v13).
var abiLK13 = abiTable{
	abi:               ABILK13,
	msgCreateTemplate: 124, msgDelTemplate: 125, msgGetTemplate: 126, msgUpdateTemplate: 127,
	msgCreate: 128, msgDel: 129, msgGet: 130, msgUpdate: 131,
	eventGroup: 4, // RTNLGRP_TC

	objPipeline: 1, objAction: 2, objTable: 3,
	objRuntimeTable: 1,

	root: 1, rootPName: 2, rootMax: 4,
	path: 1, params: 2,

	pipelineNumTables: 1, pipelineState: 2, stateReady: 1,

	actName: 1, actParms: 2, actOpt: 3, actTM: 4, actActive: 5, actNumPrealloc: 6,
	paramName: 1, paramID: 2, paramType: 3, paramFlags: 4, paramValue: 5, paramMask: 6,
	paramTypeBitend: 1, paramTypeContainer: 2,
	paramValueRaw: 1,

	tableName: 1, tableKeySz: 2, tableMaxEntries: 3, tableMaxMasks: 4, tableNumEntries: 5,
	tablePermissions: 6, tableType: 7, tableDefaultHit: 8, tableDefaultMiss: 9,
	tableActsList: 10, tableNumTimerProfiles: 11, tableTimerProfiles: 12,
	tableActFlags: 1, tableActName: 2,
	tableActDefaultOnlyBit: 0, tableActTableOnly: 1,
	defaultAction: 1, defaultNoAction: 2, defaultPermissions: 3,
	timerProfileID: 1, timerProfileAging: 2,
	tableTypeExact: 1, tableTypeLPM: 2, tableTypeTernary: 3,

	entryTblName: 1, entryKeyBlob: 2, entryMaskBlob: 3, entryPrio: 4, entryAct: 5,
	entryTM: 6, entryWhodunnit: 7,
	entryWhoCreated: 8, entryWhoUpdated: 11, entryWhoDeleted: 14,
	entryWhoCreatedName: 9, entryWhoCreatedPID: 10,
	entryPermissions: 17, entryTblAttrs: 18, entryTmplCreated: 19,
	entryDynamic: 20, entryAging: 21, entryProfileID: 22, entryFilter: 23, entryPad: 25,
	entryMax:           25,
	tblAttrsDefaultHit: 1, tblAttrsDefaultMiss: 2, tblAttrsPermissions: 3, tblAttrsTimerProfile: 4,

	entityKernel: 1, entityTC: 2, entityTimer: 3,

	typeU8: 1, typeU16: 2, typeU32: 3, typeU64: 4, typeU128: 15,
	typeS8: 6, typeS16: 7, typeS32: 8, typeS64: 9, typeS128: 16,
	typeMAC: 10, typeIPv4: 11, typeBE16: 12, typeBE32: 13, typeBE64: 14,
	typeBool: 17, typeDev: 18,

	tcaActKind: 1, tcaActOptions: 2, tcaActFlags: 7,
	tcaActFlagSkipHW: 1 << 1, tcaActFlagSkipSW: 1 << 2,
	tcActPipe: 3,

	msgBatch: 16, maxKeySz: 512, nameSize: 32, actKindSize: 64, maxParams: 16,
	maxTimerProfiles: 16, maxAgingMs: 864000000, profileAgingStep: 30000, defaultProfiles: 4,
}

// abiV17: include/uapi/linux/p4tc.h and rtnetlink.h as synced into
// iproute2-p4tc (tammela/iproute2-p4tc-pub, branch master-v17-rc6, commit
// d4427b7e). Entry numbering is LK13's. RTNLGRP_P4TC is 34 in that
// header; a kernel rebased onto a mainline that added groups after
// RTNLGRP_STATS would number it differently (Options.EventGroup).
var abiV17 = abiTable{
	abi:               ABIV17,
	msgCreateTemplate: 124, msgDelTemplate: 125, msgGetTemplate: 126, msgUpdateTemplate: 127,
	msgCreate: 128, msgDel: 129, msgGet: 130, msgUpdate: 131,
	eventGroup: 34, // RTNLGRP_P4TC

	objPipeline: 1, objAction: 2, objTable: 3,
	objRuntimeTable: 1,

	root: 1, rootPName: 2, rootMax: 5,
	path: 1, params: 2,

	pipelineNumTables: 1, pipelineState: 2, stateReady: 1,

	actName: 1, actParms: 2, actOpt: 3, actTM: 4, actActive: 5, actNumPrealloc: 6,
	paramName: 1, paramID: 2, paramType: 3, paramFlags: 4, paramValue: 5, paramMask: 6,
	paramTypeBitend: 1, paramTypeContainer: 2,
	paramValueRaw: 1,

	tableName: 1, tableKeySz: 2, tableMaxEntries: 3, tableMaxMasks: 4, tableNumEntries: 5,
	tablePermissions: 6, tableType: 7, tableDefaultHit: 8, tableDefaultMiss: 9,
	tableActsList: 10, tableNumTimerProfiles: 11, tableTimerProfiles: 12,
	tableActFlags: 1, tableActName: 2,
	tableActDefaultOnlyBit: 0, tableActTableOnly: 1,
	defaultAction: 1, defaultNoAction: 2, defaultPermissions: 3,
	timerProfileID: 1, timerProfileAging: 2,
	tableTypeExact: 1, tableTypeLPM: 2, tableTypeTernary: 3,

	entryTblName: 1, entryKeyBlob: 2, entryMaskBlob: 3, entryPrio: 4, entryAct: 5,
	entryTM: 6, entryWhodunnit: 7,
	entryWhoCreated: 8, entryWhoUpdated: 11, entryWhoDeleted: 14,
	entryWhoCreatedName: 9, entryWhoCreatedPID: 10,
	entryPermissions: 17, entryTblAttrs: 18, entryTmplCreated: 19,
	entryDynamic: 20, entryAging: 21, entryProfileID: 22, entryFilter: 23, entryPad: 25,
	entryMax:           25,
	tblAttrsDefaultHit: 1, tblAttrsDefaultMiss: 2, tblAttrsPermissions: 3, tblAttrsTimerProfile: 4,

	entityKernel: 1, entityTC: 2, entityTimer: 3,

	typeU8: 1, typeU16: 2, typeU32: 3, typeU64: 4, typeU128: 15,
	typeS8: 6, typeS16: 7, typeS32: 8, typeS64: 9, typeS128: 16,
	typeMAC: 10, typeIPv4: 11, typeBE16: 12, typeBE32: 13, typeBE64: 14,
	typeBool: 17, typeDev: 18,

	tcaActKind: 1, tcaActOptions: 2, tcaActFlags: 7,
	tcaActFlagSkipHW: 1 << 1, tcaActFlagSkipSW: 1 << 2,
	tcActPipe: 3,

	msgBatch: 16, maxKeySz: 512, nameSize: 32, actKindSize: 64, maxParams: 16,
	maxTimerProfiles: 16, maxAgingMs: 864000000, profileAgingStep: 30000, defaultProfiles: 4,
}

// tableFor returns the table of a concrete ABI.
func tableFor(a ABI) (*abiTable, error) {
	switch a {
	case ABISeries1:
		return &abiSeries1, nil
	case ABILK13:
		return &abiLK13, nil
	case ABIV17:
		return &abiV17, nil
	}
	return nil, fmt.Errorf("select P4TC ABI %v: %w", a, ErrUnknownABI)
}
