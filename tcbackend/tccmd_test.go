package tcbackend

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/translator"
	"github.com/p4tcd/p4tcd/translator/translatortest"
)

// tcCmd encodes `tc p4template` and `tc p4ctrl` command lines into netlink
// messages the way iproute2-p4tc does (tc/p4tc_template.c, p4tc_table.c,
// m_dyna.c, m_action.c, p4_types.c): attributes in the order it adds them,
// values parsed with the P4TC types it looks up in the introspection JSON.
// It is written for the tests from iproute2's argument handling, with the
// uAPI numbers of uapi_test.go and the byte writer of helpers_test.go, and
// shares no code with the encoder, so the two can disagree.
//
// It covers the syntax of the sample templates and entries and fails on
// anything else. One deliberate difference from iproute2: `state ready`
// sends P4TC_STATE_READY, where iproute2 sends 0 (the kernel looks only at
// the attribute's presence).
type tcCmd struct {
	in  *translator.Introspection
	u   entryAttrs
	seq uint32
}

// script reads a template script into command lines: continuation lines
// joined, comments and the shell preamble dropped, "$TC" removed.
func script(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	joined := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "#"), line == "set -e", strings.HasPrefix(line, ": "):
			continue
		case strings.HasPrefix(line, "$TC "):
			out = append(out, strings.Fields(line)[1:])
		case strings.HasPrefix(line, "tc "):
			out = append(out, strings.Fields(line)[1:])
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
	}
	return out
}

func (c *tcCmd) run(args []string) ([]byte, error) {
	if len(args) < 3 {
		return nil, fmt.Errorf("short command %q", args)
	}
	switch args[0] {
	case "p4template":
		return c.p4template(args[1], args[2], args[3:])
	case "p4ctrl":
		return c.p4ctrl(args[1], args[2], args[3:])
	}
	return nil, fmt.Errorf("unknown command %q", args[0])
}

// argv walks a command's arguments.
type argv struct {
	a   []string
	err error
}

func (v *argv) more() bool { return len(v.a) > 0 && v.err == nil }
func (v *argv) peek() string {
	if len(v.a) == 0 {
		return ""
	}
	return v.a[0]
}

func (v *argv) next() string {
	if len(v.a) == 0 {
		v.err = fmt.Errorf("missing argument")
		return ""
	}
	s := v.a[0]
	v.a = v.a[1:]
	return s
}

// uint parses like iproute2's get_u*: base 16 takes an optional 0x, as
// strtoul does.
func (v *argv) uint(bits int, base int) uint64 {
	s := v.next()
	if base == 16 {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	}
	n, err := strconv.ParseUint(s, base, bits)
	if err != nil && v.err == nil {
		v.err = err
	}
	return n
}

func (c *tcCmd) p4template(verb, path string, args []string) ([]byte, error) {
	var typ, flags uint16
	switch verb {
	case "create":
		typ, flags = RTM_CREATEP4TEMPLATE, NLM_F_EXCL|NLM_F_CREATE
	case "update":
		typ = RTM_UPDATEP4TEMPLATE
	case "delete", "del":
		typ = RTM_DELP4TEMPLATE
	default:
		return nil, fmt.Errorf("verb %q", verb)
	}
	p := strings.Split(path, "/")
	v := &argv{a: args}
	var obj uint32
	var root func(w *wb)
	switch p[0] {
	case "pipeline":
		obj = P4TC_OBJ_PIPELINE
		root = func(w *wb) {
			if typ == RTM_DELP4TEMPLATE {
				return
			}
			w.nest(P4TC_PARAMS, func(w *wb) {
				for v.more() {
					switch v.next() {
					case "numtables":
						w.u16(P4TC_PIPELINE_NUMTABLES, uint16(v.uint(16, 10)))
					case "state":
						if v.next() == "ready" && typ == RTM_UPDATEP4TEMPLATE {
							w.u8(P4TC_PIPELINE_STATE, P4TC_STATE_READY)
						}
					default:
						v.err = fmt.Errorf("pipeline: unknown argument")
					}
				}
			})
		}
	case "action":
		obj = P4TC_OBJ_ACT
		root = func(w *wb) {
			var actid uint64
			w.nest(P4TC_PARAMS, func(w *wb) {
				parms, count := -1, 1
				for v.more() {
					switch v.next() {
					case "actid":
						actid = v.uint(32, 10)
					case "param":
						if parms < 0 {
							parms = len(w.b)
							w.b = append(w.b, 0, 0, 0, 0) // P4TC_ACT_PARMS, closed below
						}
						name := v.next()
						var typName string
						var id uint64
						for v.more() && (v.peek() == "type" || v.peek() == "id") {
							if v.next() == "type" {
								typName = v.next()
							} else {
								id = v.uint(32, 10)
							}
						}
						bits, container, err := ip2Type(typName)
						if err != nil {
							v.err = err
						}
						w.nest(uint16(count), func(w *wb) {
							w.str(P4TC_ACT_PARAMS_NAME, name)
							if id != 0 {
								w.u32(P4TC_ACT_PARAMS_ID, uint32(id))
							}
							w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
								w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, uint16(bits-1)).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, container)
							})
						})
						count++
					case "state":
						if v.next() == "active" {
							w.u8(P4TC_ACT_ACTIVE, 1)
						} else {
							w.u8(P4TC_ACT_ACTIVE, 0)
						}
					default:
						v.err = fmt.Errorf("action: unknown argument")
					}
				}
				if parms >= 0 {
					ne().PutUint16(w.b[parms:], uint16(len(w.b)-parms))
					ne().PutUint16(w.b[parms+2:], P4TC_ACT_PARMS|NLA_F_NESTED)
				}
				w.str(P4TC_ACT_NAME, p[2]+"/"+p[3])
			})
			if actid != 0 {
				w.u32(P4TC_PATH, uint32(actid))
			}
		}
	case "table":
		obj = P4TC_OBJ_TABLE
		root = func(w *wb) {
			var tblid, keysz, tentries, nummasks, perms uint64
			var ttype uint8
			hasPerms := false
			w.nest(P4TC_PARAMS, func(w *wb) {
				for v.more() {
					switch v.next() {
					case "tblid":
						tblid = v.uint(32, 10)
					case "keysz":
						keysz = v.uint(32, 10)
					case "tentries":
						tentries = v.uint(32, 10)
					case "nummasks":
						nummasks = v.uint(32, 10)
					case "permissions":
						perms, hasPerms = v.uint(16, 16), true
					case "type":
						ttype = map[string]uint8{"exact": P4TC_TABLE_TYPE_EXACT, "lpm": P4TC_TABLE_TYPE_LPM, "ternary": P4TC_TABLE_TYPE_TERNARY}[v.next()]
					case "num_timer_profiles":
						w.u32(P4TC_TABLE_NUM_TIMER_PROFILES, uint32(v.uint(32, 0)))
					case "table_acts":
						w.nest(P4TC_TABLE_ACTS_LIST, func(w *wb) {
							for i := 1; v.more() && v.peek() == "act"; i++ {
								v.next()
								w.nest(uint16(i), func(w *wb) {
									for v.more() && (v.peek() == "name" || v.peek() == "flags") {
										if v.next() == "name" {
											w.str(P4TC_TABLE_ACT_NAME, v.next())
											continue
										}
										switch v.next() {
										case "tableonly":
											w.u8(P4TC_TABLE_ACT_FLAGS, 1<<P4TC_TABLE_ACTS_TABLE_ONLY)
										case "defaultonly":
											w.u8(P4TC_TABLE_ACT_FLAGS, 1<<P4TC_TABLE_ACTS_DEFAULT_ONLY)
										}
									}
								})
							}
						})
					case "default_miss_action":
						c.defaultAction(w, v, P4TC_TABLE_DEFAULT_MISS)
					case "default_hit_action":
						c.defaultAction(w, v, P4TC_TABLE_DEFAULT_HIT)
					default:
						v.err = fmt.Errorf("table: unknown argument")
					}
				}
				if keysz != 0 {
					w.u32(P4TC_TABLE_KEYSZ, uint32(keysz))
				}
				if tentries != 0 {
					w.u32(P4TC_TABLE_MAX_ENTRIES, uint32(tentries))
				}
				if nummasks != 0 {
					w.u32(P4TC_TABLE_MAX_MASKS, uint32(nummasks))
				}
				if hasPerms {
					w.u16(P4TC_TABLE_PERMISSIONS, uint16(perms))
				}
				if ttype != 0 {
					w.u8(P4TC_TABLE_TYPE, ttype)
				}
				w.str(P4TC_TABLE_NAME, p[2]+"/"+p[3])
			})
			if tblid != 0 {
				w.u32(P4TC_PATH, uint32(tblid))
			}
		}
	default:
		return nil, fmt.Errorf("object %q", p[0])
	}
	msg := nlmsg(typ, NLM_F_REQUEST|NLM_F_ACK|flags, c.seq, 0, obj, func(w *wb) {
		w.str(P4TC_ROOT_PNAME, p[1])
		w.nest(P4TC_ROOT, root)
	})
	if v.err != nil {
		return nil, fmt.Errorf("%s %s: %w (at %q)", verb, path, v.err, v.a)
	}
	return msg, nil
}

// defaultAction is iproute2's parse_table_default_action: permissions, then
// NoAction or a tc action list whose P4 action takes its params' ids and
// types from the JSON (m_dyna.c parse_dyna, introspect_action_byname).
func (c *tcCmd) defaultAction(w *wb, v *argv, typ uint16) {
	w.nest(typ, func(w *wb) {
		for v.more() {
			switch v.next() {
			case "permissions":
				w.u16(P4TC_TABLE_DEFAULT_ACTION_PERMISSIONS, uint16(v.uint(16, 16)))
			case "action":
				kind := v.next()
				if kind == "NoAction" {
					w.u8(P4TC_TABLE_DEFAULT_ACTION_NOACTION, 1)
					continue
				}
				w.nest(P4TC_TABLE_DEFAULT_ACTION, func(w *wb) {
					w.nestNoFlag(1, func(w *wb) {
						w.str(TCA_ACT_KIND, kind)
						c.actionOptions(w, v, kind)
					})
				})
			default:
				v.err = fmt.Errorf("default action: unknown argument")
			}
		}
	})
}

// actionOptions writes TCA_ACT_OPTIONS of a P4 action: P4TC_ACT_PARMS from
// `param <name> <value>` pairs, then P4TC_ACT_OPT with TC_ACT_PIPE.
func (c *tcCmd) actionOptions(w *wb, v *argv, kind string) {
	parts := strings.SplitN(kind, "/", 2)
	act := c.jsonAction(parts[1])
	w.nest(TCA_ACT_OPTIONS, func(w *wb) {
		if v.peek() == "param" {
			w.nest(P4TC_ACT_PARMS, func(w *wb) {
				for i := 1; v.more() && v.peek() == "param"; i++ {
					v.next()
					name, val := v.next(), v.next()
					var jp *translator.IntrospectField
					if act != nil {
						for j := range act.Params {
							if act.Params[j].Name == name {
								jp = &act.Params[j]
							}
						}
					}
					if jp == nil {
						v.err = fmt.Errorf("param %s of %s not in the JSON", name, kind)
						return
					}
					bits, container, err := ip2Type(jp.Type)
					raw, perr := ip2Value(jp.Type, val)
					if err != nil || perr != nil {
						v.err = fmt.Errorf("param %s: %v %v", name, err, perr)
						return
					}
					w.nest(uint16(i), func(w *wb) {
						w.str(P4TC_ACT_PARAMS_NAME, name).u32(P4TC_ACT_PARAMS_ID, jp.ID)
						w.nest(P4TC_ACT_PARAMS_TYPE, func(w *wb) {
							w.u16(P4TC_ACT_PARAMS_TYPE_BITEND, uint16(bits-1)).u32(P4TC_ACT_PARAMS_TYPE_CONTAINER_ID, container)
						})
						w.nest(P4TC_ACT_PARAMS_VALUE, func(w *wb) { w.attr(P4TC_ACT_PARAMS_VALUE_RAW, raw) })
						w.attr(P4TC_ACT_PARAMS_MASK, make([]byte, len(raw)))
					})
				}
			})
		}
		w.attr(P4TC_ACT_OPT, tcActP4Bytes())
	})
}

func (c *tcCmd) jsonAction(name string) *translator.IntrospectAction {
	for i := range c.in.Tables {
		for j := range c.in.Tables[i].Actions {
			if a := &c.in.Tables[i].Actions[j]; a.Name == name {
				return a
			}
		}
	}
	return nil
}

// p4ctrl encodes `tc p4ctrl create|update|delete|get <p>/table/<cb>/<t>
// tblid <id> <key field> <value> ... [prio <n>] [permissions <hex>]
// [dynamic] [aging <ms>] [tbl_attrs timer_profile id <n> aging <ms>]
// [action <a> [param <name> <value>]... [skip_sw|skip_hw]]`, one entry per
// command.
func (c *tcCmd) p4ctrl(verb, path string, args []string) ([]byte, error) {
	var typ, flags uint16
	switch verb {
	case "create":
		typ, flags = RTM_P4TC_CREATE, NLM_F_EXCL|NLM_F_CREATE
	case "update":
		typ = RTM_P4TC_UPDATE
	case "delete":
		typ = RTM_P4TC_DEL
	case "get":
		typ = RTM_P4TC_GET
	default:
		return nil, fmt.Errorf("verb %q", verb)
	}
	p := strings.Split(path, "/")
	if len(p) != 4 || p[1] != "table" {
		return nil, fmt.Errorf("path %q", path)
	}
	tname := p[2] + "/" + p[3]
	var jt *translator.IntrospectTable
	for i := range c.in.Tables {
		if c.in.Tables[i].Name == tname {
			jt = &c.in.Tables[i]
		}
	}
	if jt == nil {
		return nil, fmt.Errorf("table %s not in the JSON", tname)
	}
	v := &argv{a: args}
	var tblid uint64
	if v.peek() == "tblid" {
		v.next()
		tblid = v.uint(32, 10)
	}
	var key, mask []byte
	msg := nlmsg(typ, NLM_F_REQUEST|NLM_F_ACK|flags, c.seq, 0, P4TC_OBJ_RUNTIME_TABLE, func(w *wb) {
		w.str(P4TC_ROOT_PNAME, p[0])
		w.nest(P4TC_ROOT, func(w *wb) {
			w.nest(1, func(w *wb) {
				w.nest(P4TC_PARAMS, func(w *wb) {
					for v.more() {
						arg := v.next()
						switch arg {
						case "prio":
							w.u32(c.u.PRIO, uint32(v.uint(32, 10)))
						case "permissions":
							w.u16(c.u.PERMISSIONS, uint16(v.uint(16, 16)))
						case "dynamic":
							w.u8(c.u.DYNAMIC, 1)
						case "tbl_attrs":
							w.nest(c.u.TBL_ATTRS, func(w *wb) {
								for v.more() && v.peek() == "timer_profile" {
									v.next()
									w.nest(P4TC_ENTRY_TBL_ATTRS_TIMER_PROFILE, func(w *wb) {
										for v.more() && (v.peek() == "id" || v.peek() == "aging") {
											if v.next() == "id" {
												w.u32(P4TC_TIMER_PROFILE_ID, uint32(v.uint(32, 0)))
											} else {
												w.u64(P4TC_TIMER_PROFILE_AGING, v.uint(64, 0))
											}
										}
									})
								}
							})
						case "aging":
							w.u64(c.u.AGING, v.uint(64, 0))
						case "action":
							kind := v.next()
							w.nest(c.u.ACT, func(w *wb) {
								w.nestNoFlag(1, func(w *wb) {
									c.actionOptions(w, v, kind)
									w.str(TCA_ACT_KIND, kind)
									var fl uint32
									switch v.peek() {
									case "skip_sw":
										fl = TCA_ACT_FLAGS_SKIP_SW
									case "skip_hw":
										fl = TCA_ACT_FLAGS_SKIP_HW
									}
									if fl != 0 {
										v.next()
										w.attr(TCA_ACT_FLAGS, append(ne().AppendUint32(nil, fl), ne().AppendUint32(nil, fl)...))
									}
								})
							})
						default:
							var kf *translator.IntrospectField
							for i := range jt.KeyFields {
								if jt.KeyFields[i].Name == arg {
									kf = &jt.KeyFields[i]
								}
							}
							if kf == nil {
								v.err = fmt.Errorf("unknown key field or argument %q", arg)
								return
							}
							k, m, err := ip2Key(kf, v.next())
							if err != nil {
								v.err = err
								return
							}
							key, mask = append(key, k...), append(mask, m...)
						}
					}
					if typ != RTM_P4TC_GET {
						w.u8(c.u.WHODUNNIT, P4TC_ENTITY_TC)
					}
					w.str(c.u.TBLNAME, tname)
					if key != nil {
						w.attr(c.u.KEY_BLOB, key).attr(c.u.MASK_BLOB, mask)
					}
				})
				w.u32(P4TC_PATH, uint32(tblid))
			})
		})
	})
	if v.err != nil {
		return nil, fmt.Errorf("p4ctrl %s %s: %w", verb, path, v.err)
	}
	return msg, nil
}

// ip2Type is get_p4type_byarg: the declared width and the container.
func ip2Type(name string) (bits int, container uint32, err error) {
	switch name {
	case "dev":
		return 32, P4TC_T_DEV, nil
	case "macaddr":
		return 48, P4TC_T_MACADDR, nil
	case "ipv4":
		return 32, P4TC_T_IPV4ADDR, nil
	case "be16":
		return 16, P4TC_T_BE16, nil
	case "be32":
		return 32, P4TC_T_BE32, nil
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(name, "bit")); err == nil && strings.HasPrefix(name, "bit") {
		switch {
		case n <= 8:
			return n, P4TC_T_U8, nil
		case n <= 16:
			return n, P4TC_T_U16, nil
		case n <= 32:
			return n, P4TC_T_U32, nil
		case n <= 64:
			return n, P4TC_T_U64, nil
		}
		return n, P4TC_T_U128, nil
	}
	return 0, 0, fmt.Errorf("type %q", name)
}

// ip2Value parses a parameter value into its container bytes (p4_types.c
// parse_p4t_*: host order for bitN and dev, network order for the rest; a
// dev is an interface, here "if<index>").
func ip2Value(typ, s string) ([]byte, error) {
	switch typ {
	case "dev":
		n, err := strconv.ParseUint(strings.TrimPrefix(s, "if"), 10, 32)
		return ne().AppendUint32(nil, uint32(n)), err
	case "macaddr":
		return net.ParseMAC(s)
	case "ipv4":
		ip := net.ParseIP(s).To4()
		if ip == nil {
			return nil, fmt.Errorf("ipv4 %q", s)
		}
		return ip, nil
	case "be16":
		n, err := strconv.ParseUint(s, 0, 16)
		return []byte{byte(n >> 8), byte(n)}, err
	}
	bits, container, err := ip2Type(typ)
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseUint(s, 0, bits)
	if err != nil {
		return nil, err
	}
	size := map[uint32]int{P4TC_T_U8: 1, P4TC_T_U16: 2, P4TC_T_U32: 4, P4TC_T_U64: 8}[container]
	return ne().AppendUint64(nil, n)[:size], nil
}

// ip2Key is __parse_table_keys: a key field takes ceil(bits/8) bytes;
// ipv4 values may carry a prefix length, which makes the mask; other types
// get an all-ones mask.
func ip2Key(kf *translator.IntrospectField, s string) (key, mask []byte, err error) {
	n := (kf.Bitwidth + 7) / 8
	mask = bytes.Repeat([]byte{0xff}, n)
	if kf.Type == "ipv4" {
		plen := 32
		if a, b, ok := strings.Cut(s, "/"); ok {
			s = a
			if plen, err = strconv.Atoi(b); err != nil {
				return nil, nil, err
			}
		}
		m := net.CIDRMask(plen, 32)
		key, err = ip2Value("ipv4", s)
		return key, m, err
	}
	v, err := ip2Value(kf.Type, s)
	if err != nil {
		return nil, nil, err
	}
	if len(v) > n {
		v = v[:n] // iproute2 copies the first bytesz bytes of the container
	}
	return v, mask, nil
}

// TestTemplateConformance: for each sample, the messages tcbackend sends to
// create the template from the JSON and P4Info are, byte for byte, the
// messages the sample's template script describes.
func TestTemplateConformance(t *testing.T) {
	for _, name := range []string{"l2fwd", "router", "acl"} {
		for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
			t.Run(name+"/"+abi.String(), func(t *testing.T) {
				p, c := samplePlan(t, abi, name)
				u, _, _ := uapiFor(abi)
				cmd := &tcCmd{in: c.Program.Introspection, u: u, seq: 1}
				lines := script(t, filepath.Join("testdata", "samples", name, name+".template"))
				ours := (&encoder{p.a}).templateScript(p.tmpl)
				if len(ours) != len(lines) {
					t.Errorf("tcbackend sends %d template messages, the script has %d commands", len(ours), len(lines))
				}
				for i := 0; i < len(ours) && i < len(lines); i++ {
					want, err := cmd.run(lines[i])
					if err != nil {
						t.Fatalf("command %d %q: %v", i, lines[i], err)
					}
					if got := ours[i].request(1); !bytes.Equal(got, want) {
						t.Errorf("command %d %q differs\n tcbackend:\n%s\n script:\n%s", i, strings.Join(lines[i], " "), tree(got), tree(want))
					}
				}
			})
		}
	}
}

// entryBlock is one update of a sample's .entries file with the commands
// it becomes.
type entryBlock struct {
	update string
	cmds   [][]string
}

func entryBlocks(t *testing.T, path string) []entryBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []entryBlock
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "", strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "update:"):
			out = append(out, entryBlock{update: strings.TrimSpace(strings.TrimPrefix(line, "update:"))})
		case strings.HasPrefix(line, "tc ") && len(out) > 0:
			out[len(out)-1].cmds = append(out[len(out)-1].cmds, strings.Fields(line)[1:])
		default:
			t.Fatalf("%s: unexpected line %q", path, line)
		}
	}
	return out
}

// TestRuntimeConformance: P4Runtime updates become, byte for byte, the
// messages of the equivalent `tc p4ctrl` commands: key blobs cut to
// ceil(keysz/8), P4TC types of parameters, inverted priorities, placement
// flags, idle timeouts through timer profiles.
func TestRuntimeConformance(t *testing.T) {
	for _, name := range []string{"l2fwd", "router", "acl"} {
		for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
			t.Run(name+"/"+abi.String(), func(t *testing.T) {
				h := translatortest.New(t, sample(t, name))
				b := offlineBackend(t, abi, h.Config)
				u, _, _ := uapiFor(abi)
				cmd := &tcCmd{in: h.Config.Program.Introspection, u: u, seq: 1}
				for i, blk := range entryBlocks(t, filepath.Join("testdata", "samples", name, name+".entries")) {
					ops := h.Ops(t, blk.update)
					if len(ops) != 1 {
						t.Fatalf("block %d: %d ops", i, len(ops))
					}
					msgs := b.messagesFor(t, ops[0])
					if len(msgs) != len(blk.cmds) {
						t.Fatalf("block %d: tcbackend sends %d messages, the block has %d commands", i, len(msgs), len(blk.cmds))
					}
					for j, m := range msgs {
						want, err := cmd.run(blk.cmds[j])
						if err != nil {
							t.Fatalf("block %d: %q: %v", i, blk.cmds[j], err)
						}
						if got := m.request(1); !bytes.Equal(got, want) {
							t.Errorf("block %d: %q differs\n tcbackend:\n%s\n command:\n%s", i, strings.Join(blk.cmds[j], " "), tree(got), tree(want))
						}
					}
				}
			})
		}
	}
}

// TestEntryPlacement: an entry's own placement (its writer's role config)
// wins over its table's: the acl table is placed sw (skip_hw), an entry
// placed hw goes out with skip_sw, as `tc p4ctrl create ... skip_sw`.
func TestEntryPlacement(t *testing.T) {
	h := translatortest.New(t, sample(t, "acl"))
	b := offlineBackend(t, ABIV17, h.Config)
	u, _, _ := uapiFor(ABIV17)
	cmd := &tcCmd{in: h.Config.Program.Introspection, u: u, seq: 1}
	blk := entryBlocks(t, filepath.Join("testdata", "samples", "acl", "acl.entries"))[0]
	ops := h.Ops(t, blk.update)
	if ops[0].Entry.Placement != translator.PlaceSW {
		t.Fatalf("the Device placed the entry %v, want the table's sw", ops[0].Entry.Placement)
	}
	e := *ops[0].Entry
	e.Placement = translator.PlaceHW
	msgs := b.messagesFor(t, translator.Op{Kind: translator.OpInsert, Entry: &e})
	args := slices.Clone(blk.cmds[0])
	if args[len(args)-1] != "skip_hw" {
		t.Fatalf("sample command %q does not end in skip_hw", args)
	}
	args[len(args)-1] = "skip_sw"
	want, err := cmd.run(args)
	if err != nil {
		t.Fatal(err)
	}
	if got := msgs[len(msgs)-1].request(1); !bytes.Equal(got, want) {
		t.Errorf("entry placed hw: differs from %q\n tcbackend:\n%s\n command:\n%s", strings.Join(args, " "), tree(got), tree(want))
	}
}
