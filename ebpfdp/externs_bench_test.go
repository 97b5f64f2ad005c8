package ebpfdp

import (
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// BenchmarkPrivilegedCounterRead reads every cell of a counter of 2^20
// cells (a CounterEntry read without index, as the Device hands it to
// ReadCounters: one cell per index, summed over CPUs), against raw batch
// lookups of the same per-CPU map.
func BenchmarkPrivilegedCounterRead(b *testing.B) {
	testutil.Privileged(b)
	const cells = 1 << 20
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: counterSize, MaxEntries: cells})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	c := &translator.Counter{ID: 1, Name: "big", Unit: translator.CounterBoth, Size: cells}
	x, err := newExtState(&externPlan{counterByID: map[uint32]*counterPlan{1: {c: c, inst: 1, cells: cells}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	x.counters[1] = m
	if err := x.writeCounterCells(m, cells, -1, translator.CounterData{Packets: 1, Bytes: 64}, "big"); err != nil {
		b.Fatal(err)
	}
	req := make([]translator.CounterCell, cells)
	for i := range req {
		req[i] = translator.CounterCell{Counter: c, Index: int64(i)}
	}
	raw := func() {
		keys := make([]uint32, cellBatch)
		vals := make([]counterVal, cellBatch*x.ncpu)
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookup(&cursor, keys, vals, nil)
			if errors.Is(err, ebpf.ErrKeyNotExist) || n == 0 {
				return
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	var ours, base time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := x.readCounters(req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		raw()
		ours, base = ours+t1.Sub(t0), base+time.Since(t1)
	}
	if req[cells-1].Data != (translator.CounterData{Packets: 1, Bytes: 64}) {
		b.Fatalf("last cell %+v", req[cells-1].Data)
	}
	b.ReportMetric(float64(cells)*float64(b.N)/ours.Seconds(), "entries/s")
	b.ReportMetric(float64(cells)*float64(b.N)/base.Seconds(), "raw-entries/s")
	b.ReportMetric(base.Seconds()/ours.Seconds(), "of-raw")
}

// BenchmarkPrivilegedGroupUpdate measures how fast an ECMP group of 8
// members can be replaced, through the Backend (bucket layout, the extern
// store's record, the map) and through a Device Write, against a raw
// update of the group's map value.
func BenchmarkPrivilegedGroupUpdate(b *testing.B) {
	testutil.Privileged(b)
	sw := newECMPSwitch(b, false)
	var us []p4test.Update
	for i := uint32(1); i <= 16; i++ {
		us = append(us, member(p4test.OpInsert, i, 2+i%3))
	}
	sw.write(b, us...)
	gm := func(first uint32) []p4test.GroupMember {
		var out []p4test.GroupMember
		for i := first; i < first+8; i++ {
			out = append(out, p4test.GroupMember{ID: i, Weight: int32(1 + i%2)})
		}
		return out
	}
	sw.write(b, p4test.Group(p4test.OpInsert, profECMP, 10, gm(1)...))
	prof := sw.dev.Config().Profiles[profECMP]
	groups := [2]*translator.Group{}
	for k := range groups {
		g := &translator.Group{Profile: prof, ID: 10}
		for _, m := range gm(uint32(1 + 8*k)) {
			g.Members = append(g.Members, translator.GroupMember{Member: m.ID, Weight: m.Weight})
		}
		groups[k] = g
	}
	pp := sw.b.cur.ext.plan.profileByID[profECMP]
	val, err := sw.b.cur.groupValue(pp, groups[0])
	if err != nil {
		b.Fatal(err)
	}
	gmap := sw.b.cur.ext.groups[profECMP]
	var ours, dev, raw time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := groups[i%2]
		t0 := time.Now()
		if _, err := sw.b.ApplyExterns([]translator.ExternOp{{Kind: translator.ExtModifyGroup, Group: g, PrevGroup: groups[1-i%2]}}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := p4test.Write(sw.dev, p4test.Group(p4test.OpModify, profECMP, 10, gm(uint32(1+8*(i%2)))...)); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := gmap.Put(uint32(10), val); err != nil {
			b.Fatal(err)
		}
		ours, dev, raw = ours+t1.Sub(t0), dev+t2.Sub(t1), raw+time.Since(t2)
	}
	n := float64(b.N)
	b.ReportMetric(n/ours.Seconds(), "groups/s")
	b.ReportMetric(n/dev.Seconds(), "write-groups/s")
	b.ReportMetric(n/raw.Seconds(), "raw-groups/s")
	b.ReportMetric(raw.Seconds()/ours.Seconds(), "of-raw")
}

// BenchmarkPrivilegedReplication measures a broadcast replicated to 6
// copies (three ports, two instances each) per copy, against a routed
// frame's single copy (bpf_redirect) in the same run: test runs in the
// ports' namespace, so the copies really leave through the veths.
func BenchmarkPrivilegedReplication(b *testing.B) {
	testutil.Privileged(b)
	sw := newECMPSwitch(b, false)
	var reps []p4test.Replica
	for port := uint32(2); port <= 4; port++ {
		reps = append(reps, p4test.Replica{Port: port}, p4test.Replica{Port: port, Instance: 1})
	}
	sw.write(b, member(p4test.OpInsert, 1, 2), p4test.Multicast(p4test.OpInsert, 1, reps...))
	r := route("10.1.0.0", 16)
	r.Member = 1
	sw.write(b, p4test.Insert(r))
	fwd := frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 255)
	bcast := frame(17, "10.0.0.1", "10.255.255.255", 1000, 80, 64)
	copy(bcast[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	run := func(f []byte, want uint32) float64 {
		var ret uint32
		var d time.Duration
		err := sw.ns.Do(func() (err error) {
			ret, d, err = sw.b.cur.prog.Benchmark(f, forwardRuns, nil)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		if ret != want {
			b.Fatalf("verdict %d, want %d", ret, want)
		}
		return float64(d.Nanoseconds())
	}
	var one, many float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		one += run(fwd, tcActRedirct)
		many += run(bcast, tcActShot)
		time.Sleep(time.Millisecond) // let the peers' backlogs drain
	}
	n := float64(b.N)
	perCopy := many / n / float64(len(reps))
	b.ReportMetric(one/n, "fwd-ns/pkt")
	b.ReportMetric(many/n, "mcast6-ns/pkt")
	b.ReportMetric(perCopy, "ns/pkt/replica")
	b.ReportMetric(perCopy/(one/n), "copy-ratio-to-fwd")
}
