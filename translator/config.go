package translator

import (
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// DeviceConfigFormat is the value of DeviceConfig.format that marks
// p4_device_config bytes as a p4tcd device config.
const DeviceConfigFormat = "p4tcd.v1"

// Placement says which tiers hold a controller entry (DESIGN.md decision 5).
type Placement uint8

const (
	// PlaceBoth: software datapath and hardware tier (the default).
	PlaceBoth Placement = iota
	// PlaceSW: software datapath only (P4TC skip_hw).
	PlaceSW
	// PlaceHW: hardware tier only (P4TC skip_sw).
	PlaceHW
)

func (p Placement) String() string { return [...]string{"both", "sw", "hw"}[p] }

// PlacementOf converts the protobuf placement (a table's or a role's);
// unspecified is ok=false.
func PlacementOf(p p4tcdv1.Placement) (pl Placement, ok bool) {
	switch p {
	case p4tcdv1.Placement_PLACEMENT_SW:
		return PlaceSW, true
	case p4tcdv1.Placement_PLACEMENT_HW:
		return PlaceHW, true
	case p4tcdv1.Placement_PLACEMENT_BOTH:
		return PlaceBoth, true
	}
	return PlaceBoth, false
}

// TableSettings are p4tcd's per-table settings from the device config.
type TableSettings struct {
	// Placement of controller entries by default.
	Placement Placement
	// PoolSize is the number of preallocated slots for datapath-created
	// entries; 0 forbids them.
	PoolSize uint32
	// TimerProfilesMs are P4TC's timer profiles: the idle timeout of
	// profile i, in ms. Never empty for a table with a pool (one profile of
	// DefaultAgingMs unless the device config lists them).
	TimerProfilesMs []uint32
	// P4TC is the table's introspection record, if any.
	P4TC *IntrospectTable
}

// Program is what the device config says beyond P4Info: the datapath
// objects and P4TC's view of the program. It is nil when the
// p4_device_config is not a p4tcd device config (the control-plane-only
// backend accepts any bytes, as PI-style clients send their own).
type Program struct {
	Name          string
	Introspection *Introspection // may be nil
	TCObject      []byte
	XDPObject     []byte
	// Tables holds settings by P4Info table id; a table without an entry
	// has the zero settings.
	Tables map[uint32]TableSettings
}

// Config is a compiled ForwardingPipelineConfig.
type Config struct {
	*Pipeline
	// Program is nil for an opaque device config.
	Program *Program
	// Raw is the config as the client sent it, returned by
	// GetForwardingPipelineConfig (read-write symmetry).
	Raw *p4v1.ForwardingPipelineConfig
	// initial are the device config's initial entries.
	initial []*p4v1.Update
}

// CompileConfig checks a ForwardingPipelineConfig: its P4Info and, when the
// device config is a p4tcd DeviceConfig, the introspection and initial
// entries, and applies P4TC's layouts to the tables.
func CompileConfig(cfg *p4v1.ForwardingPipelineConfig) (*Config, error) {
	if cfg == nil {
		return nil, errorf(ErrInvalid, "no config given")
	}
	p, err := Compile(cfg.GetP4Info())
	if err != nil {
		return nil, err
	}
	c := &Config{Pipeline: p, Raw: cfg}
	dc, ok := parseDeviceConfig(cfg.GetP4DeviceConfig())
	if !ok {
		return c, nil
	}
	prog := &Program{
		Name: dc.GetPipelineName(), TCObject: dc.GetTcObject(), XDPObject: dc.GetXdpObject(),
		Tables: map[uint32]TableSettings{},
	}
	if prog.Name == "" {
		return nil, errorf(ErrInvalid, "device config: no pipeline_name")
	}
	if j := dc.GetIntrospectionJson(); len(j) > 0 {
		in, err := ParseIntrospection(j)
		if err != nil {
			return nil, err
		}
		if in.PipelineName != prog.Name {
			return nil, errorf(ErrInvalid, "device config: introspection is for pipeline %q, not %q", in.PipelineName, prog.Name)
		}
		prog.Introspection = in
		if err := applyIntrospection(p, prog, in); err != nil {
			return nil, err
		}
	}
	for _, tc := range dc.GetTables() {
		t := p.Tables[tc.GetTableId()]
		if t == nil {
			return nil, errorf(ErrInvalid, "device config: table id %#x is not a table%s", tc.GetTableId(), p.kindHint(tc.GetTableId()))
		}
		s := prog.Tables[t.ID]
		s.Placement, _ = PlacementOf(tc.GetPlacement())
		s.PoolSize = tc.GetDatapathPoolSize()
		if s.PoolSize > 0 && t.Kind != TableExact {
			// P4TC creates datapath entries only in exact tables.
			return nil, errorf(ErrInvalid, "device config: table %s: datapath-created entries need an exact table, not %v", t.Name, t.Kind)
		}
		if n := len(tc.GetTimerProfilesMs()); n > MaxTimerProfiles {
			return nil, errorf(ErrInvalid, "device config: table %s: %d timer profiles; P4TC allows %d", t.Name, n, MaxTimerProfiles)
		}
		for i, ms := range tc.GetTimerProfilesMs() {
			if ms == 0 || ms > maxAgingMs {
				return nil, errorf(ErrInvalid, "device config: table %s: timer profile %d is %d ms; want 1..%d", t.Name, i, ms, maxAgingMs)
			}
		}
		s.TimerProfilesMs = tc.GetTimerProfilesMs()
		prog.Tables[t.ID] = s
	}
	for i, u := range dc.GetInitialEntries() {
		if u.GetType() != p4v1.Update_INSERT || u.GetEntity().GetTableEntry() == nil {
			return nil, errorf(ErrInvalid, "device config: initial entry %d must be an INSERT of a table entry", i)
		}
	}
	for id, s := range prog.Tables {
		if len(s.TimerProfilesMs) == 0 {
			s.TimerProfilesMs = []uint32{DefaultAgingMs}
			prog.Tables[id] = s
		}
	}
	c.Program = prog
	c.initial = dc.GetInitialEntries()
	return c, nil
}

// P4TC's aging limits (include/net/p4tc.h).
const (
	// DefaultAgingMs is the idle timeout of timer profile 0 when the
	// device config gives none (P4TC_DEFAULT_T_AGING_MS).
	DefaultAgingMs = 30000
	// MaxTimerProfiles bounds a table's timer profiles
	// (P4TC_MAX_NUM_TIMER_PROFILES).
	MaxTimerProfiles = 16
	// maxAgingMs is P4TC_MAX_T_AGING_MS (ten days).
	maxAgingMs = 864000000
)

// AgingMs is the idle timeout of a datapath-created entry made with
// timer profile id: the profile's, or profile 0's when id is not a profile
// (P4TC falls back the same way).
func (s TableSettings) AgingMs(id uint32) uint32 {
	if int(id) < len(s.TimerProfilesMs) {
		return s.TimerProfilesMs[id]
	}
	if len(s.TimerProfilesMs) > 0 {
		return s.TimerProfilesMs[0]
	}
	return DefaultAgingMs
}

// Settings returns the device config's settings of table id (the zero
// settings with one default timer profile when there are none).
func (p *Program) Settings(id uint32) TableSettings {
	if p == nil {
		return TableSettings{TimerProfilesMs: []uint32{DefaultAgingMs}}
	}
	s, ok := p.Tables[id]
	if !ok || len(s.TimerProfilesMs) == 0 {
		s.TimerProfilesMs = []uint32{DefaultAgingMs}
	}
	return s
}

// parseDeviceConfig decodes p4_device_config as a p4tcd DeviceConfig; ok is
// false when the bytes are something else.
func parseDeviceConfig(b []byte) (*p4tcdv1.DeviceConfig, bool) {
	if len(b) == 0 {
		return nil, false
	}
	var dc p4tcdv1.DeviceConfig
	if err := proto.Unmarshal(b, &dc); err != nil || dc.GetFormat() != DeviceConfigFormat {
		return nil, false
	}
	return &dc, true
}

// applyIntrospection matches every P4Info table and action to P4TC's
// introspection and rebuilds the layouts with P4TC's types.
func applyIntrospection(p *Pipeline, prog *Program, in *Introspection) error {
	seenAction := map[uint32]bool{}
	for _, t := range p.TableOrder {
		it := in.Table(t.Name)
		if it == nil {
			return errorf(ErrInvalid, "introspection json: no table for P4Info table %s", t.Name)
		}
		if len(it.KeyFields) != len(t.Fields) {
			return errorf(ErrInvalid, "introspection json: table %s has %d key fields, P4Info %d", it.Name, len(it.KeyFields), len(t.Fields))
		}
		hints := make([]FieldHint, len(t.Fields))
		for i, f := range t.Fields {
			kf := it.KeyFields[i]
			if kf.Bitwidth != f.Bits {
				return errorf(ErrInvalid, "introspection json: table %s: key field %s is %d bits, P4Info field %s %d", it.Name, kf.Name, kf.Bitwidth, f.Name, f.Bits)
			}
			hints[i] = hintOf(kf.Type)
		}
		if !t.anyString() {
			t.Layout = newKeyLayout(t.Fields, hints)
		}
		s := prog.Tables[t.ID]
		s.P4TC = it
		prog.Tables[t.ID] = s
		if !t.initialFromP4Info {
			// Controllers built on P4Runtime protos older than 1.4 drop
			// initial_default_action from the P4Info they push; the
			// introspection still says which action a miss takes.
			if ac := introspectDefault(t, it); ac != nil {
				t.InitialDefault = ac
			}
		}
		for _, ar := range t.ActionOrder {
			ia := it.Action(ar.Action.Name)
			if ia == nil {
				if ar.Action.Name == "NoAction" {
					continue // P4TC's NoAction is implicit (act_id 0)
				}
				return errorf(ErrInvalid, "introspection json: table %s has no action %s", it.Name, ar.Action.Name)
			}
			if len(ia.Params) != len(ar.Action.Params) {
				return errorf(ErrInvalid, "introspection json: action %s has %d params, P4Info %d", ia.Name, len(ia.Params), len(ar.Action.Params))
			}
			if seenAction[ar.Action.ID] {
				continue
			}
			seenAction[ar.Action.ID] = true
			ph := make([]FieldHint, len(ia.Params))
			for i, prm := range ia.Params {
				if prm.Bitwidth != ar.Action.Params[i].Bits {
					return errorf(ErrInvalid, "introspection json: action %s: param %s is %d bits, P4Info %d", ia.Name, prm.Name, prm.Bitwidth, ar.Action.Params[i].Bits)
				}
				ph[i] = hintOf(prm.Type)
			}
			if l := newParamLayout(ar.Action.Params, ph); l != nil {
				ar.Action.Layout = l
			}
			if ar.Action.P4TCID == 0 {
				ar.Action.P4TCID = ia.ID
			}
		}
	}
	return nil
}

// introspectDefault is the parameterless action the introspection marks
// default_miss_action for t, or nil.
func introspectDefault(t *Table, it *IntrospectTable) *ActionCall {
	for _, ar := range t.ActionOrder {
		ia := it.Action(ar.Action.Name)
		if ia != nil && ia.DefaultMissAction && len(ar.Action.Params) == 0 && !ar.TableOnly {
			return &ActionCall{Action: ar.Action, Params: [][]byte{}}
		}
	}
	return nil
}

func (t *Table) anyString() bool {
	for _, f := range t.Fields {
		if f.IsString {
			return true
		}
	}
	return false
}

// InitialEntries translates the device config's initial entries.
func (c *Config) initialEntries() ([]*Entry, error) {
	out := make([]*Entry, 0, len(c.initial))
	for i, u := range c.initial {
		te := proto.Clone(u.GetEntity().GetTableEntry()).(*p4v1.TableEntry)
		te.IsConst = false // the table, not the file, says what is const
		e, err := c.parseTableEntry(te, opInsert)
		if err != nil {
			return nil, fmt.Errorf("initial entry %d: %w", i, err)
		}
		if e.Table.IsConst {
			e.Const = true
			e.materialise().IsConst = true
		}
		e.Placement = c.Program.Settings(e.Table.ID).Placement
		out = append(out, e)
	}
	return out, nil
}
