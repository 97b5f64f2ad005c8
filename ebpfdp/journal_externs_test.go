package ebpfdp

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
)

// newExternCutSwitch is the ecmp pipeline (every extern) on a cutSwitch
// whose state includes the Reads of every extern: members, groups,
// multicast groups, clone sessions, value sets, meter configs, counter
// and register cells, the route's direct counters.
func newExternCutSwitch(t *testing.T) *cutSwitch {
	t.Helper()
	ns, ports := ecmpPorts(t)
	sw := newCutSwitchOn(t, ns, ports, ecmpPipeline(t))
	sw.reads = func(t *testing.T) []string {
		t.Helper()
		var out []string
		for _, k := range []string{"members", "groups", "multicast", "clones", "value_sets", "meters"} {
			es, err := p4test.ReadEntities(sw.dev, k)
			if err != nil {
				t.Fatalf("read %s: %v", k, err)
			}
			out = append(out, es...)
		}
		ctr, err := p4test.ReadCounter(sw.dev, ctrPortStats, -1)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range ctr {
			out = append(out, fmt.Sprintf("port_stats[%d] %+v", i, d))
		}
		reg, err := p4test.ReadRegister(sw.dev, regPortPkts, -1)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range reg {
			out = append(out, fmt.Sprintf("port_pkts[%d] %x", i, v))
		}
		tc, err := p4test.ReadTableCounters(sw.dev, tblRoute)
		if err != nil {
			t.Fatal(err)
		}
		for k, d := range tc {
			out = append(out, fmt.Sprintf("route %x counter %+v", k, d))
		}
		d, err := p4test.ReadDirectCounter(sw.dev, p4test.Entry{Table: tblRoute, Default: true})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("default route counter %+v", d))
		slices.Sort(out)
		return out
	}
	return sw
}

// runOn runs the running program on a frame arriving on port, as
// ecmpSwitch.run does.
func (sw *cutSwitch) runOn(t *testing.T, port uint32, f []byte) {
	t.Helper()
	ifx := sw.b.ports.ifindex[port]
	var ctx [44]byte
	binary.LittleEndian.PutUint32(ctx[36:], ifx)
	binary.LittleEndian.PutUint32(ctx[40:], ifx)
	out := make([]byte, len(f)+256)
	if err := sw.ns.Do(func() error {
		_, err := sw.b.cur.prog.Run(&ebpf.RunOptions{Data: f, DataOut: out, Context: ctx[:]})
		return err
	}); err != nil {
		t.Fatalf("test run: %v", err)
	}
}

// A p4tcd killed at any point of a batch of extern writes, alone or mixed
// with table entries that use them, leaves nothing of it once the next
// p4tcd has restored: Reads of every extern and entry, and every row of
// the extern maps (members, groups, multicast groups, clone sessions,
// value set keys, counter, meter and register cells, direct cells), the
// extern records and the side records are as before the batch. Also
// inside the Device's own rollback of a ROLLBACK_ON_ERROR batch.
func TestPrivilegedJournalCutExterns(t *testing.T) {
	testutil.Privileged(t)
	sw := newExternCutSwitch(t)
	fill := func(us ...p4test.Update) {
		t.Helper()
		if err := p4test.Write(sw.dev, us...); err != nil {
			t.Fatal(err)
		}
	}
	m1 := &p4test.MeterConfig{CIR: 1 << 20, CBurst: 1 << 12, PIR: 1 << 21, PBurst: 1 << 13}
	m2 := &p4test.MeterConfig{CIR: 100, CBurst: 10, PIR: 200, PBurst: 20}
	m3 := &p4test.MeterConfig{CIR: 5000, CBurst: 500, PIR: 9000, PBurst: 900}
	grouped := route("10.1.0.0", 16)
	grouped.Group, grouped.Meter = 10, m1
	single := route("10.2.0.0", 16)
	single.Member = 2
	fill(member(p4test.OpInsert, 1, 2), member(p4test.OpInsert, 2, 3), member(p4test.OpInsert, 3, 4))
	fill(p4test.Group(p4test.OpInsert, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 2}, p4test.GroupMember{ID: 2, Weight: 1, Watch: 4}))
	fill(p4test.Insert(grouped), p4test.Insert(single),
		p4test.DirectCounter(single, p4test.CounterData{Packets: 40, Bytes: 4000}),
		p4test.DirectCounter(p4test.Entry{Table: tblRoute, Default: true}, p4test.CounterData{Packets: 3, Bytes: 300}),
		p4test.Counter(ctrPortStats, 1, p4test.CounterData{Packets: 100, Bytes: 6400}),
		p4test.Counter(ctrPortStats, 5, p4test.CounterData{Packets: 7, Bytes: 700}),
		p4test.Meter(mtrPolicer, 3, m2),
		p4test.Register(regPortPkts, 2, u32(42)),
		p4test.Multicast(p4test.OpInsert, 1, p4test.Replica{Port: 2}, p4test.Replica{Port: 3, Instance: 1}),
		p4test.Clone(p4test.OpInsert, 1, 3, p4test.Replica{Port: 4}),
		p4test.ValueSet(vsMirrorPorts, u16(5000)))

	added := route("10.3.0.0", 16)
	added.Group, added.Counter, added.Meter = 11, &p4test.CounterData{Packets: 5, Bytes: 500}, m2
	moved := route("10.2.0.0", 16)
	moved.Group, moved.Counter, moved.Meter = 10, &p4test.CounterData{Packets: 1}, m3
	mixed := []p4test.Update{
		member(p4test.OpInsert, 4, 1),
		member(p4test.OpModify, 1, 4),
		p4test.Group(p4test.OpInsert, profECMP, 11, p4test.GroupMember{ID: 2, Weight: 1}, p4test.GroupMember{ID: 4, Weight: 3}),
		p4test.Group(p4test.OpModify, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 1}),
		p4test.Insert(added), // direct cells written with the entry
		p4test.Modify(moved), // member → group, counter and meter rewritten
		p4test.Delete(grouped),
		p4test.DirectCounter(added, p4test.CounterData{Packets: 9, Bytes: 900}),
		p4test.DirectMeter(added, m1),
		p4test.DirectCounter(p4test.Entry{Table: tblRoute, Default: true}, p4test.CounterData{}),
		p4test.Counter(ctrPortStats, 1, p4test.CounterData{}),
		p4test.Counter(ctrPortStats, -1, p4test.CounterData{Packets: 1, Bytes: 64}),
		p4test.Counter(ctrPortStats, 5, p4test.CounterData{Packets: 55, Bytes: 5500}),
		p4test.Meter(mtrPolicer, 3, nil),
		p4test.Meter(mtrPolicer, -1, m3),
		p4test.Meter(mtrPolicer, 7, m1),
		p4test.Register(regPortPkts, -1, u32(1)),
		p4test.Register(regPortPkts, 2, u32(7)),
		p4test.Multicast(p4test.OpInsert, 2, p4test.Replica{Port: 1}),
		p4test.Multicast(p4test.OpModify, 1, p4test.Replica{Port: 4}),
		p4test.Clone(p4test.OpModify, 1, 5, p4test.Replica{Port: 2}, p4test.Replica{Port: 3}),
		p4test.ValueSet(vsMirrorPorts, u16(5001), u16(5002)),
		member(p4test.OpDelete, 3, 0),
	}
	// On what mixed leaves: deletes, and a last update the datapath
	// refuses (port 9 is not a port), which makes the Device take the
	// batch back with inverse ops, which may be cut too.
	failing := []p4test.Update{
		p4test.Multicast(p4test.OpDelete, 2),
		p4test.Clone(p4test.OpDelete, 1, 0),
		p4test.Delete(added),
		p4test.Group(p4test.OpDelete, profECMP, 11),
		member(p4test.OpDelete, 4, 0),
		p4test.Counter(ctrPortStats, 2, p4test.CounterData{Packets: 2, Bytes: 128}),
		p4test.Meter(mtrPolicer, 7, nil),
		p4test.Register(regPortPkts, 3, u32(3)),
		p4test.ValueSet(vsMirrorPorts),
		member(p4test.OpInsert, 9, 9),
	}
	externsOnly := []p4test.Update{
		member(p4test.OpInsert, 5, 3),
		p4test.Counter(ctrPortStats, 9, p4test.CounterData{Packets: 9, Bytes: 9}),
		p4test.Meter(mtrPolicer, 9, m2),
		p4test.Register(regPortPkts, 9, u32(9)),
		p4test.Multicast(p4test.OpInsert, 9, p4test.Replica{Port: 1}, p4test.Replica{Port: 2}),
		p4test.ValueSet(vsMirrorPorts, u16(9)),
	}
	for _, tc := range []struct {
		name string
		atom p4test.Atomicity
		us   []p4test.Update
	}{
		{"mixed", p4test.ContinueOnError, mixed},
		{"rollback-on-error", p4test.RollbackOnError, failing},
		{"externs-only", p4test.ContinueOnError, externsOnly},
	} {
		t.Run(tc.name, func(t *testing.T) { sw.cutEverywhere(t, nil, tc.atom, tc.us) })
		sw.cr.left = -1
	}
}

// A cut batch that wrote a counter cell takes the controller's value
// back but keeps what the datapath counted since: the cell holds its
// value before the write plus the packets counted after it.
func TestPrivilegedJournalCutCounterKeepsCounts(t *testing.T) {
	testutil.Privileged(t)
	sw := newExternCutSwitch(t)
	r := route("10.1.0.0", 16)
	r.Member = 1
	if err := p4test.Write(sw.dev, member(p4test.OpInsert, 1, 2), p4test.Insert(r),
		p4test.Counter(ctrPortStats, 1, p4test.CounterData{Packets: 100, Bytes: 6400})); err != nil {
		t.Fatal(err)
	}
	// Killed after both writes of the batch, before its commit. The
	// cell is written below its value: a rollback that took the frames
	// into account twice would show.
	us := []p4test.Update{
		p4test.Counter(ctrPortStats, 1, p4test.CounterData{Packets: 10, Bytes: 640}),
		p4test.DirectCounter(r, p4test.CounterData{Packets: 50, Bytes: 5000}),
	}
	sw.cr.left = len(us)
	if !sw.write(t, nil, p4test.ContinueOnError, us) {
		t.Fatal("p4tcd was not killed")
	}
	// The program runs on while no p4tcd does: three frames from port 1
	// hit the route.
	for range 3 {
		sw.runOn(t, 1, frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64))
	}
	sw.restart(t)
	check := func(what string) {
		t.Helper()
		got, err := p4test.ReadCounter(sw.dev, ctrPortStats, 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := (p4test.CounterData{Packets: 103, Bytes: 6400 + 3*64}); got[1] != want {
			t.Errorf("%s: port_stats[1] after the cut write of 10 and 3 frames: %+v, want %+v", what, got[1], want)
		}
		if c, err := p4test.ReadDirectCounter(sw.dev, r); err != nil || c != (p4test.CounterData{Packets: 3, Bytes: 3 * 64}) {
			t.Errorf("%s: route counter after the cut write of 50 and 3 frames: %+v (%v), want 3 packets", what, c, err)
		}
	}
	check("restored")
	// A p4tcd killed during that rollback: the next one rolls back
	// again and does not add the frames twice.
	atomic.StoreUint32(sw.b.cur.jr.segs[0].u32(jStateOff), jStateApplying)
	sw.restart(t)
	check("rolled back twice")
}

// The journal's extern, locked-row and counter records round-trip; a
// counter record reads back with its state, in the journal's memory.
func TestJournalExternRecords(t *testing.T) {
	j := &journal{segs: []journalSeg{{mem: make([]byte, journalSegSize)}}}
	j.begin()
	ref := extRef(recGroup, profECMP, 10)
	if err := j.ext(ref, []byte(`{"ID":10}`)); err != nil {
		t.Fatal(err)
	}
	idx, err := j.mapIndex("maps/p4tc_mtr1")
	if err != nil {
		t.Fatal(err)
	}
	if _, rk, rv, err := j.rowsLocked(idx, 4, 8, 1, true); err != nil {
		t.Fatal(err)
	} else {
		copy(rk, u32(3))
		copy(rv, "prevcell")
	}
	n, prev, st, err := j.counters(idx, 5, 2, counterVal{Packets: 7, Bytes: 8})
	if err != nil || n != 2 {
		t.Fatalf("counter record of %d cells: %v", n, err)
	}
	ne.PutUint64(prev[0:], 1)
	ne.PutUint64(prev[8:], 2)
	ne.PutUint64(prev[16:], 3)
	ne.PutUint64(prev[24:], 4)
	j.publish()
	*st = jcWritten
	recs, _, err := j.pending()
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records (%v)", len(recs), err)
	}
	if r := recs[0]; r.kind != jkExt || !r.prev || r.table != ref.table || r.id != ref.id || string(r.val) != `{"ID":10}` {
		t.Errorf("extern record %+v", r)
	}
	if r := recs[2]; r.kind != jkRows || !r.lock || !r.prev || string(r.val) != "prevcell" {
		t.Errorf("meter row %+v", r)
	}
	r := recs[3]
	if r.kind != jkCounters || r.first != 5 || r.count != 2 || r.written != (counterVal{7, 8}) || len(r.val) != 32 || ne.Uint64(r.val[24:]) != 4 {
		t.Errorf("counter record %+v", r)
	}
	if ne.Uint32(r.raw[8:]) != jcWritten {
		t.Error("the counter record does not read back as written")
	}
	if got := ne.Uint64(j.segs[0].mem[jChangesOff:]); got != 4 {
		t.Errorf("header counts %d changes, want 4 (a record, a row, two cells)", got)
	}
}

// readArray with lock reads a spin-locked meter map as a batch under
// BPF_F_LOCK (what journalArray does for a meter write without index):
// the kernel takes the flag, and the cells read are those a per-cell
// locked lookup returns.
func TestPrivilegedReadArrayLocked(t *testing.T) {
	testutil.Privileged(t)
	sw := newExternCutSwitch(t)
	m1 := &p4test.MeterConfig{CIR: 1 << 20, CBurst: 1 << 12, PIR: 1 << 21, PBurst: 1 << 13}
	m2 := &p4test.MeterConfig{CIR: 100, CBurst: 10, PIR: 200, PBurst: 20}
	if err := p4test.Write(sw.dev, p4test.Meter(mtrPolicer, -1, m1), p4test.Meter(mtrPolicer, 3, m2)); err != nil {
		t.Fatal(err)
	}
	x := sw.b.cur.ext
	mp, mm := x.plan.meterByID[mtrPolicer], x.meters[mtrPolicer]
	if mp == nil || mm == nil {
		t.Fatal("no meter map for policer")
	}
	all, err := readArray(mm, mp.cells, meterSize, true)
	if err != nil {
		t.Fatalf("locked batch read: %v", err)
	}
	cell := make([]byte, meterSize)
	for i := range mp.cells {
		if err := mm.LookupWithFlags(i, cell, ebpf.LookupLock); err != nil {
			t.Fatalf("locked lookup of cell %d: %v", i, err)
		}
		if got := all[int(i)*meterSize : int(i+1)*meterSize]; !slices.Equal(got, cell) {
			t.Fatalf("cell %d: batch read % x, lookup % x", i, got, cell)
		}
	}
}
