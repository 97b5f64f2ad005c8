package tcbackend

import (
	"fmt"
	"strings"

	"github.com/p4tcd/p4tcd/translator"
)

// plan is what tcbackend derives from a pipeline config: the P4TC template
// and, for every P4Info table and action, how its entries become P4TC
// runtime attributes. Verify builds it to check a config; Commit keeps it.
type plan struct {
	a     *abiTable
	pname string
	tmpl  *pipelineTemplate
	// tables by P4Info id and by P4TC name ("cb/t").
	tables map[uint32]*tablePlan
	byName map[string]*tablePlan
}

// tablePlan is one table: P4Info's view, P4TC's, and the key rule between.
type tablePlan struct {
	owner *plan
	t     *translator.Table
	tt    *tableTemplate
	// keyBytes is ceil(keysz/8): the length of P4TC's key and mask blobs.
	keyBytes int
	// placement is the table's placement from the device config (entries
	// carry their own, translator.Entry.Placement).
	placement translator.Placement
	// actions by P4Info action id and by P4TC kind ("p/cb/a").
	actions map[uint32]*actionPlan
	byKind  map[string]*actionPlan
}

// actionPlan is one action of a table.
type actionPlan struct {
	act      *translator.Action
	kind     string // "<pipeline>/<cb>/<action>"; "NoAction" for NoAction
	noAction bool
	params   []paramTemplate // by P4Info parameter index
}

// exact reports whether the P4TC table is exact: its entries carry no
// priority and no mask.
func (tp *tablePlan) exact() bool { return tp.tt.typ == tp.owner.a.tableTypeExact }

// buildPlan checks that a config can run on P4TC and derives its plan.
// Everything that cannot be represented is refused here, so that Apply
// fails only for reasons of state (exists, full, permission).
func buildPlan(a *abiTable, c *translator.Config) (*plan, error) {
	if c == nil || c.Pipeline == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: no pipeline")
	}
	prog := c.Program
	if prog == nil || prog.Introspection == nil {
		return nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: the device config must be a p4tcd.v1 DeviceConfig with the P4TC introspection JSON")
	}
	in := prog.Introspection
	x := templateExtras{defaults: map[string]*translator.ActionCall{}, constDefault: map[string]bool{}, timerProfiles: map[string]uint32{}}
	for _, t := range c.TableOrder {
		it := prog.Tables[t.ID].P4TC
		if it == nil {
			return nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: table %s has no introspection record", t.Name)
		}
		x.defaults[it.Name] = t.InitialDefault
		x.constDefault[it.Name] = t.ConstDefault != nil
		if t.IdleTimeout {
			x.timerProfiles[it.Name] = a.maxTimerProfiles
		}
	}
	tmpl, err := buildTemplate(a, in, x)
	if err != nil {
		return nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: %v", err)
	}
	p := &plan{a: a, pname: in.PipelineName, tmpl: tmpl, tables: map[uint32]*tablePlan{}, byName: map[string]*tablePlan{}}
	ttByName := map[string]*tableTemplate{}
	for _, tt := range tmpl.tables {
		ttByName[tt.name] = tt
	}
	for _, t := range c.TableOrder {
		tp, err := p.buildTablePlan(t, prog.Tables[t.ID], ttByName)
		if err != nil {
			return nil, translator.Errorf(translator.ErrInvalid, "p4tc datapath: table %s: %v", t.Name, err)
		}
		p.tables[t.ID] = tp
		p.byName[tp.tt.name] = tp
	}
	return p, nil
}

func (p *plan) buildTablePlan(t *translator.Table, s translator.TableSettings, ttByName map[string]*tableTemplate) (*tablePlan, error) {
	it := s.P4TC
	tt := ttByName[it.Name]
	if tt == nil {
		return nil, fmt.Errorf("no template for P4TC table %s", it.Name)
	}
	tp := &tablePlan{owner: p, t: t, tt: tt, placement: s.Placement, actions: map[uint32]*actionPlan{}, byKind: map[string]*actionPlan{}}
	tp.keyBytes = (int(tt.keySz) + 7) / 8
	if t.Profile != nil {
		return nil, fmt.Errorf("tables implemented by an action profile (%s) have no P4TC form", t.Profile.Name)
	}
	if t.Kind == translator.TableKeyless {
		return nil, fmt.Errorf("keyless tables have no P4TC form (P4TC tables need keysz ≥ 1)")
	}
	for _, f := range t.Fields {
		if f.Kind == translator.MatchRange {
			return nil, fmt.Errorf("field %s: P4TC has no range match", f.Name)
		}
	}
	wantType := p.a.tableTypeExact
	switch t.Kind {
	case translator.TableLPM:
		wantType = p.a.tableTypeLPM
	case translator.TableTernary:
		wantType = p.a.tableTypeTernary
	}
	if tt.typ != wantType {
		return nil, fmt.Errorf("P4Info makes it a %v table, the introspection JSON a P4TC table of type %d", t.Kind, tt.typ)
	}
	if err := checkKeyLayout(t, int(tt.keySz)); err != nil {
		return nil, err
	}
	for _, ar := range t.ActionOrder {
		act := ar.Action
		ap := &actionPlan{act: act}
		ia := it.Action(act.Name)
		switch {
		case ia == nil && act.Name == "NoAction", ia != nil && isNoAction(ia.Name):
			ap.kind, ap.noAction = "NoAction", true
		case ia == nil:
			return nil, fmt.Errorf("action %s is not in the introspection JSON", act.Name)
		default:
			at, err := buildAction(p.a, ia)
			if err != nil {
				return nil, err
			}
			if len(at.params) != len(act.Params) {
				return nil, fmt.Errorf("action %s: %d params in P4Info, %d in the introspection JSON", act.Name, len(act.Params), len(at.params))
			}
			for i, prm := range act.Params {
				if prm.IsString {
					return nil, fmt.Errorf("action %s: param %s is an sdn_string; P4TC params are fixed-width", act.Name, prm.Name)
				}
				if prm.Bits > at.params[i].typ.bits {
					return nil, fmt.Errorf("action %s: param %s is %d bits, its P4TC type %s holds %d", act.Name, prm.Name, prm.Bits, at.params[i].typ.name, at.params[i].typ.bits)
				}
			}
			ap.kind, ap.params = p.pname+"/"+ia.Name, at.params
			if len(ap.kind) >= p.a.actKindSize {
				return nil, fmt.Errorf("action kind %q is longer than P4TC's %d bytes", ap.kind, p.a.actKindSize-1)
			}
		}
		tp.actions[act.ID] = ap
		tp.byKind[ap.kind] = ap
	}
	return tp, nil
}

// checkKeyLayout decides whether P4TC can hold the table's keys. P4TC keys
// are ceil(keysz/8) bytes (keysz = the sum of the fields' widths), while the
// translator lays fields out in native containers (u8, u16, u32, u64, as the
// p4c `tc` backend's BPF key structs do), which for fields that are not a
// whole number of bytes can take more room. The netlink key blob is the
// first ceil(keysz/8) bytes of that layout: the same bytes the datapath's
// key struct starts with. That is exact when every byte that can hold a key
// bit lies in that prefix; the bytes cut off are then always zero padding
// (the top of a host-order container). A layout whose key bits reach past
// the prefix cannot be represented, and neither can one whose BPF key size
// (8 + round_up(bytes, 8)) differs from the one P4TC expects for keysz:
// such a table is refused.
func checkKeyLayout(t *translator.Table, keySz int) error {
	l := t.Layout
	if l == nil {
		return fmt.Errorf("its key cannot be laid out for P4TC (sdn_string fields)")
	}
	if l.Bits != keySz {
		return fmt.Errorf("the P4Info key is %d bits, the P4TC keysize %d", l.Bits, keySz)
	}
	keyBytes := (keySz + 7) / 8
	for i, fl := range l.Fields {
		n := (fl.Bits + 7) / 8
		lo := fl.Offset
		if !fl.HostOrder {
			lo = fl.Offset + fl.Size - n
		}
		if hi := lo + n; hi > keyBytes {
			return fmt.Errorf("key field %s occupies bytes %d..%d of the key, but a P4TC key of %d bits is %d bytes: fields that are not whole bytes leave gaps P4TC cannot represent; reorder or widen the key fields",
				t.Fields[i].Name, lo, hi-1, keySz, keyBytes)
		}
	}
	if round8(l.Size) != round8(keyBytes) {
		return fmt.Errorf("the datapath key struct is %d bytes, P4TC expects %d for %d bits", 8+round8(l.Size), 8+round8(keyBytes), keySz)
	}
	return nil
}

func round8(n int) int { return (n + 7) &^ 7 }

// sameTemplate reports whether two plans have the same P4TC template, so
// that one can replace the other without touching the kernel.
func (p *plan) sameTemplate(q *plan) bool {
	if p == nil || q == nil || p.pname != q.pname {
		return false
	}
	e := encoder{p.a}
	x, y := e.templateScript(p.tmpl), e.templateScript(q.tmpl)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if string(x[i].serialize(0)) != string(y[i].serialize(0)) {
			return false
		}
	}
	return true
}

// describe names a table for messages.
func (tp *tablePlan) describe() string {
	if tp.t.Name == strings.ReplaceAll(tp.tt.name, "/", ".") {
		return tp.t.Name
	}
	return fmt.Sprintf("%s (P4TC %s)", tp.t.Name, tp.tt.name)
}
