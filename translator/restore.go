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
	// Member and Group are the action of an entry of an indirect table
	// (ActionID is then 0); for a one-shot entry Group is the hidden
	// group and OneShot its actions.
	Member, Group uint32
	OneShot       []SavedSetAction
	// Meter is the entry's direct meter config as written (nil: the
	// default). Direct counters are read live and need no saving.
	Meter *MeterConfig
}

// SavedSetAction is one action of a one-shot entry.
type SavedSetAction struct {
	ActionID    uint32
	Params      [][]byte
	Weight      int32
	WatchPort   uint32
	LegacyWatch bool
	// Member is the hidden member the action runs as.
	Member uint32
}

// SavedMember is an action profile member a backend kept.
type SavedMember struct {
	ProfileID, ID uint32
	ActionID      uint32
	Params        [][]byte
	// OneShot marks the hidden members of one-shot entries.
	OneShot bool
}

// SavedGroup is an action selector group a backend kept.
type SavedGroup struct {
	ProfileID, ID uint32
	Members       []GroupMember
	MaxSize       int32
	OneShot       bool
}

// SavedMeterCell is the config of a cell of an indexed meter, as written.
type SavedMeterCell struct {
	MeterID uint32
	Index   int64
	Config  MeterConfig
}

// SavedValueSet is the members of a value set a backend kept.
type SavedValueSet struct {
	ValueSetID uint32
	// Members holds each member's match, by field index.
	Members [][]FieldMatch
}

// Snapshot is what a datapath that outlived the daemon holds. Counters and
// registers are read live and need no saving; digest configs are
// control-plane state no backend sees, so they do not survive a restart
// (controllers configure digests again when they connect).
type Snapshot struct {
	// Config is the serialized p4.v1.ForwardingPipelineConfig that was
	// committed (Config.Marshal).
	Config  []byte
	Entries []SavedEntry
	// Members and Groups include the hidden ones of one-shot entries.
	Members   []SavedMember
	Groups    []SavedGroup
	Multicast []MulticastGroup
	Clones    []CloneSession
	ValueSets []SavedValueSet
	// Meters lists the cells of indexed meters not at their default.
	Meters []SavedMeterCell
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
	if err := d.restoreExterns(c, st, snap); err != nil {
		return false, err
	}
	var enc []byte
	for i, se := range snap.Entries {
		e, err := c.savedEntry(&se)
		if err != nil {
			return false, fmt.Errorf("restore entry %d: %w", i, err)
		}
		enc = e.compact(enc)
		if e.Indirect != nil {
			if err := checkRefs(st, e); err != nil {
				return false, fmt.Errorf("restore entry %d: %w", i, err)
			}
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
	d.setConfig(c)
	d.st, d.realized = st, true
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
		te.Match = matchProto(t.Fields, se.Match)
	}
	switch {
	case se.ActionID != 0:
		a, err := c.actionProto(se.ActionID, se.Params)
		if err != nil {
			return nil, errorf(ErrInvalid, "table %s: %v", t.Name, err)
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
	case len(se.OneShot) > 0:
		set := &p4v1.ActionProfileActionSet{}
		for _, sa := range se.OneShot {
			a, err := c.actionProto(sa.ActionID, sa.Params)
			if err != nil {
				return nil, errorf(ErrInvalid, "table %s: %v", t.Name, err)
			}
			pa := &p4v1.ActionProfileAction{Action: a, Weight: sa.Weight}
			switch {
			case sa.LegacyWatch:
				pa.WatchKind = &p4v1.ActionProfileAction_Watch{Watch: int32(sa.WatchPort)}
			case sa.WatchPort != 0:
				pa.WatchKind = &p4v1.ActionProfileAction_WatchPort{WatchPort: portBytes(sa.WatchPort)}
			}
			set.ActionProfileActions = append(set.ActionProfileActions, pa)
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileActionSet{ActionProfileActionSet: set}}
	case se.Member != 0:
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: se.Member}}
	case se.Group != 0:
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileGroupId{ActionProfileGroupId: se.Group}}
	}
	if se.Meter != nil && t.DirectMeter != nil {
		te.MeterConfig = se.Meter.proto()
	}
	op := opInsert
	if se.IsDefault {
		op = opModify
	}
	e, err := c.parseTableEntry(te, op)
	if err != nil {
		return nil, err
	}
	if set := e.Indirect.oneShot(); set != nil {
		// The datapath knows the hidden group and members by the ids
		// they were given.
		e.Indirect.Group = se.Group
		for i := range set.Actions {
			set.Actions[i].Member = se.OneShot[i].Member
		}
	}
	e.Const, e.materialise().IsConst, e.Origin, e.Placement = se.Const, se.Const, se.Origin, se.Placement
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
	te := e.materialise()
	te.Metadata = []byte(DatapathMetadata)
	if e.Table.IdleTimeout {
		e.IdleTimeoutNs, te.IdleTimeoutNs = aging, aging
	}
	return e, de.SinceLastHit, nil
}

func (ind *IndirectAction) oneShot() *ActionSet {
	if ind == nil {
		return nil
	}
	return ind.OneShot
}

// actionProto renders a saved action call for the write checks.
func (c *Config) actionProto(id uint32, params [][]byte) (*p4v1.Action, error) {
	act := c.Actions[id]
	if act == nil || len(params) != len(act.Params) {
		return nil, errorf(ErrInvalid, "action %#x with %d params does not match the pipeline", id, len(params))
	}
	a := &p4v1.Action{ActionId: id}
	for i, v := range params {
		a.Params = append(a.Params, &p4v1.Action_Param{ParamId: act.Params[i].ID, Value: v})
	}
	return a, nil
}

// portBytes is the canonical bytestring of a port number.
func portBytes(p uint32) []byte {
	b := []byte{byte(p >> 24), byte(p >> 16), byte(p >> 8), byte(p)}
	return canonicalPort(b)
}

// checkRefs checks that the members and groups a restored entry uses were
// restored.
func checkRefs(st *store, e *Entry) error {
	ps := st.tables[e.Table.ID].prof
	if ps == nil {
		return errorf(ErrInvalid, "table %s is not indirect", e.Table.Name)
	}
	ind := e.Indirect
	if ind.Member != 0 && ps.members[ind.Member] == nil {
		return errorf(ErrInvalid, "table %s: member %d was not restored", e.Table.Name, ind.Member)
	}
	if g := ps.groups[ind.Group]; ind.Group != 0 && (g == nil || g.OneShot != (ind.OneShot != nil)) {
		return errorf(ErrInvalid, "table %s: group %d was not restored as such", e.Table.Name, ind.Group)
	}
	return nil
}

// restoreExterns rebuilds the externs a backend kept, through the same
// checks as Writes (a throwaway Device on st that hands the backend
// nothing), then the hidden members and groups of one-shot entries.
func (d *Device) restoreExterns(c *Config, st *store, snap *Snapshot) error {
	tmp := &Device{cfg: c, st: st, externs: d.externs, caps: d.caps}
	var ups []*p4v1.Update
	add := func(e *p4v1.Entity, t p4v1.Update_Type) { ups = append(ups, &p4v1.Update{Type: t, Entity: e}) }
	for _, m := range snap.Members {
		if m.OneShot {
			continue
		}
		a, err := c.actionProto(m.ActionID, m.Params)
		if err != nil {
			return fmt.Errorf("restore member %d: %w", m.ID, err)
		}
		add(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{ActionProfileId: m.ProfileID, MemberId: m.ID, Action: a}}}, p4v1.Update_INSERT)
	}
	for _, g := range snap.Groups {
		if !g.OneShot {
			add(&p4v1.Entity{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: g.proto()}}, p4v1.Update_INSERT)
		}
	}
	for i := range snap.Multicast {
		g := &snap.Multicast[i]
		add(&p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: &p4v1.MulticastGroupEntry{
				MulticastGroupId: g.ID, Replicas: replicasProto(g.Replicas), Metadata: g.Metadata}}}}}, p4v1.Update_INSERT)
	}
	for i := range snap.Clones {
		cs := &snap.Clones[i]
		add(&p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{
			Type: &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: &p4v1.CloneSessionEntry{
				SessionId: cs.ID, Replicas: replicasProto(cs.Replicas), ClassOfService: cs.ClassOfService, PacketLengthBytes: cs.PacketLengthBytes}}}}}, p4v1.Update_INSERT)
	}
	for _, v := range snap.ValueSets {
		vs := c.ValueSets[v.ValueSetID]
		if vs == nil {
			return errorf(ErrInvalid, "restore: value set id %#x is not in the pipeline", v.ValueSetID)
		}
		ve := &p4v1.ValueSetEntry{ValueSetId: vs.ID}
		for _, m := range v.Members {
			ve.Members = append(ve.Members, &p4v1.ValueSetMember{Match: matchProto(vs.Fields, m)})
		}
		add(&p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: ve}}, p4v1.Update_MODIFY)
	}
	for _, m := range snap.Meters {
		add(&p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{MeterId: m.MeterID, Index: &p4v1.Index{Index: m.Index}, Config: m.Config.proto()}}}, p4v1.Update_MODIFY)
	}
	if len(ups) > 0 {
		errs, err := tmp.Write(ups, p4v1.WriteRequest_CONTINUE_ON_ERROR, nil)
		if err != nil {
			return fmt.Errorf("restore externs: %w", err)
		}
		for i, e := range errs {
			if e != nil {
				return fmt.Errorf("restore extern %d (%s): %w", i, entityName(ups[i].GetEntity()), e)
			}
		}
	}
	for _, m := range snap.Members {
		if !m.OneShot {
			continue
		}
		prof := c.Profiles[m.ProfileID]
		if prof == nil {
			return errorf(ErrInvalid, "restore: action profile id %#x is not in the pipeline", m.ProfileID)
		}
		a, err := c.actionProto(m.ActionID, m.Params)
		if err != nil {
			return fmt.Errorf("restore member %d: %w", m.ID, err)
		}
		ac, err := c.parseMemberAction(prof, a, "restore: one-shot member "+itoa(uint64(m.ID)))
		if err != nil {
			return err
		}
		ps := st.profiles[prof.ID]
		ps.putMember(m.ID, nil, &Member{Profile: prof, ID: m.ID, Action: ac, OneShot: true})
	}
	for _, g := range snap.Groups {
		if !g.OneShot {
			continue
		}
		prof := c.Profiles[g.ProfileID]
		if prof == nil || !prof.WithSelector {
			return errorf(ErrInvalid, "restore: action selector id %#x is not in the pipeline", g.ProfileID)
		}
		ps := st.profiles[prof.ID]
		for _, m := range g.Members {
			if pm := ps.members[m.Member]; pm == nil || !pm.OneShot {
				return errorf(ErrInvalid, "restore: one-shot group %d: member %d was not restored", g.ID, m.Member)
			}
		}
		ps.putGroup(g.ID, nil, &Group{Profile: prof, ID: g.ID, Members: g.Members, OneShot: true, size: groupSize(prof, g.Members)})
	}
	return nil
}

func (g *SavedGroup) proto() *p4v1.ActionProfileGroup {
	out := &p4v1.ActionProfileGroup{ActionProfileId: g.ProfileID, GroupId: g.ID, MaxSize: g.MaxSize}
	for _, m := range g.Members {
		pm := &p4v1.ActionProfileGroup_Member{MemberId: m.Member, Weight: m.Weight}
		switch {
		case m.LegacyWatch:
			pm.WatchKind = &p4v1.ActionProfileGroup_Member_Watch{Watch: int32(m.WatchPort)}
		case m.WatchPort != 0:
			pm.WatchKind = &p4v1.ActionProfileGroup_Member_WatchPort{WatchPort: portBytes(m.WatchPort)}
		}
		out.Members = append(out.Members, pm)
	}
	return out
}

func replicasProto(rs []Replica) []*p4v1.Replica {
	out := make([]*p4v1.Replica, len(rs))
	for i, r := range rs {
		pr := &p4v1.Replica{Instance: r.Instance}
		if r.LegacyPort {
			pr.PortKind = &p4v1.Replica_EgressPort{EgressPort: r.Port}
		} else {
			pr.PortKind = &p4v1.Replica_Port{Port: portBytes(r.Port)}
		}
		for _, b := range r.Backups {
			pr.BackupReplicas = append(pr.BackupReplicas, &p4v1.BackupReplica{Port: portBytes(b.Port), Instance: b.Instance})
		}
		out[i] = pr
	}
	return out
}

// matchProto renders a canonical match (by field index) as FieldMatches.
func matchProto(fields []*MatchField, match []FieldMatch) []*p4v1.FieldMatch {
	var out []*p4v1.FieldMatch
	for i, f := range fields {
		if i >= len(match) || !match[i].Set {
			continue
		}
		fm := &match[i]
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
		out = append(out, m)
	}
	return out
}

// Saved returns the SavedEntry form of an entry: what a Restorer must be
// able to give back.
func (e *Entry) Saved() SavedEntry {
	se := SavedEntry{
		TableID: e.Table.ID, Match: e.Match, Priority: e.Priority, IsDefault: e.IsDefault,
		Const: e.Const, Origin: e.Origin, Placement: e.Placement, IdleTimeoutNs: e.IdleTimeoutNs,
	}
	se.ControllerMetadata, se.Metadata = e.metadata()
	if e.Action != nil {
		se.ActionID, se.Params = e.Action.Action.ID, e.Action.Params
	}
	if ind := e.Indirect; ind != nil {
		se.Member, se.Group = ind.Member, ind.Group
		if ind.OneShot != nil {
			for _, a := range ind.OneShot.Actions {
				se.OneShot = append(se.OneShot, SavedSetAction{ActionID: a.Action.Action.ID, Params: a.Action.Params,
					Weight: a.Weight, WatchPort: a.WatchPort, LegacyWatch: a.LegacyWatch, Member: a.Member})
			}
		}
	}
	if e.Direct != nil {
		se.Meter = e.Direct.Meter
	}
	return se
}

// Saved returns the SavedMember form of a member.
func (m *Member) Saved() SavedMember {
	return SavedMember{ProfileID: m.Profile.ID, ID: m.ID, ActionID: m.Action.Action.ID, Params: m.Action.Params, OneShot: m.OneShot}
}

// Saved returns the SavedGroup form of a group.
func (g *Group) Saved() SavedGroup {
	return SavedGroup{ProfileID: g.Profile.ID, ID: g.ID, Members: g.Members, MaxSize: g.MaxSize, OneShot: g.OneShot}
}

// Saved returns the SavedValueSet form of value set members.
func (w *ValueSetWrite) Saved() SavedValueSet {
	sv := SavedValueSet{ValueSetID: w.ValueSet.ID}
	for _, m := range w.Members {
		sv.Members = append(sv.Members, m.Match)
	}
	return sv
}
