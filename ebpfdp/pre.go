package ebpfdp

import (
	"bytes"
	"sort"

	"github.com/p4tcd/p4tcd/translator"
)

// The packet replication engine (p4tc_pre.h) and parser value sets.

// replicasValue lays replicas out as struct p4tc_replicas: each with the
// ifindex of its port.
func (p *pipeline) replicasValue(rs []translator.Replica, cos uint32, what string) ([]byte, error) {
	if len(rs) > maxReplicas {
		return nil, translator.Errorf(translator.ErrFull, "%s: %d replicas; the ebpf datapath replicates to at most %d", what, len(rs), maxReplicas)
	}
	v := make([]byte, replicasSize)
	ne.PutUint32(v[0:], uint32(len(rs)))
	ne.PutUint32(v[4:], cos)
	for i, r := range rs {
		ifx, ok := p.ports.ifindex[r.Port]
		if !ok {
			return nil, translator.Errorf(translator.ErrInvalid, "%s: replica %d: port %d is not a port of this switch (--port)", what, i, r.Port)
		}
		o := 8 + i*replicaSize
		ne.PutUint32(v[o:], ifx)
		ne.PutUint32(v[o+4:], r.Port)
		ne.PutUint32(v[o+8:], r.Instance)
	}
	return v, nil
}

// putMulticast writes a multicast group whole (`bridge mdb`-like; PSA's
// multicast_group table).
func (p *pipeline) putMulticast(g, prev *translator.MulticastGroup) error {
	x := p.ext
	what := "multicast group " + itoa(g.ID)
	if x.mcast == nil {
		return translator.Errorf(translator.ErrUnsupported, "%s: the datapath has no multicast groups (its object does not include p4tc_pre.h)", what)
	}
	v, err := p.replicasValue(g.Replicas, 0, what)
	if err != nil {
		return err
	}
	if err := x.journalRows(x.mcast, false, u32Key(g.ID)); err != nil {
		return err
	}
	undo, err := x.putRecord(extRef(recMulticast, 0, int64(g.ID)), g)
	if err != nil {
		return err
	}
	if err := x.mcast.Put(g.ID, v); err != nil {
		undo()
		return mapError(err, "%s", what)
	}
	return nil
}

func (p *pipeline) deleteMulticast(g *translator.MulticastGroup) error {
	x := p.ext
	if x.mcast == nil {
		return translator.Errorf(translator.ErrUnsupported, "the datapath has no multicast groups")
	}
	if err := x.journalRows(x.mcast, false, u32Key(g.ID)); err != nil {
		return err
	}
	if err := x.mcast.Delete(g.ID); err != nil {
		return mapError(err, "delete multicast group %d", g.ID)
	}
	if err := x.delRecord(extRef(recMulticast, 0, int64(g.ID))); err != nil {
		p.log.Warn("multicast record outlives its group", "group", g.ID, "err", err)
	}
	return nil
}

// putClone writes a clone session whole (`tc ... action mirred egress
// mirror dev PORT` for each replica).
func (p *pipeline) putClone(c, prev *translator.CloneSession) error {
	x := p.ext
	what := "clone session " + itoa(c.ID)
	if x.clones == nil {
		return translator.Errorf(translator.ErrUnsupported, "%s: the datapath has no clone sessions (its object does not include p4tc_pre.h)", what)
	}
	if c.PacketLengthBytes != 0 {
		return translator.Errorf(translator.ErrUnsupported, "%s: packet_length_bytes %d: the ebpf datapath does not truncate clones", what, c.PacketLengthBytes)
	}
	v, err := p.replicasValue(c.Replicas, c.ClassOfService, what)
	if err != nil {
		return err
	}
	if err := x.journalRows(x.clones, false, u32Key(c.ID)); err != nil {
		return err
	}
	undo, err := x.putRecord(extRef(recClone, 0, int64(c.ID)), c)
	if err != nil {
		return err
	}
	if err := x.clones.Put(c.ID, v); err != nil {
		undo()
		return mapError(err, "%s", what)
	}
	return nil
}

func (p *pipeline) deleteClone(c *translator.CloneSession) error {
	x := p.ext
	if x.clones == nil {
		return translator.Errorf(translator.ErrUnsupported, "the datapath has no clone sessions")
	}
	if err := x.journalRows(x.clones, false, u32Key(c.ID)); err != nil {
		return err
	}
	if err := x.clones.Delete(c.ID); err != nil {
		return mapError(err, "delete clone session %d", c.ID)
	}
	if err := x.delRecord(extRef(recClone, 0, int64(c.ID))); err != nil {
		p.log.Warn("clone record outlives its session", "session", c.ID, "err", err)
	}
	return nil
}

// valueSetKey is a value set member's map key (a table key of the set's
// fields).
func valueSetKey(vp *valueSetPlan, match []translator.FieldMatch) ([]byte, error) {
	l := vp.vs.Layout
	k := make([]byte, vp.keySize)
	putHeader(k, uint32(l.Bits), 0)
	for i := range l.Fields {
		if i < len(match) && match[i].Set {
			l.Fields[i].Put(k[8:], match[i].Value)
		}
	}
	return k, nil
}

// writeValueSet replaces a value set's members: new keys are added before
// the ones that go are removed (a packet meanwhile matches old or new).
func (p *pipeline) writeValueSet(w *translator.ValueSetWrite) error {
	x := p.ext
	vp := x.plan.valueSetByID[w.ValueSet.ID]
	m := x.valueSets[w.ValueSet.ID]
	if vp == nil || m == nil {
		return noExtern("value set %s", w.ValueSet.Name)
	}
	want := map[string]bool{}
	for _, mb := range w.Members {
		k, err := valueSetKey(vp, mb.Match)
		if err != nil {
			return err
		}
		want[string(k)] = true
	}
	have := x.vsKeys[w.ValueSet.ID]
	var add, del [][]byte
	for k := range want {
		if !have[k] {
			add = append(add, []byte(k))
		}
	}
	for k := range have {
		if !want[k] {
			del = append(del, []byte(k))
		}
	}
	sort.Slice(add, func(i, j int) bool { return bytes.Compare(add[i], add[j]) < 0 })
	if err := x.journalRows(m, false, append(append([][]byte(nil), add...), del...)...); err != nil {
		return err
	}
	undo, err := x.putRecord(extRef(recValueSet, w.ValueSet.ID, 0), w.Saved())
	if err != nil {
		return err
	}
	for i, k := range add {
		if err := m.Put(k, uint8(1)); err != nil {
			for _, k := range add[:i] {
				_ = m.Delete(k)
			}
			undo()
			return mapError(err, "value set %s", w.ValueSet.Name)
		}
	}
	for _, k := range del {
		if err := m.Delete(k); err != nil && !isNotExist(err) {
			p.log.Warn("value set member not removed", "value_set", w.ValueSet.Name, "err", err)
		}
	}
	x.vsKeys[w.ValueSet.ID] = want
	return nil
}

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
