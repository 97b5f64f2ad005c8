package tcbackend

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/translator"
	"github.com/p4tcd/p4tcd/translator/translatortest"
)

// keyField describes one key field of a one-table test pipeline.
type keyField struct {
	bits  int
	match string // P4Info match type: EXACT, LPM, TERNARY, RANGE
	typ   string // P4TC type in the JSON: bitN, ipv4, ...
}

// onePipeline writes the P4Info and introspection JSON of a pipeline "p"
// with one table "ingress.t" keyed by fields and one action "ingress.a"
// with a parameter of paramType.
func onePipeline(fields []keyField, paramType string, paramBits int) translatortest.Pipeline {
	var info, kfs strings.Builder
	info.WriteString(`tables { preamble { id: 33554433 name: "ingress.t" alias: "t" }`)
	sum := 0
	for i, f := range fields {
		fmt.Fprintf(&info, ` match_fields { id: %d name: "f%d" bitwidth: %d match_type: %s }`, i+1, i, f.bits, f.match)
		if i > 0 {
			kfs.WriteString(",")
		}
		jm := map[string]string{"EXACT": "exact", "LPM": "lpm", "TERNARY": "ternary", "RANGE": "range"}[f.match]
		fmt.Fprintf(&kfs, `{"id": %d, "name": "f%d", "type": %q, "match_type": %q, "bitwidth": %d}`, i+1, i, f.typ, jm, f.bits)
		sum += f.bits
	}
	info.WriteString(` action_refs { id: 16777217 } size: 64 }`)
	fmt.Fprintf(&info, ` actions { preamble { id: 16777217 name: "ingress.a" alias: "a" } params { id: 1 name: "x" bitwidth: %d } }`, paramBits)
	js := fmt.Sprintf(`{"schema_version": "1.0.0", "pipeline_name": "p", "tables": [{"name": "ingress/t", "id": 1, "tentries": 64, "permissions": "0x3da4", "nummask": 8, "keysize": %d,
		"keyfields": [%s], "actions": [{"id": 1, "name": "ingress/a", "action_scope": "TableAndDefault", "annotations": [], "params": [{"id": 1, "name": "x", "type": %q, "bitwidth": %d}], "default_hit_action": false, "default_miss_action": false}]}]}`,
		sum, kfs.String(), paramType, paramBits)
	return translatortest.Pipeline{P4Info: info.String(), Name: "p", Introspection: []byte(js)}
}

// TestVerify checks what Verify accepts and refuses: P4TC key blobs are
// ceil(keysz/8) bytes, and key bits the translator's container layout puts
// past them cannot be represented.
func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fields    []keyField
		paramType string
		paramBits int
		refuse    string // "" accepts
	}{
		{"port key", []keyField{{9, "EXACT", "bit9"}}, "bit32", 32, ""},
		{"16+12 bits", []keyField{{16, "EXACT", "bit16"}, {12, "EXACT", "bit12"}}, "macaddr", 48, ""},
		{"ternary ipv4 and ports", []keyField{{32, "TERNARY", "ipv4"}, {16, "EXACT", "be16"}}, "bit10", 10, ""},
		{"24 then 8 bits", []keyField{{24, "EXACT", "bit24"}, {8, "EXACT", "bit8"}}, "bit8", 8, "occupies bytes 4..4"},
		{"32, 16, 13, 3 bits", []keyField{{32, "EXACT", "bit32"}, {16, "EXACT", "bit16"}, {13, "EXACT", "bit13"}, {3, "EXACT", "bit3"}}, "bit8", 8, "P4TC cannot represent"},
		{"three 9-bit fields", []keyField{{9, "EXACT", "bit9"}, {9, "EXACT", "bit9"}, {9, "EXACT", "bit9"}}, "bit8", 8, "occupies bytes 4..5"},
		{"range", []keyField{{16, "RANGE", "bit16"}}, "bit8", 8, "no P4TC table type"},
		{"bool param", []keyField{{8, "EXACT", "bit8"}}, "bool", 1, "bool parameters are not supported"},
		{"param wider than its type", []keyField{{8, "EXACT", "bit8"}}, "bit4", 8, "is 4 bits, the JSON says 8"},
		{"key over 512 bits", []keyField{{256, "EXACT", "bit256"}, {264, "EXACT", "bit264"}}, "bit8", 8, "P4TC_MAX_KEYSZ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := translatortest.Compile(onePipeline(tc.fields, tc.paramType, tc.paramBits))
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			b := &Backend{a: &abiLK13}
			err = b.Verify(c)
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.refuse != "" && (err == nil || !strings.Contains(err.Error(), tc.refuse)):
				t.Fatalf("Verify: %v; want a refusal saying %q", err, tc.refuse)
			case tc.refuse != "" && !errors.Is(err, translator.ErrInvalid):
				t.Fatalf("Verify: %v is not ErrInvalid", err)
			}
		})
	}
	// A config without introspection has no P4TC form.
	pl := onePipeline([]keyField{{8, "EXACT", "bit8"}}, "bit8", 8)
	pl.Introspection = nil
	c, err := translatortest.Compile(pl)
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Backend{a: &abiLK13}).Verify(c); !errors.Is(err, translator.ErrInvalid) {
		t.Fatalf("Verify without introspection: %v", err)
	}
}

// TestKeyBlobCut checks the documented cut: a 9-bit key in a 16-bit
// container is 2 bytes; a 16+12-bit key 4 bytes, the high byte of the
// 12-bit field's container included (it is within ceil(28/8)).
func TestKeyBlobCut(t *testing.T) {
	h := translatortest.New(t, onePipeline([]keyField{{24, "EXACT", "bit24"}}, "bit8", 8))
	b := offlineBackend(t, ABISeries1, h.Config)
	ops := h.Ops(t, `type: INSERT entity { table_entry { table_id: 33554433 match { field_id: 1 exact { value: "\x01\x02\x03" } } action { action { action_id: 16777217 params { param_id: 1 value: "\x07" } } } } }`)
	if len(ops[0].Entry.Key) != 4 {
		t.Fatalf("translator layout: %d bytes, want a 4-byte container", len(ops[0].Entry.Key))
	}
	msgs := b.messagesFor(t, ops[0])
	key, _ := entryKeyOf(t, msgs[0])
	if want := []byte{3, 2, 1}; !bytes.Equal(key, want) {
		t.Fatalf("key blob % x, want % x (ceil(24/8) bytes, host order)", key, want)
	}
}

// entryKeyOf digs the key blob out of a one-entry runtime message.
func entryKeyOf(t *testing.T, m *message) (key, mask []byte) {
	t.Helper()
	ms, err := parseNetlinkMessages(m.request(1))
	if err != nil || len(ms) != 1 {
		t.Fatal(err)
	}
	root, _, _ := ms[0].attrs.nested(P4TC_ROOT)
	el, _ := parseAttrs(root[0].val)
	ps, _, _ := el.nested(P4TC_PARAMS)
	key, _ = ps.get(2)
	mask, _ = ps.get(3)
	return key, mask
}

func TestPriorities(t *testing.T) {
	// The mapping keeps P4Runtime's order, inverted.
	for _, p := range []int32{1, 2, 10, 1000, maxP4RTPrio} {
		b := prioBand(p)
		if b == 0 || b+prioSlots-1 > maxP4TCPrio || p4rtPrio(b) != p || p4rtPrio(b+prioSlots-1) != p {
			t.Errorf("priority %d: band %d does not map back", p, b)
		}
		if p > 1 && prioBand(p) >= prioBand(p-1) {
			t.Errorf("priority %d does not get a smaller P4TC priority than %d", p, p-1)
		}
	}
	// 256 entries may share a priority; the 257th may not.
	p, _ := samplePlan(t, ABILK13, "acl")
	tp := tableOf(t, p, "ingress/acl")
	st := newTableState(p.a, tp)
	e := &translator.Entry{Table: tp.t, Priority: 10}
	seen := map[uint32]bool{}
	for i := range prioSlots {
		prio, err := st.reservePrio(tp, e)
		if err != nil || seen[prio] {
			t.Fatalf("entry %d: prio %d, %v", i, prio, err)
		}
		seen[prio] = true
	}
	if _, err := st.reservePrio(tp, e); !errors.Is(err, translator.ErrFull) {
		t.Fatalf("257th entry of one priority: %v, want ErrFull", err)
	}
	if _, err := st.reservePrio(tp, &translator.Entry{Table: tp.t, Priority: maxP4RTPrio + 1}); !errors.Is(err, translator.ErrOutOfRange) {
		t.Fatalf("priority beyond 2^23-1: %v, want ErrOutOfRange", err)
	}
	// LPM tables get distinct priorities, reused once freed.
	rp, _ := samplePlan(t, ABILK13, "router")
	fib := tableOf(t, rp, "ingress/fib")
	fst := newTableState(rp.a, fib)
	a, _ := fst.reservePrio(fib, nil)
	b2, _ := fst.reservePrio(fib, nil)
	if a == b2 || a == 0 {
		t.Fatalf("LPM priorities %d, %d", a, b2)
	}
}

func TestTimerProfiles(t *testing.T) {
	p, _ := samplePlan(t, ABILK13, "router")
	nh := tableOf(t, p, "ingress/nh")
	st := newTableState(p.a, nh)
	if len(st.profiles) != 16 || st.profiles[0] != 30000 || st.profiles[15] != 16*30000 {
		t.Fatalf("initial profiles %v", st.profiles)
	}
	// An aging a profile has needs no change.
	if id, changed, err := st.acquireProfile(nh, 60000); err != nil || changed || id != 0 {
		t.Fatalf("60000ms: %d %v %v", id, changed, err)
	}
	// New agings take unused profiles 1..15 (profile 0 is the datapath's).
	for i := 1; i < 16; i++ {
		id, changed, err := st.acquireProfile(nh, uint64(1000+i))
		if i == 1 {
			// profile 1 (60000ms) is in use
			if err != nil || !changed || id != 2 {
				t.Fatalf("first new aging: profile %d changed %v, %v", id, changed, err)
			}
			continue
		}
		if i < 15 && (err != nil || !changed) {
			t.Fatalf("aging %d: %v", 1000+i, err)
		}
		if i == 15 && !errors.Is(err, translator.ErrFull) {
			t.Fatalf("16th distinct aging: %v, want ErrFull", err)
		}
	}
	st.releaseProfile(1002)
	if _, changed, err := st.acquireProfile(nh, 7777); err != nil || !changed {
		t.Fatalf("after a release: %v", err)
	}
	// Tables without idle timeouts have none.
	if _, _, err := newTableState(p.a, tableOf(t, p, "ingress/fib")).acquireProfile(nh, 5); !errors.Is(err, translator.ErrInvalid) {
		t.Fatalf("fib: %v", err)
	}
}

func TestTypes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		container uint32
		bits      int
		value     []byte // canonical
		wire      []byte
	}{
		{"bit9", P4TC_T_U16, 9, []byte{1, 2}, []byte{2, 1}},
		{"bit24", P4TC_T_U32, 24, []byte{1, 2, 3}, []byte{3, 2, 1, 0}},
		{"bit64", P4TC_T_U64, 64, []byte{1}, []byte{1, 0, 0, 0, 0, 0, 0, 0}},
		{"bit100", P4TC_T_U128, 100, []byte{1, 0}, append([]byte{0, 1}, make([]byte, 14)...)},
		{"macaddr", P4TC_T_MACADDR, 48, []byte{2, 0, 0, 0, 0, 1}, []byte{2, 0, 0, 0, 0, 1}},
		{"ipv4", P4TC_T_IPV4ADDR, 32, []byte{10, 0, 0, 1}, []byte{10, 0, 0, 1}},
		{"be16", P4TC_T_BE16, 16, []byte{0x50}, []byte{0, 0x50}},
		{"dev", P4TC_T_DEV, 32, []byte{3}, []byte{3, 0, 0, 0}},
		{"int8", P4TC_T_S8, 8, []byte{0x7f}, []byte{0x7f}},
	} {
		typ, err := parseType(&abiSeries1, tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if typ.container != tc.container || typ.bits != tc.bits {
			t.Errorf("%s: container %d bits %d, want %d %d", tc.name, typ.container, typ.bits, tc.container, tc.bits)
		}
		w, err := typ.encode(tc.value)
		if err != nil || !bytes.Equal(w, tc.wire) {
			t.Errorf("%s: encode % x: % x, %v; want % x", tc.name, tc.value, w, err, tc.wire)
		}
		v, err := typ.decode(append(w, 0, 0)) // kernels may dump a longer container
		if err != nil || !bytes.Equal(v, tc.value) {
			t.Errorf("%s: decode: % x, %v", tc.name, v, err)
		}
	}
	bit9, _ := parseType(&abiSeries1, "bit9")
	if _, err := bit9.encode([]byte{2, 0}); err == nil {
		t.Error("bit9 took a 10-bit value")
	}
	for _, bad := range []string{"bool", "bit0", "bit129", "float", ""} {
		if _, err := parseType(&abiSeries1, bad); err == nil {
			t.Errorf("type %q accepted", bad)
		}
	}
}
