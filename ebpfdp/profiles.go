package ebpfdp

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// Action profiles and selectors (p4tc_externs.h): members are act_bpf
// slots by member id; a group is an array of buckets, each member repeated
// by its weight, with its watch port; entries of indirect tables hold
// P4TC_ACT_MEMBER or P4TC_ACT_GROUP and the id.

// Markers of entries of indirect tables (P4TC_ACT_MEMBER, P4TC_ACT_GROUP).
const (
	actMember = 0xfffffffe
	actGroup  = 0xfffffffd
)

// putMember writes a member (insert or modify): like `tc p4ctrl create
// .../action_profile/<name> member <id> action ...` would on a P4TC kernel
// with action profiles.
func (p *pipeline) putMember(m, prev *translator.Member) error {
	x := p.ext
	mm := x.members[m.Profile.ID]
	if mm == nil {
		return noExtern("action profile %s", m.Profile.Name)
	}
	slot := make([]byte, slotSize)
	if err := encodeAction(slot, m.Action, flagHit, p.ports); err != nil {
		return translator.Errorf(translator.ErrInvalid, "action profile %s: member %d: %v", m.Profile.Name, m.ID, err)
	}
	if err := x.journalRows(mm, false, u32Key(m.ID)); err != nil {
		return err
	}
	undo, err := x.putRecord(extRef(recMember, m.Profile.ID, int64(m.ID)), m.Saved())
	if err != nil {
		return err
	}
	if err := mm.Put(m.ID, slot); err != nil {
		undo()
		return mapError(err, "action profile %s: member %d", m.Profile.Name, m.ID)
	}
	return nil
}

func (p *pipeline) deleteMember(m *translator.Member) error {
	x := p.ext
	mm := x.members[m.Profile.ID]
	if mm == nil {
		return noExtern("action profile %s", m.Profile.Name)
	}
	if err := x.journalRows(mm, false, u32Key(m.ID)); err != nil {
		return err
	}
	if err := mm.Delete(m.ID); err != nil {
		return mapError(err, "action profile %s: delete member %d", m.Profile.Name, m.ID)
	}
	if err := x.delRecord(extRef(recMember, m.Profile.ID, int64(m.ID))); err != nil {
		p.log.Warn("member record outlives its member", "profile", m.Profile.Name, "member", m.ID, "err", err)
	}
	return nil
}

// selectorBuckets lays a group out as buckets: each member repeated by its
// weight (each once when weights are disallowed), round-robin so that
// copies of a member are apart (a member that is down passes its share
// to the next bucket, which is then usually another member). A group
// whose weights sum beyond the capacity has them scaled down to fit,
// every member keeping at least one bucket; more members than buckets is
// RESOURCE_EXHAUSTED.
func selectorBuckets(g *translator.Group, capacity int) ([]translator.GroupMember, error) {
	ms := g.Members
	if len(ms) > capacity {
		return nil, translator.Errorf(translator.ErrFull, "action selector %s: group %d has %d members; its groups hold %d buckets", g.Profile.Name, g.ID, len(ms), capacity)
	}
	w := make([]int, len(ms))
	total := 0
	for i, m := range ms {
		w[i] = max(1, int(m.Weight))
		total += w[i]
	}
	if total > capacity {
		// Scale to the capacity, largest remainders first.
		type rem struct{ i, r int }
		var rems []rem
		total = 0
		sum := 0
		for i := range w {
			sum += w[i]
		}
		for i := range w {
			num := w[i] * capacity
			w[i] = max(1, num/sum)
			rems = append(rems, rem{i, num % sum})
			total += w[i]
		}
		sort.Slice(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
		for k := 0; total < capacity && k < len(rems); k++ {
			w[rems[k].i]++
			total++
		}
		for total > capacity { // the minimum of one pushed it over
			big := 0
			for i := range w {
				if w[i] > w[big] {
					big = i
				}
			}
			w[big]--
			total--
		}
	}
	var out []translator.GroupMember
	for round := 0; len(out) < total; round++ {
		for i, m := range ms {
			if round < w[i] {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// groupValue is struct p4tc_ap<inst>_group for a group.
func (p *pipeline) groupValue(pp *profilePlan, g *translator.Group) ([]byte, error) {
	bs, err := selectorBuckets(g, pp.buckets)
	if err != nil {
		return nil, err
	}
	v := make([]byte, pp.groupValueSize())
	ne.PutUint32(v[0:], uint32(len(bs)))
	for i, b := range bs {
		if b.WatchPort != 0 {
			if _, ok := p.ports.ifindex[b.WatchPort]; !ok {
				return nil, translator.Errorf(translator.ErrInvalid, "action selector %s: group %d: member %d: watch port %d is not a port of this switch (--port)", g.Profile.Name, g.ID, b.Member, b.WatchPort)
			}
		}
		ne.PutUint32(v[8+i*bucketSize:], b.Member)
		ne.PutUint32(v[12+i*bucketSize:], b.WatchPort)
	}
	return v, nil
}

// putGroup writes a group (insert or modify) whole: packets pick from the
// old buckets or the new ones.
func (p *pipeline) putGroup(g, prev *translator.Group) error {
	x := p.ext
	pp := x.plan.profileByID[g.Profile.ID]
	gm := x.groups[g.Profile.ID]
	if pp == nil || gm == nil || !pp.selector() {
		return noExtern("action selector %s", g.Profile.Name)
	}
	v, err := p.groupValue(pp, g)
	if err != nil {
		return err
	}
	if err := x.journalRows(gm, false, u32Key(g.ID)); err != nil {
		return err
	}
	undo, err := x.putRecord(extRef(recGroup, g.Profile.ID, int64(g.ID)), g.Saved())
	if err != nil {
		return err
	}
	if err := gm.Put(g.ID, v); err != nil {
		undo()
		return mapError(err, "action selector %s: group %d", g.Profile.Name, g.ID)
	}
	return nil
}

func (p *pipeline) deleteGroup(g *translator.Group) error {
	x := p.ext
	gm := x.groups[g.Profile.ID]
	if gm == nil {
		return noExtern("action selector %s", g.Profile.Name)
	}
	if err := x.journalRows(gm, false, u32Key(g.ID)); err != nil {
		return err
	}
	if err := gm.Delete(g.ID); err != nil {
		return mapError(err, "action selector %s: delete group %d", g.Profile.Name, g.ID)
	}
	if err := x.delRecord(extRef(recGroup, g.Profile.ID, int64(g.ID))); err != nil {
		p.log.Warn("group record outlives its group", "profile", g.Profile.Name, "group", g.ID, "err", err)
	}
	return nil
}

// encodeHead writes the head of an entry's map value: its action (or, in
// an indirect table, its member or group) and, in a direct table, its
// direct cell.
func (p *pipeline) encodeHead(pl *tablePlan, e *translator.Entry, dst []byte) error {
	if ind := e.Indirect; ind != nil {
		id, marker := ind.Member, uint32(actMember)
		if ind.Member == 0 {
			id, marker = ind.Group, actGroup
		}
		ne.PutUint32(dst[0:], marker)
		dst[4] = flagHit
		ne.PutUint32(dst[headSize:], id)
	} else if e.Action == nil {
		return translator.Errorf(translator.ErrInternal, "table %s: an entry without action", pl.table.Name)
	} else if err := encodeAction(dst, e.Action, flagHit, p.ports); err != nil {
		return err
	}
	if pl.direct() && p.ext != nil {
		ne.PutUint32(dst[pl.directOff():], p.ext.cellOf(e))
	}
	return nil
}

// decodeValue reads the action (or member or group) of an exact or LPM
// map value into se, and notes its direct cell (restore).
func (p *pipeline) decodeValue(pl *tablePlan, v []byte, se *translator.SavedEntry) error {
	switch ne.Uint32(v) {
	case actMember:
		se.Member = ne.Uint32(v[headSize:])
	case actGroup:
		se.Group = ne.Uint32(v[headSize:])
	default:
		a, params, err := pl.decodeAction(v, p.ports)
		if err != nil {
			return err
		}
		se.ActionID, se.Params = a.ID, params
	}
	p.noteCell(pl, se, v)
	return nil
}

// Port liveness (watch ports).

// setPortsDown writes which ports are down into p4tc_port_down.
func (x *extState) setPortsDown(down map[uint32]bool) error {
	if x.portDown == nil {
		return nil
	}
	for port, d := range down {
		if err := x.setPortDown(port, d); err != nil {
			return err
		}
	}
	return nil
}

func (x *extState) setPortDown(port uint32, down bool) error {
	if x.portDown == nil {
		return nil
	}
	var err error
	if down {
		err = x.portDown.Put(port, uint32(1))
	} else if err = x.portDown.Delete(port); err != nil && isNotExist(err) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("port %d liveness: %w", port, err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, ebpf.ErrKeyNotExist) }

// noteCell notes the direct cell in an entry's map value (restore).
func (p *pipeline) noteCell(pl *tablePlan, se *translator.SavedEntry, v []byte) {
	if !pl.direct() || p.ext == nil {
		return
	}
	if d := p.ext.cells[pl.table.ID]; d != nil {
		d.note(entryID(se.Match, se.Priority), ne.Uint32(v[pl.directOff():]))
	}
}
