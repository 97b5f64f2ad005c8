package ebpfdp

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/translator"
)

func TestSavedExtRoundTrip(t *testing.T) {
	se := translator.SavedEntry{TableID: 9, Priority: 3,
		Match:  []translator.FieldMatch{{Set: true, Value: []byte{10}, Mask: []byte{0xff}}},
		Member: 0, Group: 77,
		OneShot: []translator.SavedSetAction{
			{ActionID: 1, Params: [][]byte{{1}, {2, 3}}, Weight: 2, WatchPort: 4, Member: 5},
			{ActionID: 1, Params: [][]byte{{1}, {2, 3}}, Weight: 1, WatchPort: 6, LegacyWatch: true, Member: 8},
		},
		Meter: &translator.MeterConfig{CIR: 1, CBurst: 2, PIR: 3, PBurst: 4},
	}
	b := encodeSavedCell(&se, 11, 1234)
	got, h, cell, err := decodeSavedCell(b)
	if err != nil || h != 11 || cell != 1234 || !reflect.DeepEqual(got, se) {
		t.Errorf("round trip: %+v handle %d cell %d err %v", got, h, cell, err)
	}
	if _, _, err := decodeSaved(b[:len(b)-1]); err == nil {
		t.Errorf("truncated extension decoded")
	}
	// Entries with nothing to add keep the old format.
	plain := translator.SavedEntry{TableID: 1, ActionID: 2}
	if !bytes.Equal(encodeSavedCell(&plain, 0, 0), encodeSaved(&plain, 0)) || encodeSaved(&plain, 0)[len(encodeSaved(&plain, 0))-1] == extTag {
		t.Errorf("a plain record grew an extension")
	}
}

func testGroup(ws ...int32) *translator.Group {
	g := &translator.Group{Profile: &translator.ActionProfile{Name: "sel"}, ID: 1}
	for i, w := range ws {
		g.Members = append(g.Members, translator.GroupMember{Member: uint32(i + 1), Weight: w})
	}
	return g
}

func bucketCounts(bs []translator.GroupMember) map[uint32]int {
	out := map[uint32]int{}
	for _, b := range bs {
		out[b.Member]++
	}
	return out
}

func TestSelectorBuckets(t *testing.T) {
	bs, err := selectorBuckets(testGroup(3, 1), 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := []uint32{bs[0].Member, bs[1].Member, bs[2].Member, bs[3].Member}; len(bs) != 4 || !reflect.DeepEqual(got, []uint32{1, 2, 1, 1}) {
		t.Errorf("weights 3,1: buckets %v, want 1 2 1 1 (interleaved)", got)
	}
	// Weights disallowed (0) count once each.
	if bs, _ := selectorBuckets(testGroup(0, 0, 0), 16); len(bs) != 3 {
		t.Errorf("three members without weights: %d buckets", len(bs))
	}
	// Too heavy: scaled to the capacity, every member keeps a bucket,
	// proportions roughly kept.
	bs, err = selectorBuckets(testGroup(100, 50, 1), 16)
	if err != nil {
		t.Fatal(err)
	}
	c := bucketCounts(bs)
	if len(bs) != 16 || c[3] < 1 || c[1] < 2*c[2]-2 || c[1] < c[2] {
		t.Errorf("weights 100,50,1 in 16 buckets: %v", c)
	}
	// More members than buckets is RESOURCE_EXHAUSTED.
	if _, err := selectorBuckets(testGroup(1, 1, 1), 2); !errors.Is(err, translator.ErrFull) {
		t.Errorf("3 members in 2 buckets: %v", err)
	}
	if bs, _ := selectorBuckets(testGroup(), 8); len(bs) != 0 {
		t.Errorf("empty group: %d buckets", len(bs))
	}
}

func TestMeterCell(t *testing.T) {
	u64 := func(b []byte, i int) uint64 { return ne.Uint64(b[8+8*i:]) }
	tr := &translator.Meter{Type: translator.MeterTwoRateThreeColor}
	b := meterCell(tr, &translator.MeterConfig{CIR: 1000, CBurst: 10, PIR: 3000, PBurst: 30}, 5)
	if len(b) != meterSize || ne.Uint32(b[4:]) != meterTrTCM {
		t.Fatalf("trTCM cell: %d bytes, mode %d", len(b), ne.Uint32(b[4:]))
	}
	// cir, pir, cap_c, cap_p, fill_c, fill_p, tc, tp, last
	want := []uint64{1000, 3000, 10e9, 30e9, 10e6, 10e6, 10e9, 30e9, 5}
	for i, w := range want {
		if got := u64(b, i); got != w {
			t.Errorf("trTCM field %d = %d, want %d", i, got, w)
		}
	}
	sr := &translator.Meter{Type: translator.MeterSingleRateThreeColor}
	b = meterCell(sr, &translator.MeterConfig{CIR: 3, CBurst: 1, PIR: 3, PBurst: 1, EBurst: 2}, 0)
	if ne.Uint32(b[4:]) != meterSrTCM || u64(b, 3) != 2e9 || u64(b, 5) != 1e9 {
		t.Errorf("srTCM: mode %d cap_p %d fill_p %d; want %d, 2e9, 1e9 (3 units at 3/s)", ne.Uint32(b[4:]), u64(b, 3), u64(b, 5), meterSrTCM)
	}
	b = meterCell(tr, &translator.MeterConfig{CBurst: 1 << 62, PBurst: 5}, 0)
	if u64(b, 4) != math.MaxUint64 || u64(b, 2) > 1<<62 {
		t.Errorf("rate 0: fill %d (want never), cap %d (want clamped)", u64(b, 4), u64(b, 2))
	}
	if !bytes.Equal(meterCell(tr, nil, 9), make([]byte, meterSize)) {
		t.Errorf("no config is not the all-GREEN zero cell")
	}
}

func TestRegisterCells(t *testing.T) {
	for _, tc := range []struct {
		kind translator.DataKind
		bits int
		v    []byte
		cell []byte
	}{
		{translator.DataBit, 32, []byte{0x12, 0x34, 0x56, 0x78}, []byte{0x78, 0x56, 0x34, 0x12}},
		{translator.DataBit, 12, []byte{0x0f, 0xff}, []byte{0xff, 0x0f}},
		{translator.DataInt, 16, []byte{0xff}, []byte{0xff, 0xff}},
		{translator.DataInt, 64, []byte{0x7f}, []byte{0x7f, 0, 0, 0, 0, 0, 0, 0}},
		{translator.DataBool, 1, []byte{1}, []byte{1}},
		{translator.DataBit, 72, []byte{1, 2}, []byte{0, 0, 0, 0, 0, 0, 0, 1, 2}},
	} {
		r := &translator.Register{Kind: tc.kind, Bits: tc.bits}
		rp := &registerPlan{r: r, size: cellSize(tc.bits)}
		cell := registerCell(rp, tc.v)
		if !bytes.Equal(cell, tc.cell) {
			t.Errorf("%v<%d> %x: cell %x, want %x", tc.kind, tc.bits, tc.v, cell, tc.cell)
		}
		back := cellValue(rp, cell)
		if len(back) != rp.size {
			t.Errorf("%v<%d>: read %d bytes, want %d", tc.kind, tc.bits, len(back), rp.size)
		}
	}
}

func TestInstIDs(t *testing.T) {
	c, err := p4test.Compile(ecmpP4Info, ecmpJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := newInstIDs(c)
	// The introspection lists Counter instances: its inst_id.
	if id, err := ids.get(introCounter, "MainControlImpl.port_stats", 0x12000001); err != nil || id != 1 {
		t.Errorf("port_stats: %d %v, want the introspection's 1", id, err)
	}
	if _, err := ids.get(introCounter, "MainControlImpl.other", 0x12000002); err == nil {
		t.Errorf("a counter the introspection does not list got an id")
	}
	// Kinds it does not list: the P4Info id's low bits, unique per kind.
	if id, err := ids.get(introRegister, "r", 0x16000005); err != nil || id != 5 {
		t.Errorf("register: %d %v, want 5", id, err)
	}
	if _, err := ids.get(introRegister, "r2", 0x17000005); err == nil {
		t.Errorf("two registers with instance id 5")
	}
	if !sameExternName("MainControlImpl.port_stats", "port_stats") || sameExternName("a.x", "b/y") {
		t.Errorf("sameExternName")
	}
}

const vsP4Info = `
value_sets {
  preamble { id: 50331649 name: "P.vs" }
  match { id: 1 name: "f" bitwidth: 16 match_type: TERNARY }
  size: 4
}
`

func TestPlanRefusesNonExactValueSets(t *testing.T) {
	c, err := p4test.CompileText([]byte(vsP4Info), []byte(`{"schema_version":"1.0.0","pipeline_name":"vs","tables":[]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := plan(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := planExterns(c, plans); !errors.Is(err, translator.ErrInvalid) || !strings.Contains(err.Error(), "value set P.vs") {
		t.Errorf("a ternary value set: %v, want INVALID_ARGUMENT naming it", err)
	}
}

func TestBucketsOf(t *testing.T) {
	for _, tc := range []struct {
		ap   translator.ActionProfile
		want int
	}{
		{translator.ActionProfile{MaxGroupSize: 16}, 16},
		{translator.ActionProfile{Size: 64}, 64},
		{translator.ActionProfile{}, defaultBuckets},
		{translator.ActionProfile{MaxGroupSize: 8, SumOfMembers: true, MaxMemberWeight: 4}, 32},
		{translator.ActionProfile{MaxGroupSize: 4096}, maxBuckets},
	} {
		if got := bucketsOf(&tc.ap); got != tc.want {
			t.Errorf("%+v: %d buckets, want %d", tc.ap, got, tc.want)
		}
	}
}
