package ebpfdp

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// Benchmarks report ratios measured in the same run; none asserts a time.
// `make bench` runs them.

// forwardRuns is how many times one test run forwards the same frame:
// every run decrements the TTL, and a frame with TTL 255 forwards 254
// times before the TTL check sends it to the host stack.
const forwardRuns = 254

// runNs runs prog on frame forwardRuns times and returns ns per run,
// checking that it forwarded.
func runNs(b *testing.B, prog *ebpf.Program, frame []byte) float64 {
	ret, d, err := prog.Benchmark(frame, forwardRuns, nil)
	if err != nil {
		b.Fatal(err)
	}
	if ret != tcActRedirct {
		b.Fatalf("verdict %d, want redirect", ret)
	}
	return float64(d.Nanoseconds())
}

// BenchmarkPrivilegedL3Router measures l3router's ns per 64-byte packet
// (ACL with one mask, LPM, next hop, TTL, redirect) against
// l3router_baseline.c, the same three lookups written on plain maps.
func BenchmarkPrivilegedL3Router(b *testing.B) {
	testutil.Privileged(b)
	sw := newL3Switch(b)
	routes(b, sw)
	sw.write(b, p4test.Insert(aclEntry(1, actPermit, p4test.Ternary(1, ip4("10.0.0.0"), ip4("255.0.0.0")))))

	base, err := ebpf.LoadCollection(l3Baseline)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { base.Close() })
	var mask [16]byte // struct acl_key
	copy(mask[0:4], ip4("255.0.0.0"))
	var key [16]byte
	copy(key[0:4], ip4("10.0.0.0"))
	put := func(m string, k, v any) {
		if err := base.Maps[m].Put(k, v); err != nil {
			b.Fatalf("%s: %v", m, err)
		}
	}
	put("base_acl_mask", uint32(0), mask)
	put("base_acl", key, uint32(0))
	var lk [8]byte
	binary.LittleEndian.PutUint32(lk[0:], 16)
	copy(lk[4:], ip4("10.1.0.0"))
	put("base_lpm", lk, uint16(10))
	var nh [16]byte
	copy(nh[0:6], macB)
	copy(nh[6:12], macR)
	binary.LittleEndian.PutUint32(nh[12:], uint32(sw.ifindex[2]))
	put("base_nexthop", uint16(10), nh)

	f := frame(17, "10.0.0.1", "10.1.2.3", 1234, 80, 255)
	var ours, raw float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ours += runNs(b, sw.b.cur.prog, f)
		raw += runNs(b, base.Programs["baseline_ingress"], f)
	}
	b.ReportMetric(ours/float64(b.N), "ns/pkt")
	b.ReportMetric(raw/float64(b.N), "baseline-ns/pkt")
	b.ReportMetric(ours/raw, "x-baseline")
}

// BenchmarkPrivilegedTernaryMasks measures l3router's ns per packet when
// the ACL holds 1,000 rules over 32 masks, relative to 1,000 rules in one
// mask. The packet misses the ACL, so the walk visits every mask.
func BenchmarkPrivilegedTernaryMasks(b *testing.B) {
	testutil.Privileged(b)
	sw := newL3Switch(b)
	routes(b, sw)
	rules := func(masks int) []p4test.Update {
		var us []p4test.Update
		for i := 0; i < 1000; i++ {
			plen := 32 - i%masks // masks /32, /31, ... on the source
			src := binary.BigEndian.AppendUint32(nil, (192<<24|uint32(i)<<8)&^(1<<(32-plen)-1))
			m := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-plen))
			us = append(us, p4test.Insert(aclEntry(int32(1+i), actDeny, p4test.Ternary(1, src, m))))
		}
		return us
	}
	f := frame(17, "10.0.0.1", "10.1.2.3", 1234, 80, 255)
	measure := func(masks int) float64 {
		us := rules(masks)
		sw.write(b, us...)
		if got := len(sw.b.cur.byID[tblACL].tss.masks); got != masks {
			b.Fatalf("%d masks in use, want %d", got, masks)
		}
		var ns float64
		for i := 0; i < b.N; i++ {
			ns += runNs(b, sw.b.cur.prog, f)
		}
		sw.write(b, p4test.AsDeletes(us)...)
		return ns / float64(b.N)
	}
	b.ResetTimer()
	one := measure(1)
	many := measure(32)
	b.ReportMetric(many, "ns/pkt")
	b.ReportMetric(one, "1mask-ns/pkt")
	b.ReportMetric(many/one, "x-1mask")
}

// recorder keeps the ops a Device hands its backend.
type recorder struct {
	translator.Backend
	ops []translator.Op
}

func (r *recorder) Apply(ops []translator.Op) (int, error) {
	r.ops = append(r.ops, ops...)
	return r.Backend.Apply(ops)
}

// BenchmarkPrivilegedApply measures Backend.Apply of 1,000 inserts into an
// exact, an LPM and a ternary table, in a journaled batch as the Device
// makes of each Write (BeginBatch, Apply, CommitBatch), against
// cilium/ebpf BatchUpdate of the same keys and values into the same map
// (which is all a raw writer does). "of-raw" is raw time / Apply time: 1
// would be no overhead.
func BenchmarkPrivilegedApply(b *testing.B) {
	testutil.Privileged(b)
	for _, tc := range []struct {
		name  string
		table uint32
		entry func(i int) p4test.Entry
	}{
		{"exact", tblNexthop, func(i int) p4test.Entry {
			return p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(uint16(i+1)))},
				Action: actForward, Params: [][]byte{macB, macR, u32(2)}}
		}},
		{"lpm", tblLPM, func(i int) p4test.Entry {
			return p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, u32(10<<24|uint32(i)<<8), 24)},
				Action: actSetNhop, Params: [][]byte{u16(10)}}
		}},
		{"ternary", tblACL, func(i int) p4test.Entry {
			return aclEntry(int32(i+1), actDeny, p4test.Ternary(1, u32(10<<24|uint32(i)), u32(^uint32(0))))
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sw := newL3Switch(b)
			rec := &recorder{Backend: sw.b}
			sw.dev = translator.NewDevice(rec)
			if err := sw.dev.SetPipeline(p4test.Commit, l3Pipeline(b)); err != nil {
				b.Fatal(err)
			}
			if tc.table == tblACL {
				// An entry that stays keeps the mask in the list: a batch
				// that brings a new mask waits for a grace period when it
				// republishes the list (reported below), one that reuses
				// masks does not.
				sw.write(b, p4test.Insert(aclEntry(1<<30, actPermit, p4test.Ternary(1, u32(11<<24), u32(^uint32(0))))))
			}
			rec.ops = nil
			var us []p4test.Update
			for i := 0; i < 1000; i++ {
				us = append(us, p4test.Insert(tc.entry(i)))
			}
			sw.write(b, us...)
			ins := rec.ops
			if len(ins) != 1000 {
				b.Fatalf("%d ops recorded", len(ins))
			}
			del := make([]translator.Op, len(ins))
			for i, op := range ins {
				del[i] = translator.Op{Kind: translator.OpDelete, Entry: op.Entry}
			}
			m := sw.b.cur.byID[tc.table].entries
			ks, vs := int(m.KeySize()), int(m.ValueSize())
			k, v := make([]byte, ks), make([]byte, vs)
			var ours, raw time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				sw.b.BeginBatch()
				if n, err := sw.b.Apply(del); err != nil {
					b.Fatalf("delete %d: %v", n, err)
				}
				sw.b.CommitBatch()
				t0 := time.Now()
				sw.b.BeginBatch()
				if n, err := sw.b.Apply(ins); err != nil {
					b.Fatalf("insert %d: %v", n, err)
				}
				sw.b.CommitBatch()
				ours += time.Since(t0)

				// What a raw writer writes: the map as Apply left it.
				var keys, vals []byte
				it := m.Iterate()
				for it.Next(&k, &v) {
					keys, vals = append(keys, k...), append(vals, v...)
				}
				if n := len(keys) / ks; n < 1000 {
					b.Fatalf("%d keys in the map, want 1000", n)
				}
				rawKeys, rawVals := rows(keys, ks), rows(vals, vs)
				if _, err := m.BatchDelete(rawKeys, nil); err != nil {
					b.Fatal(err)
				}
				t0 = time.Now()
				if _, err := m.BatchUpdate(rawKeys, rawVals, nil); err != nil {
					b.Fatal(err)
				}
				raw += time.Since(t0)
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*1000), "ns/entry")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N*1000), "raw-ns/entry")
			b.ReportMetric(float64(raw)/float64(ours), "of-raw")
		})
	}
}

// BenchmarkPrivilegedMaskListPublish measures replacing a ternary table's
// mask list: a map-in-map update, which waits for an RCU grace period.
// Runs that add or remove masks pay it once; others never.
func BenchmarkPrivilegedMaskListPublish(b *testing.B) {
	testutil.Privileged(b)
	sw := newL3Switch(b)
	ts := sw.b.cur.byID[tblACL]
	list := ts.tss.masklist(ts.masksCap)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sw.b.cur.publishMasks(ts, list); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrivilegedCreate measures entries created by traffic: a 64-byte
// frame per run, each a new flow (testdata/ctbench.c: a miss in
// conntrack's ct table, then bpf_p4tc_entry_create_on_miss taking a pool
// slot), against the same program on a flow whose entry exists (a plain
// hit), in the same run. Between rounds p4tcd empties the table and the
// pool, outside the timing.
func BenchmarkPrivilegedCreate(b *testing.B) {
	testutil.Privileged(b)
	const flows = 1 << 15
	obj, err := os.ReadFile("testdata/ctbench.o")
	if err != nil {
		b.Fatal(err)
	}
	fpc, err := p4test.PipelineDevice(ctP4Info, ctJSON, p4test.Device{TCObject: obj,
		Tables: []string{fmt.Sprintf("table_id: %d datapath_pool_size: %d", tblCT, flows+64)}})
	if err != nil {
		b.Fatal(err)
	}
	ns, ports := portNS(b)
	sw := &ctSwitch{&l3Switch{ns: ns, root: filepath.Join(tempBPFFS(b), "p4tcd"), ports: ports}}
	sw.openCT(b, false)
	if err := sw.dev.SetPipeline(p4test.Commit, fpc); err != nil {
		b.Fatal(err)
	}
	ts := sw.b.cur.byID[tblCT]
	create := frame(17, "10.0.1.1", "10.0.2.1", 1000, 1, 64)
	hit := frame(17, "10.0.1.1", "10.0.2.1", 1000, 80, 64)
	empty := func() {
		var keys []byte
		k := make([]byte, ts.plan.keySize)
		v := make([]byte, ts.plan.valueSize())
		it := ts.entries.Iterate()
		for it.Next(&k, &v) {
			keys = append(keys, k...)
		}
		if len(keys) > 0 {
			if _, err := ts.entries.BatchDelete(rows(keys, ts.plan.keySize), nil); err != nil {
				b.Fatal(err)
			}
		}
		atomic.StoreUint32(ts.poolWord(1), 0)
	}
	var createNs, hitNs float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		empty()
		b.StartTimer()
		// A test run interrupted by a signal is run again from the start:
		// empty the table for it too.
		ret, d, err := sw.b.cur.prog.Benchmark(create, flows, empty)
		if err != nil || ret != 100 {
			c, _ := sw.b.Counters(tblCT)
			_, used := ts.poolUsage()
			b.Fatalf("round %d/%d: create run: verdict %d (100 is a create), %v; %+v used %d", i, b.N, ret, err, c, used)
		}
		createNs += float64(d.Nanoseconds())
		if _, used := ts.poolUsage(); used < flows {
			c, _ := sw.b.Counters(tblCT)
			b.Fatalf("%d entries created, want %d (%+v)", used, flows, c)
		}
		ret, d, err = sw.b.cur.prog.Benchmark(hit, flows, nil)
		if err != nil || ret != 2 /* P4TC id of ct_flow */ {
			b.Fatalf("hit run: verdict %d, %v", ret, err)
		}
		hitNs += float64(d.Nanoseconds())
	}
	b.ReportMetric(createNs/float64(b.N), "create-ns/pkt")
	b.ReportMetric(hitNs/float64(b.N), "hit-ns/pkt")
	b.ReportMetric(createNs/hitNs, "x-hit")
	b.ReportMetric(1e9/(createNs/float64(b.N)), "entries/s")
}

// BenchmarkPrivilegedXDPTier measures l3router's ns per 64-byte packet in
// the XDP tier against the tc tier, the same entries (placed both) in each:
// ACL with one mask, LPM, next hop, TTL, redirect.
func BenchmarkPrivilegedXDPTier(b *testing.B) {
	testutil.Privileged(b)
	ns, ports := portNS(b)
	sw := &l3Switch{ns: ns, root: filepath.Join(tempBPFFS(b), "p4tcd"), ports: ports}
	sw.open(b, ports, false)
	if err := sw.dev.SetPipeline(p4test.Commit, l3XDPPipeline(b)); err != nil {
		b.Fatal(err)
	}
	routes(b, sw)
	sw.write(b, p4test.Insert(aclEntry(1, actPermit, p4test.Ternary(1, ip4("10.0.0.0"), ip4("255.0.0.0")))))
	f := frame(17, "10.0.0.1", "10.1.2.3", 1234, 80, 255)
	xdpNs := func() float64 {
		ret, d, err := sw.b.cur.xdp.prog.Benchmark(f, forwardRuns, nil)
		if err != nil {
			b.Fatal(err)
		}
		if ret != 4 /* XDP_REDIRECT */ {
			b.Fatalf("xdp verdict %d, want redirect", ret)
		}
		return float64(d.Nanoseconds())
	}
	var xdp, tc float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		xdp += xdpNs()
		tc += runNs(b, sw.b.cur.prog, f)
	}
	b.ReportMetric(xdp/float64(b.N), "xdp-ns/pkt")
	b.ReportMetric(tc/float64(b.N), "tc-ns/pkt")
	b.ReportMetric(xdp/tc, "x-tc")
}
