package tcbackend

import (
	"bytes"
	"testing"
)

// TestGoldenMessages checks every kind of message tcbackend sends against
// bytes written by hand from the uAPI (uapi_test.go) with encoding/binary
// (helpers_test.go wb): never from the encoder. The attribute order is
// iproute2-p4tc's for the equivalent command, named in each case.
func TestGoldenMessages(t *testing.T) {
	const seq = 7
	const (
		create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
		plain  = NLM_F_REQUEST | NLM_F_ACK
	)
	for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
		u, _, _ := uapiFor(abi)
		l2, _ := samplePlan(t, abi, "l2fwd")
		rt, _ := samplePlan(t, abi, "router")
		acl, _ := samplePlan(t, abi, "acl")
		e := &encoder{l2.a}
		fdb, fib, nh, aclT := tableOf(t, l2, "ingress/fdb"), tableOf(t, rt, "ingress/fib"), tableOf(t, rt, "ingress/nh"), tableOf(t, acl, "ingress/acl")
		mac := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55}
		ones := func(n int) []byte { return bytes.Repeat([]byte{0xff}, n) }
		sendCall := func(ifindex uint32, flags uint32) *actionCall {
			return &actionCall{kind: "l2fwd/ingress/send", flags: flags, params: []paramValue{{
				name: "port", id: 1, typ: p4tcType{name: "dev", container: P4TC_T_DEV, bits: 32, size: 4, hostOrder: true, dev: true},
				value: ne().AppendUint32(nil, ifindex),
			}}}
		}
		// sendAct writes index 1 of an entry's action list for send(port):
		// options first, then kind, then flags (tc/p4tc_table.c).
		sendAct := func(w *wb, ifindex uint32, flags uint32) {
			w.nestNoFlag(1, func(w *wb) {
				w.nest(TCA_ACT_OPTIONS, func(w *wb) {
					w.nest(P4TC_ACT_PARMS, func(w *wb) {
						w.nest(1, func(w *wb) {
							w.str(P4TC_ACT_PARAMS_NAME, "port").u32(P4TC_ACT_PARAMS_ID, 1)
							w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
								w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 31).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_DEV)
							})
							w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.u32(P4TC_ACT_PARAMS_VALUE_RAW, ifindex) })
							w.attr(P4TC_ACT_PARAMS_MASK, make([]byte, 4))
						})
					})
					w.attr(P4TC_ACT_OPT, tcActP4Bytes())
				})
				w.str(TCA_ACT_KIND, "l2fwd/ingress/send")
				if flags != 0 {
					w.attr(TCA_ACT_FLAGS, append(ne().AppendUint32(nil, flags), ne().AppendUint32(nil, flags)...))
				}
			})
		}
		cases := []struct {
			name string // and the command it is
			got  *message
			want []byte
		}{{
			"tc p4template create pipeline/l2fwd numtables 1",
			e.pipelineCreate("l2fwd", 1),
			nlmsg(RTM_CREATEP4TEMPLATE, create, seq, 0, P4TC_OBJ_PIPELINE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) { w.nest(P4TC_PARAMS, func(w *wb) { w.u16(P4TC_PIPELINE_NUMTABLES, 1) }) })
			}),
		}, {
			"tc p4template update pipeline/l2fwd state ready",
			e.pipelineReady("l2fwd"),
			nlmsg(RTM_UPDATEP4TEMPLATE, plain, seq, 0, P4TC_OBJ_PIPELINE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) { w.nest(P4TC_PARAMS, func(w *wb) { w.u8(P4TC_PIPELINE_STATE, P4TC_STATE_READY) }) })
			}),
		}, {
			"tc p4template del pipeline/l2fwd",
			e.pipelineDelete("l2fwd"),
			nlmsg(RTM_DELP4TEMPLATE, plain, seq, 0, P4TC_OBJ_PIPELINE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(*wb) {})
			}),
		}, {
			"tc p4template get pipeline/p4tcd-probe",
			e.pipelineGet(probePipeline),
			nlmsg(RTM_GETP4TEMPLATE, plain, seq, 0, P4TC_OBJ_PIPELINE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, probePipeline)
				w.nest(P4TC_ROOT, func(*wb) {})
			}),
		}, {
			"tc p4template create action/router/ingress/fwd actid 3 param port type dev id 1 param smac type macaddr id 2",
			e.actionCreate("router", rt.tmpl.actions[2]),
			nlmsg(RTM_CREATEP4TEMPLATE, create, seq, 0, P4TC_OBJ_ACT, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) {
						w.nest(P4TC_ACT_PARMS, func(w *wb) {
							w.nest(1, func(w *wb) {
								w.str(P4TC_ACT_PARAMS_NAME, "port").u32(P4TC_ACT_PARAMS_ID, 1)
								w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
									w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 31).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_DEV)
								})
							})
							w.nest(2, func(w *wb) {
								w.str(P4TC_ACT_PARAMS_NAME, "smac").u32(P4TC_ACT_PARAMS_ID, 2)
								w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
									w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 47).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_MACADDR)
								})
							})
						})
						w.str(P4TC_ACT_NAME, "ingress/fwd")
					})
					w.u32(P4TC_PATH, 3)
				})
			}),
		}, {
			"tc p4template update action/router/ingress/fwd state active",
			e.actionActivate("router", "ingress/fwd"),
			nlmsg(RTM_UPDATEP4TEMPLATE, plain, seq, 0, P4TC_OBJ_ACT, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) { w.u8(P4TC_ACT_ACTIVE, 1).str(P4TC_ACT_NAME, "ingress/fwd") })
				})
			}),
		}, {
			"tc p4template create table/l2fwd/ingress/fdb tblid 1 type exact keysz 48 permissions 0x3da4 tentries 1024 nummasks 1 table_acts act name l2fwd/ingress/send flags tableonly act name l2fwd/ingress/drop",
			e.tableCreate("l2fwd", fdb.tt),
			nlmsg(RTM_CREATEP4TEMPLATE, create, seq, 0, P4TC_OBJ_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) {
						w.nest(P4TC_TABLE_ACTS_LIST, func(w *wb) {
							w.nest(1, func(w *wb) {
								w.str(P4TC_TABLE_ACT_NAME, "l2fwd/ingress/send").u8(P4TC_TABLE_ACT_FLAGS, 1<<P4TC_TABLE_ACTS_TABLE_ONLY)
							})
							w.nest(2, func(w *wb) { w.str(P4TC_TABLE_ACT_NAME, "l2fwd/ingress/drop") })
						})
						w.u32(P4TC_TABLE_KEYSZ, 48).u32(P4TC_TABLE_MAX_ENTRIES, 1024).u32(P4TC_TABLE_MAX_MASKS, 1)
						w.u16(P4TC_TABLE_PERMISSIONS, 0x3da4).u8(P4TC_TABLE_TYPE, P4TC_TABLE_TYPE_EXACT)
						w.str(P4TC_TABLE_NAME, "ingress/fdb")
					})
					w.u32(P4TC_PATH, 1)
				})
			}),
		}, {
			"tc p4template create table/router/ingress/nh tblid 2 type exact keysz 28 permissions 0x3da4 tentries 1024 nummasks 1 num_timer_profiles 16 table_acts act name router/ingress/fwd act name router/ingress/to_cpu",
			e.tableCreate("router", nh.tt),
			nlmsg(RTM_CREATEP4TEMPLATE, create, seq, 0, P4TC_OBJ_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) {
						w.u32(P4TC_TABLE_NUM_TIMER_PROFILES, 16)
						w.nest(P4TC_TABLE_ACTS_LIST, func(w *wb) {
							w.nest(1, func(w *wb) { w.str(P4TC_TABLE_ACT_NAME, "router/ingress/fwd") })
							w.nest(2, func(w *wb) { w.str(P4TC_TABLE_ACT_NAME, "router/ingress/to_cpu") })
						})
						w.u32(P4TC_TABLE_KEYSZ, 28).u32(P4TC_TABLE_MAX_ENTRIES, 1024).u32(P4TC_TABLE_MAX_MASKS, 1)
						w.u16(P4TC_TABLE_PERMISSIONS, 0x3da4).u8(P4TC_TABLE_TYPE, P4TC_TABLE_TYPE_EXACT)
						w.str(P4TC_TABLE_NAME, "ingress/nh")
					})
					w.u32(P4TC_PATH, 2)
				})
			}),
		}, {
			"tc p4template update table/router/ingress/nh default_miss_action permissions 0x1824 action router/ingress/to_cpu param reason 3",
			e.tableDefault("router", "ingress/nh", false, nh.tt.defaultMiss),
			nlmsg(RTM_UPDATEP4TEMPLATE, plain, seq, 0, P4TC_OBJ_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) {
						w.nest(P4TC_TABLE_DEFAULT_MISS, func(w *wb) {
							w.u16(P4TC_TABLE_DEFAULT_ACTION_PERMISSIONS, 0x1824)
							w.nest(P4TC_TABLE_DEFAULT_ACTION, func(w *wb) {
								w.nestNoFlag(1, func(w *wb) {
									w.str(TCA_ACT_KIND, "router/ingress/to_cpu")
									w.nest(TCA_ACT_OPTIONS, func(w *wb) {
										w.nest(P4TC_ACT_PARMS, func(w *wb) {
											w.nest(1, func(w *wb) {
												w.str(P4TC_ACT_PARAMS_NAME, "reason").u32(P4TC_ACT_PARAMS_ID, 1)
												w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
													w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 7).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_U8)
												})
												w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.attr(P4TC_ACT_PARAMS_VALUE_RAW, []byte{3}) })
												w.attr(P4TC_ACT_PARAMS_MASK, []byte{0})
											})
										})
										w.attr(P4TC_ACT_OPT, tcActP4Bytes())
									})
								})
							})
						})
						w.str(P4TC_TABLE_NAME, "ingress/nh")
					})
				})
			}),
		}, {
			"tc p4ctrl create l2fwd/table/ingress/fdb tblid 1 hdr.eth.dst 00:11:22:33:44:55 action send param port if5 entry hdr.eth.dst ... action send param port if6 skip_sw",
			e.entriesMsg(verbCreate, "l2fwd", []*entrySpec{
				{tp: fdb, key: mac, mask: ones(6), action: sendCall(5, 0)},
				{tp: fdb, key: append(mac[:5:5], 0x66), mask: ones(6), action: sendCall(6, TCA_ACT_FLAGS_SKIP_SW)},
			}),
			nlmsg(RTM_P4TC_CREATE, create, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					for i, k := range [][]byte{mac, append(mac[:5:5], 0x66)} {
						w.nest(uint16(i+1), func(w *wb) {
							w.nest(P4TC_PARAMS, func(w *wb) {
								w.nest(u.ACT, func(w *wb) { sendAct(w, uint32(5+i), uint32(i)*TCA_ACT_FLAGS_SKIP_SW) })
								w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fdb")
								w.attr(u.KEY_BLOB, k).attr(u.MASK_BLOB, ones(6))
							})
							w.u32(P4TC_PATH, 1)
						})
					}
				})
			}),
		}, {
			"tc p4ctrl create router/table/ingress/nh tblid 2 meta.nh_id 7 meta.vlan 100 permissions 0x1020 dynamic aging 5000 action router/ingress/to_cpu param reason 9",
			e.entriesMsg(verbCreate, "router", []*entrySpec{{
				tp: nh, key: []byte{7, 0, 100, 0}, mask: ones(4), permissions: 0x1020, hasPermissions: true, agingMs: 5000,
				action: &actionCall{kind: "router/ingress/to_cpu", params: []paramValue{{name: "reason", id: 1, typ: p4tcType{name: "bit8", container: P4TC_T_U8, bits: 8, size: 1, hostOrder: true}, value: []byte{9}}}},
			}}),
			nlmsg(RTM_P4TC_CREATE, create, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.u16(u.PERMISSIONS, 0x1020).u8(u.DYNAMIC, 1).u64(u.AGING, 5000)
							w.nest(u.ACT, func(w *wb) {
								w.nestNoFlag(1, func(w *wb) {
									w.nest(TCA_ACT_OPTIONS, func(w *wb) {
										w.nest(P4TC_ACT_PARMS, func(w *wb) {
											w.nest(1, func(w *wb) {
												w.str(P4TC_ACT_PARAMS_NAME, "reason").u32(P4TC_ACT_PARAMS_ID, 1)
												w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
													w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 7).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_U8)
												})
												w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.attr(P4TC_ACT_PARAMS_VALUE_RAW, []byte{9}) })
												w.attr(P4TC_ACT_PARAMS_MASK, []byte{0})
											})
										})
										w.attr(P4TC_ACT_OPT, tcActP4Bytes())
									})
									w.str(TCA_ACT_KIND, "router/ingress/to_cpu")
								})
							})
							w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/nh")
							w.attr(u.KEY_BLOB, []byte{7, 0, 100, 0}).attr(u.MASK_BLOB, ones(4))
						})
						w.u32(P4TC_PATH, 2)
					})
				})
			}),
		}, {
			"tc p4ctrl update router/table/ingress/fib tblid 1 hdr.ipv4.dst 10.1.0.0/16 prio 3 action router/ingress/set_nh param nh_id 7",
			e.entriesMsg(verbUpdate, "router", []*entrySpec{{
				tp: fib, key: []byte{10, 1, 0, 0}, mask: []byte{0xff, 0xff, 0, 0}, prio: 3,
				action: &actionCall{kind: "router/ingress/set_nh", params: []paramValue{{name: "nh_id", id: 1, typ: p4tcType{name: "bit16", container: P4TC_T_U16, bits: 16, size: 2, hostOrder: true}, value: []byte{7, 0}}}},
			}}),
			nlmsg(RTM_P4TC_UPDATE, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.u32(u.PRIO, 3)
							w.nest(u.ACT, func(w *wb) {
								w.nestNoFlag(1, func(w *wb) {
									w.nest(TCA_ACT_OPTIONS, func(w *wb) {
										w.nest(P4TC_ACT_PARMS, func(w *wb) {
											w.nest(1, func(w *wb) {
												w.str(P4TC_ACT_PARAMS_NAME, "nh_id").u32(P4TC_ACT_PARAMS_ID, 1)
												w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
													w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, 15).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, P4TC_T_U16)
												})
												w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.attr(P4TC_ACT_PARAMS_VALUE_RAW, []byte{7, 0}) })
												w.attr(P4TC_ACT_PARAMS_MASK, []byte{0, 0})
											})
										})
										w.attr(P4TC_ACT_OPT, tcActP4Bytes())
									})
									w.str(TCA_ACT_KIND, "router/ingress/set_nh")
								})
							})
							w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fib")
							w.attr(u.KEY_BLOB, []byte{10, 1, 0, 0}).attr(u.MASK_BLOB, []byte{0xff, 0xff, 0, 0})
						})
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl delete acl/table/ingress/acl tblid 1 hdr.ipv4.src 10.0.0.0/8 hdr.ipv4.proto 6 hdr.l4.dport 80 prio 2147481088",
			e.entriesMsg(verbDelete, "acl", []*entrySpec{{
				tp: aclT, key: []byte{10, 0, 0, 0, 6, 0, 80}, mask: []byte{0xff, 0, 0, 0, 0xff, 0xff, 0xff}, prio: 2147481088,
			}}),
			nlmsg(RTM_P4TC_DEL, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "acl")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.u32(u.PRIO, 2147481088).u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/acl")
							w.attr(u.KEY_BLOB, []byte{10, 0, 0, 0, 6, 0, 80}).attr(u.MASK_BLOB, []byte{0xff, 0, 0, 0, 0xff, 0xff, 0xff})
						})
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl get l2fwd/table/ingress/fdb tblid 1 hdr.eth.dst 00:11:22:33:44:55",
			e.entriesMsg(verbGet, "l2fwd", []*entrySpec{{tp: fdb, key: mac, mask: ones(6)}}),
			nlmsg(RTM_P4TC_GET, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.str(u.TBLNAME, "ingress/fdb").attr(u.KEY_BLOB, mac).attr(u.MASK_BLOB, ones(6))
						})
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl delete l2fwd/table/ingress/fdb tblid 1 (flush)",
			e.flushMsg("l2fwd", fdb),
			nlmsg(RTM_P4TC_DEL, plain|NLM_F_ROOT, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) { w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fdb") })
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl get l2fwd/table/ingress/fdb tblid 1 (dump)",
			e.dumpMsg("l2fwd", fdb),
			nlmsg(RTM_P4TC_GET, NLM_F_REQUEST|NLM_F_ROOT|NLM_F_MATCH, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(P4TC_PARAMS, func(w *wb) { w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fdb") })
					w.u32(P4TC_PATH, 1)
				})
			}),
		}, {
			"tc p4ctrl update l2fwd/table/ingress/fdb tblid 1 tbl_attrs default_miss_action action l2fwd/ingress/drop",
			e.defaultMissMsg("l2fwd", fdb, &actionCall{kind: "l2fwd/ingress/drop"}),
			nlmsg(RTM_P4TC_UPDATE, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.nest(u.TBL_ATTRS, func(w *wb) {
								w.nest(P4TC_ENTRY_TBL_ATTRS_DEFAULT_MISS, func(w *wb) {
									w.nest(P4TC_TABLE_DEFAULT_ACTION, func(w *wb) {
										w.nestNoFlag(1, func(w *wb) {
											w.str(TCA_ACT_KIND, "l2fwd/ingress/drop")
											w.nest(TCA_ACT_OPTIONS, func(w *wb) { w.attr(P4TC_ACT_OPT, tcActP4Bytes()) })
										})
									})
								})
							})
							w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fdb")
						})
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl update l2fwd/table/ingress/fdb tblid 1 tbl_attrs default_miss_action action NoAction",
			e.defaultMissMsg("l2fwd", fdb, nil),
			nlmsg(RTM_P4TC_UPDATE, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "l2fwd")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.nest(u.TBL_ATTRS, func(w *wb) {
								w.nest(P4TC_ENTRY_TBL_ATTRS_DEFAULT_MISS, func(w *wb) { w.u8(P4TC_TABLE_DEFAULT_ACTION_NOACTION, 1) })
							})
							w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/fdb")
						})
						w.u32(P4TC_PATH, 1)
					})
				})
			}),
		}, {
			"tc p4ctrl update router/table/ingress/nh tblid 2 tbl_attrs timer_profile id 1 aging 5000",
			e.timerProfileMsg("router", nh, 1, 5000),
			nlmsg(RTM_P4TC_UPDATE, plain, seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
				w.str(P4TC_ROOT_PNAME, "router")
				w.nest(P4TC_ROOT, func(w *wb) {
					w.nest(1, func(w *wb) {
						w.nest(P4TC_PARAMS, func(w *wb) {
							w.nest(u.TBL_ATTRS, func(w *wb) {
								w.nest(P4TC_ENTRY_TBL_ATTRS_TIMER_PROFILE, func(w *wb) {
									w.u32(P4TC_TIMER_PROFILE_ID, 1).u64(P4TC_TIMER_PROFILE_AGING, 5000)
								})
							})
							w.u8(u.WHODUNNIT, P4TC_ENTITY_TC).str(u.TBLNAME, "ingress/nh")
						})
						w.u32(P4TC_PATH, 2)
					})
				})
			}),
		}}
		for _, tc := range cases {
			t.Run(abi.String()+"/"+tc.name, func(t *testing.T) {
				got := tc.got.request(seq)
				if !bytes.Equal(got, tc.want) {
					t.Errorf("message differs\n got:\n%s\nwant:\n%s", tree(got), tree(tc.want))
				}
			})
		}
	}
}

// TestPlacementFlags checks the placement encoding: skip_sw for hardware
// only, skip_hw for software only, no flag for both.
func TestPlacementFlags(t *testing.T) {
	for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
		a, _ := tableFor(abi)
		for _, tc := range []struct {
			p    string
			got  uint32
			want uint32
		}{
			{"both", placementFlags(a, 0), 0},
			{"sw", placementFlags(a, 1), TCA_ACT_FLAGS_SKIP_HW},
			{"hw", placementFlags(a, 2), TCA_ACT_FLAGS_SKIP_SW},
		} {
			if tc.got != tc.want {
				t.Errorf("%v: placement %s: flags %#x, want %#x", abi, tc.p, tc.got, tc.want)
			}
		}
	}
}
