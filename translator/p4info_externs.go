package translator

import (
	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
)

// CounterUnit is what a counter counts (P4Info CounterSpec.Unit).
type CounterUnit uint8

// Counter units.
const (
	CounterUnspecified CounterUnit = iota
	CounterBytes
	CounterPackets
	CounterBoth
)

func (u CounterUnit) String() string {
	return [...]string{"unspecified", "bytes", "packets", "packets and bytes"}[u]
}

// Counter is a P4Info counter (indexed) or direct counter.
type Counter struct {
	ID   uint32
	Name string
	Unit CounterUnit
	// Size is the number of cells of an indexed counter; 0 for a direct
	// counter.
	Size int64
	// Table is the table of a direct counter; nil for an indexed one.
	Table *Table
}

// MeterUnit is what a meter's rates count (P4Info MeterSpec.Unit).
type MeterUnit uint8

// Meter units.
const (
	MeterUnspecified MeterUnit = iota
	MeterBytes
	MeterPackets
)

// MeterType is the marker a meter implements (P4Info MeterSpec.Type).
type MeterType uint8

// Meter types (P4Runtime §9.4).
const (
	// MeterTwoRateThreeColor is RFC 2698's trTCM, the default.
	MeterTwoRateThreeColor MeterType = iota
	// MeterSingleRateThreeColor is RFC 2697's srTCM.
	MeterSingleRateThreeColor
	// MeterSingleRateTwoColor is srTCM without excess burst: GREEN or RED.
	MeterSingleRateTwoColor
)

func (t MeterType) String() string {
	return [...]string{"two-rate three-color", "single-rate three-color", "single-rate two-color"}[t]
}

// Meter is a P4Info meter (indexed) or direct meter.
type Meter struct {
	ID   uint32
	Name string
	Unit MeterUnit
	Type MeterType
	// Size is the number of cells of an indexed meter; 0 for a direct meter.
	Size int64
	// Table is the table of a direct meter; nil for an indexed one.
	Table *Table
}

// DataKind is the P4 type of register cells p4tcd can carry.
type DataKind uint8

// Data kinds.
const (
	// DataUnsupported: a type p4tcd does not translate (struct, header,
	// varbit, enum...); RegisterEntry reads and writes answer
	// UNIMPLEMENTED.
	DataUnsupported DataKind = iota
	// DataBit is bit<W>.
	DataBit
	// DataInt is int<W> (two's complement).
	DataInt
	// DataBool is bool (one bit).
	DataBool
)

// Register is a P4Info register array.
type Register struct {
	ID   uint32
	Name string
	Size int64
	Kind DataKind
	// Bits is W of bit<W> and int<W>, 1 for bool.
	Bits int
	// why says what makes an unsupported type unsupported.
	why string
}

// Bytes is the size of a cell's value in a backend: ceil(Bits/8).
func (r *Register) Bytes() int { return minBytes(r.Bits) }

// ValueSet is a P4Info parser value set.
type ValueSet struct {
	ID   uint32
	Name string
	// Size is the most members the set holds.
	Size int32
	// Fields are the members' match fields, as a table's key.
	Fields []*MatchField
	// Layout lays a member's key out like a table key (KeyLayout), or is
	// nil when a field cannot be laid out.
	Layout *KeyLayout

	// match is a pseudo-table over Fields, so members parse with the
	// table entry code (P4Runtime §9.6: "FieldMatch messages in a
	// ValueSetEntry follow the same rules as in a TableEntry").
	match *Table
}

// compileExterns indexes the P4Info's counters, meters, registers, value
// sets and digests. Tables are compiled already (direct resources point to
// them).
func compileExterns(p *Pipeline, info *p4configv1.P4Info, nt newTypes) error {
	for _, c := range info.GetCounters() {
		ctr := &Counter{ID: c.GetPreamble().GetId(), Name: c.GetPreamble().GetName(), Unit: counterUnit(c.GetSpec()), Size: c.GetSize()}
		p.Counters[ctr.ID] = ctr
		p.counterOrder = append(p.counterOrder, ctr)
	}
	for _, c := range info.GetDirectCounters() {
		t := p.Tables[c.GetDirectTableId()]
		if t == nil {
			return errorf(ErrInvalid, "p4info: direct counter %s: direct_table_id %#x is not a table", c.GetPreamble().GetName(), c.GetDirectTableId())
		}
		if t.DirectCounter != nil {
			return errorf(ErrInvalid, "p4info: table %s has two direct counters (%s, %s); TableEntry.counter_data addresses one", t.Name, t.DirectCounter.Name, c.GetPreamble().GetName())
		}
		t.DirectCounter = &Counter{ID: c.GetPreamble().GetId(), Name: c.GetPreamble().GetName(), Unit: counterUnit(c.GetSpec()), Table: t}
		p.DirectCounters[t.DirectCounter.ID] = t.DirectCounter
	}
	for _, m := range info.GetMeters() {
		mtr := &Meter{ID: m.GetPreamble().GetId(), Name: m.GetPreamble().GetName(), Size: m.GetSize()}
		mtr.Unit, mtr.Type = meterSpec(m.GetSpec())
		p.Meters[mtr.ID] = mtr
		p.meterOrder = append(p.meterOrder, mtr)
	}
	for _, m := range info.GetDirectMeters() {
		t := p.Tables[m.GetDirectTableId()]
		if t == nil {
			return errorf(ErrInvalid, "p4info: direct meter %s: direct_table_id %#x is not a table", m.GetPreamble().GetName(), m.GetDirectTableId())
		}
		if t.DirectMeter != nil {
			return errorf(ErrInvalid, "p4info: table %s has two direct meters (%s, %s); TableEntry.meter_config addresses one", t.Name, t.DirectMeter.Name, m.GetPreamble().GetName())
		}
		mtr := &Meter{ID: m.GetPreamble().GetId(), Name: m.GetPreamble().GetName(), Table: t}
		mtr.Unit, mtr.Type = meterSpec(m.GetSpec())
		t.DirectMeter = mtr
		p.DirectMeters[mtr.ID] = mtr
	}
	for _, r := range info.GetRegisters() {
		reg := &Register{ID: r.GetPreamble().GetId(), Name: r.GetPreamble().GetName(), Size: int64(r.GetSize())}
		reg.Kind, reg.Bits, reg.why = dataKind(r.GetTypeSpec(), nt)
		p.Registers[reg.ID] = reg
		p.registerOrder = append(p.registerOrder, reg)
	}
	for _, v := range info.GetValueSets() {
		vs := &ValueSet{ID: v.GetPreamble().GetId(), Name: v.GetPreamble().GetName(), Size: v.GetSize()}
		if vs.Size < 0 {
			return errorf(ErrInvalid, "p4info: value set %s: negative size %d", vs.Name, vs.Size)
		}
		label := "value set " + vs.Name
		fields, byID, kind, prio, err := compileMatchFields(label, v.GetMatch(), nt, false)
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			return errorf(ErrInvalid, "p4info: %s has no match fields", label)
		}
		vs.Fields = fields
		vs.Layout = newKeyLayout(fields, nil)
		vs.match = &Table{ID: vs.ID, Name: vs.Name, label: label, Fields: fields, Kind: kind, fieldByID: byID, fieldDense: denseByID(byID), needsPriority: prio, Layout: vs.Layout}
		p.ValueSets[vs.ID] = vs
		p.valueSetOrder = append(p.valueSetOrder, vs)
	}
	for _, d := range info.GetDigests() {
		p.digestNames[d.GetPreamble().GetId()] = d.GetPreamble().GetName()
		p.digestIDs = append(p.digestIDs, d.GetPreamble().GetId())
	}
	return nil
}

func counterUnit(s *p4configv1.CounterSpec) CounterUnit {
	switch s.GetUnit() {
	case p4configv1.CounterSpec_BYTES:
		return CounterBytes
	case p4configv1.CounterSpec_PACKETS:
		return CounterPackets
	case p4configv1.CounterSpec_BOTH:
		return CounterBoth
	}
	return CounterUnspecified
}

func meterSpec(s *p4configv1.MeterSpec) (MeterUnit, MeterType) {
	u := MeterUnspecified
	switch s.GetUnit() {
	case p4configv1.MeterSpec_BYTES:
		u = MeterBytes
	case p4configv1.MeterSpec_PACKETS:
		u = MeterPackets
	}
	t := MeterTwoRateThreeColor
	switch s.GetType() {
	case p4configv1.MeterSpec_SINGLE_RATE_THREE_COLOR:
		t = MeterSingleRateThreeColor
	case p4configv1.MeterSpec_SINGLE_RATE_TWO_COLOR:
		t = MeterSingleRateTwoColor
	}
	return u, t
}

// dataKind classifies a register's type_spec. bit<W>, int<W> and bool are
// carried (also behind a new_type of one of them); anything else is
// DataUnsupported with the reason.
func dataKind(ts *p4configv1.P4DataTypeSpec, nt newTypes) (DataKind, int, string) {
	for range 8 { // new_type chains are short; bound them anyway
		switch x := ts.GetTypeSpec().(type) {
		case *p4configv1.P4DataTypeSpec_Bitstring:
			switch {
			case x.Bitstring.GetBit() != nil:
				w := int(x.Bitstring.GetBit().GetBitwidth())
				if w <= 0 || w > maxBitwidth {
					return DataUnsupported, 0, "bitwidth out of range"
				}
				return DataBit, w, ""
			case x.Bitstring.GetInt() != nil:
				w := int(x.Bitstring.GetInt().GetBitwidth())
				if w <= 0 || w > maxBitwidth {
					return DataUnsupported, 0, "bitwidth out of range"
				}
				return DataInt, w, ""
			}
			return DataUnsupported, 0, "varbit registers are not supported"
		case *p4configv1.P4DataTypeSpec_Bool:
			return DataBool, 1, ""
		case *p4configv1.P4DataTypeSpec_NewType:
			spec := nt[x.NewType.GetName()]
			if spec == nil || spec.GetTranslatedType() != nil {
				return DataUnsupported, 0, "new_type " + x.NewType.GetName() + " is unknown or translated"
			}
			ts = spec.GetOriginalType()
			continue
		case nil:
			return DataUnsupported, 0, "no type_spec"
		default:
			_ = x
			return DataUnsupported, 0, "only bit<W>, int<W> and bool registers are supported"
		}
	}
	return DataUnsupported, 0, "new_type chain too long"
}

// CountersInOrder lists the indexed counters in P4Info order (backends lay
// out their datapath from it, reproducibly).
func (p *Pipeline) CountersInOrder() []*Counter { return p.counterOrder }

// MetersInOrder lists the indexed meters in P4Info order.
func (p *Pipeline) MetersInOrder() []*Meter { return p.meterOrder }

// RegistersInOrder lists the registers in P4Info order.
func (p *Pipeline) RegistersInOrder() []*Register { return p.registerOrder }

// ProfilesInOrder lists the action profiles in P4Info order.
func (p *Pipeline) ProfilesInOrder() []*ActionProfile { return p.profileOrder }

// ValueSetsInOrder lists the parser value sets in P4Info order.
func (p *Pipeline) ValueSetsInOrder() []*ValueSet { return p.valueSetOrder }
