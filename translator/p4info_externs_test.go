package translator

import (
	"strings"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	"google.golang.org/protobuf/proto"
)

func TestCompileExterns(t *testing.T) {
	p, err := Compile(loadP4Info(t, "p4tcd-externs.p4info.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint32{}
	for _, x := range p.TableOrder {
		ids[x.Name] = x.ID
	}
	for _, x := range p.profileOrder {
		ids[x.Name] = x.ID
	}
	for _, x := range p.counterOrder {
		ids[x.Name] = x.ID
	}
	for _, x := range p.meterOrder {
		ids[x.Name] = x.ID
	}
	for _, x := range p.registerOrder {
		ids[x.Name] = x.ID
	}
	for _, x := range p.valueSetOrder {
		ids[x.Name] = x.ID
	}
	byName := func(name string) uint32 {
		id, ok := ids[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		return id
	}
	td := p.Tables[byName("ingress.t_direct")]
	if td.DirectCounter == nil || td.DirectCounter.Unit != CounterBoth || td.DirectCounter.Table != td {
		t.Errorf("t_direct direct counter %+v", td.DirectCounter)
	}
	if td.DirectMeter == nil || td.DirectMeter.Unit != MeterBytes || td.DirectMeter.Type != MeterTwoRateThreeColor {
		t.Errorf("t_direct direct meter %+v", td.DirectMeter)
	}
	if m := p.Tables[byName("ingress.t_srtcm")].DirectMeter; m == nil || m.Type != MeterSingleRateThreeColor {
		t.Errorf("t_srtcm direct meter %+v", m)
	}
	if c := p.Counters[byName("ingress.c_pkts")]; c.Unit != CounterPackets || c.Size != 8 || c.Table != nil {
		t.Errorf("c_pkts %+v", c)
	}
	if c := p.Counters[byName("ingress.c_bytes")]; c.Unit != CounterBytes {
		t.Errorf("c_bytes %+v", c)
	}
	if m := p.Meters[byName("ingress.m_2c")]; m.Type != MeterSingleRateTwoColor || m.Size != 2 {
		t.Errorf("m_2c %+v", m)
	}
	if a := p.Profiles[byName("ingress.sel_m")]; !a.WithSelector || !a.SumOfMembers || a.MaxMemberWeight != 4 || a.MaxGroupSize != 3 || len(a.tables) != 1 {
		t.Errorf("sel_m %+v", a)
	}
	if a := p.Profiles[byName("ingress.sel_nw")]; !a.WeightsDisallowed || a.SumOfMembers {
		t.Errorf("sel_nw %+v", a)
	}
	for name, want := range map[string]struct {
		kind DataKind
		bits int
	}{"ingress.r_bit": {DataBit, 12}, "ingress.r_wide": {DataBit, 100}, "ingress.r_int": {DataInt, 8}, "ingress.r_bool": {DataBool, 1}, "ingress.r_struct": {DataUnsupported, 0}} {
		if r := p.Registers[byName(name)]; r.Kind != want.kind || r.Bits != want.bits {
			t.Errorf("%s: kind %v bits %d, want %v %d", name, r.Kind, r.Bits, want.kind, want.bits)
		}
	}
	if vs := p.ValueSets[byName("parser.vs_tern")]; len(vs.Fields) != 2 || vs.Fields[0].Kind != MatchTernary || vs.Size != 2 || vs.Layout == nil {
		t.Errorf("vs_tern %+v", vs)
	}
	if len(p.digestIDs) != 1 {
		t.Errorf("%d digests, want 1", len(p.digestIDs))
	}
}

func TestCompileExternErrors(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*p4configv1.P4Info)
		wantMsg string
	}{
		{"two direct counters", func(p *p4configv1.P4Info) {
			dc := proto.Clone(p.DirectCounters[0]).(*p4configv1.DirectCounter)
			dc.Preamble = &p4configv1.Preamble{Id: 0x13000009, Name: "second"}
			p.DirectCounters = append(p.DirectCounters, dc)
		}, "two direct counters"},
		{"negative value set size", func(p *p4configv1.P4Info) { p.ValueSets[0].Size = -1 }, "negative size"},
		{"value set without fields", func(p *p4configv1.P4Info) { p.ValueSets[0].Match = nil }, "no match fields"},
		{"value set field bitwidth", func(p *p4configv1.P4Info) { p.ValueSets[0].Match[0].Bitwidth = 0 }, "value set parser.vs_eth: field ether_type: bitwidth 0"},
		{"negative max_member_weight", func(p *p4configv1.P4Info) {
			p.ActionProfiles[2].GetSumOfMembers().MaxMemberWeight = -1
		}, "negative size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info := loadP4Info(t, "p4tcd-externs.p4info.txt")
			tc.mutate(info)
			_, err := Compile(info)
			if err == nil || !isErr(err, ErrInvalid) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Compile: %v, want ErrInvalid saying %q", err, tc.wantMsg)
			}
		})
	}
}
