package ebpfdp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/translator"
)

// What a restarted p4tcd needs back about externs (translator.Snapshot)
// lives next to the datapath, pinned with it:
//
//   - entry extras in the side records of their entries (side.go): the
//     member or group of an entry of an indirect table, a one-shot
//     entry's actions, a direct meter config, and a ternary entry's
//     direct cell; entries of exact and LPM tables carry their member,
//     group and cell in their map value too;
//   - extern objects in p4tcd_externs, a map of p4tcd's own with the side
//     map's chunked layout: members, groups, multicast groups, clone
//     sessions, value sets and meter configs, JSON-encoded translator
//     Saved* values. Counters and registers are read live.
//
// Records are written before the datapath maps change and removed after
// (a failed change puts the previous record back), so a record never
// describes less than the datapath holds.

// extStoreName names the extern store in bpffs.
const extStoreName = "p4tcd_externs"

// Record kinds: the first byte of a record's id.
const (
	recMember    = 1
	recGroup     = 2
	recMulticast = 3
	recClone     = 4
	recValueSet  = 5
	recMeter     = 6
)

func newExtStore(x *extState) (*ebpf.Map, error) {
	n := uint32(256)
	for _, p := range x.plan.profiles {
		n += 2 * p.members
	}
	for _, m := range x.plan.meters {
		n += min(m.cells, 4096)
	}
	n += 2 * (maxMcastGroups + maxCloneSessions)
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: extStoreName, Type: ebpf.Hash, KeySize: sideKeySize, ValueSize: sideValueSize,
		MaxEntries: min(n, maxSideRecords), Flags: bpfFNoPrealloc,
	})
	if err != nil {
		return nil, translator.Errorf(translator.ErrFull, "create %s: %v", extStoreName, err)
	}
	return m, nil
}

// Capacities of p4tc_pre.h.
const (
	maxMcastGroups   = 4096
	maxCloneSessions = 1024
)

// extRef names a record: kind, the extern's P4Info id (0 for the PRE),
// the object's id (member, group, session, cell index).
func extRef(kind byte, extern uint32, id int64) sideRef {
	r := sideRef{table: extern}
	r.id[0] = kind
	binary.LittleEndian.PutUint64(r.id[1:], uint64(id))
	return r
}

// putRecord writes a record (v JSON-encoded), journaled, and returns how
// to undo it: put back what was there before.
func (x *extState) putRecord(ref sideRef, v any) (undo func(), err error) {
	rec, err := json.Marshal(v)
	if err != nil {
		return nil, translator.Errorf(translator.ErrInternal, "encode extern record: %v", err)
	}
	prev, had := x.recs[ref]
	if err := x.journalRecords(ref); err != nil {
		return nil, err
	}
	if _, err := x.store.put([]sideRef{ref}, [][]byte{rec}); err != nil {
		return nil, err
	}
	x.recs[ref] = rec
	return func() {
		if had {
			if _, err := x.store.put([]sideRef{ref}, [][]byte{prev}); err == nil {
				x.recs[ref] = prev
			}
		} else if x.store.del([]sideRef{ref}) == nil {
			delete(x.recs, ref)
		}
	}, nil
}

// delRecord removes a record, journaled.
func (x *extState) delRecord(ref sideRef) error {
	if err := x.journalRecords(ref); err != nil {
		return err
	}
	delete(x.recs, ref)
	return x.store.del([]sideRef{ref})
}

// saveMeter keeps the configs of a meter write: a record per cell
// written, and for a wildcard write one record of the fill (index -1)
// that replaces the cells'.
func (x *extState) saveMeter(w *translator.MeterWrite) error {
	id := w.Meter.ID
	if w.Index < 0 {
		var drop []sideRef
		for ref := range x.store.recs {
			if ref.table == id && ref.id[0] == recMeter {
				drop = append(drop, ref)
			}
		}
		if err := x.journalRecords(drop...); err != nil {
			return err
		}
		for _, ref := range drop {
			delete(x.recs, ref)
		}
		if err := x.store.del(drop); err != nil {
			return err
		}
	}
	ref := extRef(recMeter, id, w.Index)
	if w.Config == nil && w.Index < 0 {
		return nil // every cell at the default: nothing to keep
	}
	var cfg translator.MeterConfig
	if w.Config != nil {
		cfg = *w.Config
	}
	_, err := x.putRecord(ref, meterRecord{Set: w.Config != nil, Config: cfg})
	return err
}

type meterRecord struct {
	Set    bool
	Config translator.MeterConfig
}

// resaveEntry rewrites the side record of an entry whose direct meter
// config changed (the tiers that own it).
func (p *pipeline) resaveEntry(e *translator.Entry) error {
	ts := p.byID[e.Table.ID]
	if ts == nil {
		return nil
	}
	se := e.Saved()
	ref := sideRef{table: e.Table.ID, id: entryID(e.Match, e.Priority)}
	var handle uint32
	if ts.tss != nil {
		te := ts.tss.entries[ref.id]
		if te == nil && p.xdp != nil {
			te = p.xdp.byID[e.Table.ID].tss.entries[ref.id]
		}
		if te != nil {
			handle = te.handle
		}
	}
	if ts.plan.kind != kindTSS && !needsSide(e) {
		return p.side.del([]sideRef{ref})
	}
	_, err := p.side.put([]sideRef{ref}, [][]byte{encodeSavedCell(&se, handle, p.ext.cellOf(e))})
	return err
}

// saveDefault rewrites a default entry's side record (its direct meter).
func (p *pipeline) saveDefault(e *translator.Entry) error {
	ref := sideRef{table: e.Table.ID}
	if e.Action == e.Table.InitialDefault && !needsSide(e) {
		return p.side.del([]sideRef{ref})
	}
	se := e.Saved()
	_, err := p.side.put([]sideRef{ref}, [][]byte{encodeSaved(&se, 0)})
	return err
}

// extTag starts the extension of a side record: what entries of
// indirect and direct tables add to encodeSaved's format.
const extTag = 'X'

// appendSavedExt appends the extension when an entry has one.
func appendSavedExt(b []byte, se *translator.SavedEntry, cell uint32) []byte {
	if se.Member == 0 && se.Group == 0 && len(se.OneShot) == 0 && se.Meter == nil && cell == 0 {
		return b
	}
	b = append(b, extTag)
	b = binary.AppendUvarint(b, uint64(se.Member))
	b = binary.AppendUvarint(b, uint64(se.Group))
	b = binary.AppendUvarint(b, uint64(len(se.OneShot)))
	for _, a := range se.OneShot {
		b = binary.AppendUvarint(b, uint64(a.ActionID))
		b = binary.AppendUvarint(b, uint64(len(a.Params)))
		for _, p := range a.Params {
			b = appendBytes(b, p)
		}
		b = binary.AppendVarint(b, int64(a.Weight))
		b = binary.AppendUvarint(b, uint64(a.WatchPort))
		legacy := byte(0)
		if a.LegacyWatch {
			legacy = 1
		}
		b = append(b, legacy)
		b = binary.AppendUvarint(b, uint64(a.Member))
	}
	if m := se.Meter; m != nil {
		b = append(b, 1)
		for _, v := range []int64{m.CIR, m.CBurst, m.PIR, m.PBurst, m.EBurst} {
			b = binary.AppendVarint(b, v)
		}
	} else {
		b = append(b, 0)
	}
	return binary.AppendUvarint(b, uint64(cell))
}

// savedExt decodes appendSavedExt's output into se and returns the cell.
func (d *decoder) savedExt(se *translator.SavedEntry) uint32 {
	if d.byte() != extTag {
		d.fail()
		return 0
	}
	se.Member = uint32(d.uvarint())
	se.Group = uint32(d.uvarint())
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		var a translator.SavedSetAction
		a.ActionID = uint32(d.uvarint())
		if k := d.count(); k > 0 {
			a.Params = make([][]byte, k)
			for j := range a.Params {
				a.Params[j] = d.bytes()
			}
		}
		a.Weight = int32(d.varint())
		a.WatchPort = uint32(d.uvarint())
		a.LegacyWatch = d.byte() == 1
		a.Member = uint32(d.uvarint())
		se.OneShot = append(se.OneShot, a)
	}
	if d.byte() == 1 {
		se.Meter = &translator.MeterConfig{CIR: d.varint(), CBurst: d.varint(), PIR: d.varint(), PBurst: d.varint(), EBurst: d.varint()}
	}
	return uint32(d.uvarint())
}

// restoreExterns reads the extern store back into a Snapshot and rebuilds
// the state p4tcd keeps beside the maps (value set keys); the direct
// cells were noted while the entries were read.
func (p *pipeline) restoreExterns(snap *translator.Snapshot) error {
	x := p.ext
	recs, err := x.store.load()
	if err != nil {
		return fmt.Errorf("read %s: %w", extStoreName, err)
	}
	x.recs = recs
	refs := make([]sideRef, 0, len(recs))
	for ref := range recs {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool {
		a, b := refs[i], refs[j]
		if a.id[0] != b.id[0] {
			return a.id[0] < b.id[0]
		}
		if a.table != b.table {
			return a.table < b.table
		}
		return binary.LittleEndian.Uint64(a.id[1:]) < binary.LittleEndian.Uint64(b.id[1:])
	})
	fills := map[uint32]*translator.MeterConfig{}
	cellsSet := map[uint32]map[int64]bool{}
	for _, ref := range refs {
		rec := recs[ref]
		var err error
		switch ref.id[0] {
		case recMember:
			var m translator.SavedMember
			if err = json.Unmarshal(rec, &m); err == nil {
				snap.Members = append(snap.Members, m)
			}
		case recGroup:
			var g translator.SavedGroup
			if err = json.Unmarshal(rec, &g); err == nil {
				snap.Groups = append(snap.Groups, g)
			}
		case recMulticast:
			var g translator.MulticastGroup
			if err = json.Unmarshal(rec, &g); err == nil {
				snap.Multicast = append(snap.Multicast, g)
			}
		case recClone:
			var c translator.CloneSession
			if err = json.Unmarshal(rec, &c); err == nil {
				snap.Clones = append(snap.Clones, c)
			}
		case recValueSet:
			var v translator.SavedValueSet
			if err = json.Unmarshal(rec, &v); err == nil {
				snap.ValueSets = append(snap.ValueSets, v)
				if vp := x.plan.valueSetByID[v.ValueSetID]; vp != nil {
					keys := map[string]bool{}
					for _, m := range v.Members {
						k, kerr := valueSetKey(vp, m)
						if kerr != nil {
							return kerr
						}
						keys[string(k)] = true
					}
					x.vsKeys[v.ValueSetID] = keys
				}
			}
		case recMeter:
			var mr meterRecord
			if err = json.Unmarshal(rec, &mr); err == nil {
				idx := int64(binary.LittleEndian.Uint64(ref.id[1:]))
				if idx < 0 {
					c := mr.Config
					fills[ref.table] = &c
					continue
				}
				if cellsSet[ref.table] == nil {
					cellsSet[ref.table] = map[int64]bool{}
				}
				cellsSet[ref.table][idx] = true
				if mr.Set {
					snap.Meters = append(snap.Meters, translator.SavedMeterCell{MeterID: ref.table, Index: idx, Config: mr.Config})
				}
			}
		default:
			err = fmt.Errorf("record kind %d", ref.id[0])
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", extStoreName, err)
		}
	}
	// A wildcard write's config holds for every cell not written since.
	for id, cfg := range fills {
		mp := x.plan.meterByID[id]
		if mp == nil {
			continue
		}
		for i := int64(0); i < int64(mp.cells); i++ {
			if !cellsSet[id][i] {
				snap.Meters = append(snap.Meters, translator.SavedMeterCell{MeterID: id, Index: i, Config: *cfg})
			}
		}
	}
	for _, d := range x.cells {
		d.settle()
	}
	return nil
}
