package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// MeterConfig is a meter cell's configuration, exactly as the controller
// wrote it (reads return it unchanged: P4Runtime §8.4 read-write symmetry;
// a datapath that quantises rates keeps the requested values here).
// Rates are per second in the meter's unit; bursts in the unit.
type MeterConfig struct {
	CIR, CBurst, PIR, PBurst, EBurst int64
}

func (c *MeterConfig) proto() *p4v1.MeterConfig {
	if c == nil {
		return nil
	}
	return &p4v1.MeterConfig{Cir: c.CIR, Cburst: c.CBurst, Pir: c.PIR, Pburst: c.PBurst, Eburst: c.EBurst}
}

// parseMeterConfig checks a written MeterConfig against the meter's type
// (P4Runtime §9.4): trTCM takes no eburst; srTCM needs pir == cir and
// pburst == cburst; the two-colour marker both. Negative values are
// refused too.
func parseMeterConfig(m *Meter, mc *p4v1.MeterConfig, what string) (*MeterConfig, error) {
	c := &MeterConfig{CIR: mc.GetCir(), CBurst: mc.GetCburst(), PIR: mc.GetPir(), PBurst: mc.GetPburst(), EBurst: mc.GetEburst()}
	if c.CIR < 0 || c.CBurst < 0 || c.PIR < 0 || c.PBurst < 0 || c.EBurst < 0 {
		return nil, errorf(ErrInvalid, "%s: negative rate or burst in %+v", what, *c)
	}
	single := c.PIR == c.CIR && c.PBurst == c.CBurst
	switch m.Type {
	case MeterTwoRateThreeColor:
		if c.EBurst != 0 {
			return nil, errorf(ErrInvalid, "%s: a %v meter takes no eburst (got %d)", what, m.Type, c.EBurst)
		}
	case MeterSingleRateThreeColor:
		if !single {
			return nil, errorf(ErrInvalid, "%s: a %v meter needs pir == cir and pburst == cburst (got cir %d pir %d cburst %d pburst %d)", what, m.Type, c.CIR, c.PIR, c.CBurst, c.PBurst)
		}
	case MeterSingleRateTwoColor:
		if !single || c.EBurst != 0 {
			return nil, errorf(ErrInvalid, "%s: a %v meter needs pir == cir, pburst == cburst and no eburst (got cir %d pir %d cburst %d pburst %d eburst %d)", what, m.Type, c.CIR, c.PIR, c.CBurst, c.PBurst, c.EBurst)
		}
	}
	return c, nil
}

// MeterWrite configures cells of an indexed meter.
type MeterWrite struct {
	Meter *Meter
	// Index is the cell; -1 is every cell (a MeterEntry without index).
	Index int64
	// Config is the new config; nil is the default (every packet GREEN).
	Config *MeterConfig

	prev cellsState[*MeterConfig]
}

// meterState is the config of each cell of an indexed meter.
type meterState struct {
	m *Meter
	cellsState[*MeterConfig]
}

func (w *batch) stageMeter(i int, me *p4v1.MeterEntry, op writeOp) error {
	cfg := w.d.cfg
	if op != opModify {
		return errorf(ErrInvalid, "meter entries can only be modified, not %s (P4Runtime §9.4.2)", opName(op))
	}
	if me.GetMeterId() == 0 {
		return errorf(ErrInvalid, "meter_id 0 is only valid in wildcard reads")
	}
	m := cfg.Meters[me.GetMeterId()]
	if m == nil {
		return errorf(ErrInvalid, "meter id %#x is not an indexed meter of the pipeline%s", me.GetMeterId(), cfg.kindHint(me.GetMeterId()))
	}
	what := "meter " + m.Name
	if !w.sc.allows(m.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternMeters, what); err != nil {
		return err
	}
	idx, _, err := cellIndex(me.GetIndex(), m.Size, what)
	if err != nil {
		return err
	}
	if me.GetCounterData() != nil {
		return errorf(ErrUnsupported, "%s: per-colour meter counters (counter_data) are not supported", what)
	}
	var c *MeterConfig
	if me.GetConfig() != nil {
		if c, err = parseMeterConfig(m, me.GetConfig(), what); err != nil {
			return err
		}
	}
	ms := w.d.st.meters[m.ID]
	mw := &MeterWrite{Meter: m, Index: idx, Config: c}
	var u func()
	mw.prev, u = ms.write(idx, c)
	w.pushExt(i, &ExternOp{Kind: ExtWriteMeter, Meter: mw}, u)
	return nil
}

func (w *batch) stageDirectMeter(i int, dm *p4v1.DirectMeterEntry, op writeOp) error {
	if op != opModify {
		return errorf(ErrInvalid, "direct meter entries can only be modified, not %s (P4Runtime §9.4.1)", opName(op))
	}
	ts, e, err := w.d.lookupEntry(dm.GetTableEntry(), "direct meter entry")
	if err != nil {
		return err
	}
	t := ts.table
	if t.DirectMeter == nil {
		return errorf(ErrInvalid, "table %s has no direct meter", t.Name)
	}
	what := "table " + t.Name + ": direct meter " + t.DirectMeter.Name
	if !w.sc.allows(t.ID) && !w.sc.allows(t.DirectMeter.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternDirectMeters, what); err != nil {
		return err
	}
	if dm.GetCounterData() != nil {
		return errorf(ErrUnsupported, "%s: per-colour meter counters (counter_data) are not supported", what)
	}
	var c *MeterConfig
	if dm.GetConfig() != nil {
		// §9.4.1: unset config resets the meter to its default.
		if c, err = parseMeterConfig(t.DirectMeter, dm.GetConfig(), what); err != nil {
			return err
		}
	}
	ne := withDirect(e, func(d *DirectResources) { d.Meter = c })
	w.pushExtUndo(i, &ExternOp{Kind: ExtWriteDirectMeter, Entry: ne, PrevEntry: e}, nil, replaceEntry(ts, e, ne))
	return nil
}
