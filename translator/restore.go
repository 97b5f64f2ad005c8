package translator

import (
	"fmt"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// SavedEntry is an entry as a backend kept it in the kernel, for rebuilding
// the store after a daemon restart. Values are canonical big-endian
// bytestrings (P4Runtime's form), whatever layout the kernel uses.
type SavedEntry struct {
	TableID  uint32
	Match    []FieldMatch // by field index, as in Entry.Match
	Priority int32
	// IsDefault marks a table's default entry (Match empty).
	IsDefault bool
	// ActionID is the P4Info action id; 0 for a default entry without
	// action.
	ActionID uint32
	// Params are the canonical argument values, by parameter index.
	Params             [][]byte
	Const              bool
	Origin             Origin
	Placement          Placement
	ControllerMetadata uint64
	Metadata           []byte
	IdleTimeoutNs      int64
}

// Snapshot is what a datapath that outlived the daemon holds.
type Snapshot struct {
	// Config is the serialized p4.v1.ForwardingPipelineConfig that was
	// committed (Config.Marshal).
	Config  []byte
	Entries []SavedEntry
}

// Restorer is a Backend whose datapath can outlive the daemon (pinned maps,
// P4TC kernel objects). On start the Device asks it for what runs.
type Restorer interface {
	Backend
	// Restore adopts the datapath a previous p4tcd left running and
	// returns its state; it returns (nil, nil) when there is none.
	Restore() (*Snapshot, error)
}

// Marshal serializes the config as the client sent it, for a backend to keep
// next to the datapath.
func (c *Config) Marshal() ([]byte, error) {
	return proto.Marshal(c.Raw)
}

// Restore rebuilds the device from what its backend kept across a daemon
// restart: the pipeline config and every entry, without touching
// forwarding. It reports false when the backend kept nothing.
func (d *Device) Restore() (bool, error) {
	r, ok := d.backend.(Restorer)
	if !ok {
		return false, nil
	}
	snap, err := r.Restore()
	if err != nil || snap == nil {
		return false, err
	}
	var raw p4v1.ForwardingPipelineConfig
	if err := proto.Unmarshal(snap.Config, &raw); err != nil {
		return false, fmt.Errorf("restore config: %w", err)
	}
	c, err := CompileConfig(&raw)
	if err != nil {
		return false, fmt.Errorf("restore config: %w", err)
	}
	st := newStore(c.Pipeline)
	for i, se := range snap.Entries {
		e, err := c.savedEntry(&se)
		if err != nil {
			return false, fmt.Errorf("restore entry %d: %w", i, err)
		}
		op := opInsert
		if e.IsDefault {
			op = opModify
		}
		if _, _, err := st.stage(e, op); err != nil {
			return false, fmt.Errorf("restore entry %d: %w", i, err)
		}
	}
	d.mu.Lock()
	d.cfg, d.st, d.realized = c, st, true
	d.mu.Unlock()
	return true, nil
}

// savedEntry translates a SavedEntry through the same checks as a Write.
func (c *Config) savedEntry(se *SavedEntry) (*Entry, error) {
	t := c.Tables[se.TableID]
	if t == nil {
		return nil, errorf(ErrInvalid, "table id %#x is not in the pipeline", se.TableID)
	}
	te := &p4v1.TableEntry{
		TableId: se.TableID, Priority: se.Priority, IsDefaultAction: se.IsDefault,
		ControllerMetadata: se.ControllerMetadata, Metadata: se.Metadata, IdleTimeoutNs: se.IdleTimeoutNs,
	}
	if !se.IsDefault {
		if len(se.Match) != len(t.Fields) {
			return nil, errorf(ErrInvalid, "table %s: %d match fields, want %d", t.Name, len(se.Match), len(t.Fields))
		}
		for i, f := range t.Fields {
			fm := &se.Match[i]
			if !fm.Set {
				continue
			}
			m := &p4v1.FieldMatch{FieldId: f.ID}
			switch f.Kind {
			case MatchExact:
				m.FieldMatchType = &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: fm.Value}}
			case MatchLPM:
				m.FieldMatchType = &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: fm.Value, PrefixLen: int32(fm.PrefixLen)}}
			case MatchTernary:
				m.FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: fm.Value, Mask: fm.Mask}}
			case MatchRange:
				m.FieldMatchType = &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: fm.Value, High: fm.High}}
			case MatchOptional:
				m.FieldMatchType = &p4v1.FieldMatch_Optional_{Optional: &p4v1.FieldMatch_Optional{Value: fm.Value}}
			}
			te.Match = append(te.Match, m)
		}
	}
	if se.ActionID != 0 {
		a := &p4v1.Action{ActionId: se.ActionID}
		act := c.Actions[se.ActionID]
		if act == nil || len(se.Params) != len(act.Params) {
			return nil, errorf(ErrInvalid, "table %s: action %#x with %d params does not match the pipeline", t.Name, se.ActionID, len(se.Params))
		}
		for i, v := range se.Params {
			a.Params = append(a.Params, &p4v1.Action_Param{ParamId: act.Params[i].ID, Value: v})
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
	}
	op := opInsert
	if se.IsDefault {
		op = opModify
	}
	e, err := c.parseTableEntry(te, op)
	if err != nil {
		return nil, err
	}
	e.Const, e.proto.IsConst, e.Origin, e.Placement = se.Const, se.Const, se.Origin, se.Placement
	return e, nil
}

// datapathEntry turns an entry the datapath created into an Entry with
// its Read form: metadata DatapathMetadata and, in tables with idle
// timeouts, idle_timeout_ns the aging that removes it.
func (c *Config) datapathEntry(de *DatapathEntry) (*Entry, time.Duration, error) {
	se := de.SavedEntry
	aging := se.IdleTimeoutNs
	se.IdleTimeoutNs, se.Metadata, se.ControllerMetadata, se.Const = 0, nil, 0, false
	e, err := c.savedEntry(&se)
	if err != nil {
		return nil, 0, fmt.Errorf("datapath-created entry: %w", err)
	}
	e.Origin, e.Placement = OriginDatapath, PlaceBoth
	e.proto.Metadata = []byte(DatapathMetadata)
	if e.Table.IdleTimeout {
		e.IdleTimeoutNs, e.proto.IdleTimeoutNs = aging, aging
	}
	return e, de.SinceLastHit, nil
}

// Saved returns the SavedEntry form of an entry: what a Restorer must be
// able to give back.
func (e *Entry) Saved() SavedEntry {
	se := SavedEntry{
		TableID: e.Table.ID, Match: e.Match, Priority: e.Priority, IsDefault: e.IsDefault,
		Const: e.Const, Origin: e.Origin, Placement: e.Placement, IdleTimeoutNs: e.IdleTimeoutNs,
	}
	if e.proto != nil {
		se.ControllerMetadata, se.Metadata = e.proto.GetControllerMetadata(), e.proto.GetMetadata()
	}
	if e.Action != nil {
		se.ActionID, se.Params = e.Action.Action.ID, e.Action.Params
	}
	return se
}
