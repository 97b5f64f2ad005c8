package ebpfdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// The conntrack example (examples/conntrack): add-on-miss.
const (
	ctDir       = "../examples/conntrack"
	ctP4Info    = ctDir + "/conntrack.p4info.txt"
	ctJSON      = ctDir + "/conntrack.json"
	ctObject    = ctDir + "/conntrack.o"
	tblZone     = 0x02000001
	tblAllow    = 0x02000002
	tblCT       = 0x02000003
	actSetZone  = 0x01000001
	actCTFlow   = 0x01000002
	actPermitCT = 0x01000004
	tcActRedir  = 7
)

// ctSwitch is a conntrack switch under test: port 1 (p4t0) inside, port 2
// (p4t1) outside, flows to 10.0.2.0/24 allowed.
type ctSwitch struct {
	*l3Switch
}

// ctPipeline is conntrack's config with a pool of pool entries and the
// given timer profiles.
func ctPipeline(tb testing.TB, pool uint32, profilesMs ...uint32) p4test.Config {
	tb.Helper()
	obj, err := os.ReadFile(ctObject)
	if err != nil {
		tb.Fatal(err)
	}
	tc := fmt.Sprintf("table_id: %d datapath_pool_size: %d", tblCT, pool)
	for _, ms := range profilesMs {
		tc += fmt.Sprintf(" timer_profiles_ms: %d", ms)
	}
	fpc, err := p4test.PipelineDevice(ctP4Info, ctJSON, p4test.Device{TCObject: obj, Tables: []string{tc}})
	if err != nil {
		tb.Fatal(err)
	}
	return fpc
}

func newCTSwitch(tb testing.TB, keep bool, pool uint32, profilesMs ...uint32) *ctSwitch {
	tb.Helper()
	ns, ports := portNS(tb)
	root := filepath.Join(tempBPFFS(tb), "p4tcd")
	sw := &ctSwitch{&l3Switch{ns: ns, root: root, ports: ports}}
	sw.openCT(tb, keep)
	if err := sw.dev.SetPipeline(p4test.Commit, ctPipeline(tb, pool, profilesMs...)); err != nil {
		tb.Fatalf("commit conntrack: %v", err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	sw.write(tb,
		p4test.Insert(p4test.Entry{Table: tblZone, Match: []p4test.Match{p4test.Exact(1, u32(1))}, Action: actSetZone, Params: [][]byte{{1}, u32(2)}}),
		p4test.Insert(p4test.Entry{Table: tblZone, Match: []p4test.Match{p4test.Exact(1, u32(2))}, Action: actSetZone, Params: [][]byte{{0}, u32(1)}}),
		p4test.Insert(p4test.Entry{Table: tblAllow, Match: []p4test.Match{p4test.LPM(1, ip4("10.0.2.0"), 24)}, Action: actPermitCT}),
	)
	return sw
}

// openCT opens a backend whose aging sweep never runs by itself: tests
// call sweep.
func (sw *ctSwitch) openCT(tb testing.TB, keep bool) {
	tb.Helper()
	b, err := New(Options{DeviceID: 1, Ports: sw.ports, PinRoot: sw.root, NetNSPath: nsPath(sw.ns), KeepForwarding: keep, SweepInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	sw.b, sw.dev = b, translator.NewDevice(b)
}

// from runs the datapath on a UDP frame arriving on port and returns the
// verdict.
func (sw *ctSwitch) from(tb testing.TB, port uint32, src string, sport uint16, dst string, dport uint16) uint32 {
	tb.Helper()
	return sw.fromProg(tb, sw.b.cur.prog, port, src, sport, dst, dport)
}

// fromProg is from with a given program.
func (sw *ctSwitch) fromProg(tb testing.TB, prog *ebpf.Program, port uint32, src string, sport uint16, dst string, dport uint16) uint32 {
	tb.Helper()
	f := frame(17, src, dst, sport, dport, 64)
	var ctx [40]byte // struct __sk_buff up to ingress_ifindex
	binary.LittleEndian.PutUint32(ctx[36:], uint32(sw.ifindex[port]))
	ret, err := prog.Run(&ebpf.RunOptions{Data: f, Context: ctx[:]})
	if err != nil {
		tb.Fatalf("test run: %v", err)
	}
	return ret
}

func (sw *ctSwitch) ctCounters(tb testing.TB) Counters {
	tb.Helper()
	c, err := sw.b.Counters(tblCT)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (sw *ctSwitch) poolUsed(tb testing.TB) uint32 {
	tb.Helper()
	_, used, err := sw.b.Pool(tblCT)
	if err != nil {
		tb.Fatal(err)
	}
	return used
}

// created lists the ct entries a Read returns with the datapath marker.
func (sw *ctSwitch) created(tb testing.TB) []p4test.ReadEntry {
	tb.Helper()
	all, err := p4test.ReadTable(sw.dev, tblCT, true)
	if err != nil {
		tb.Fatal(err)
	}
	var out []p4test.ReadEntry
	for _, e := range all {
		if string(e.Metadata) == translator.DatapathMetadata {
			out = append(out, e)
		}
	}
	return out
}

// ctKey is the ct match of a UDP flow (inside first).
func ctKey(in string, inPort uint16, out string, outPort uint16) []p4test.Match {
	return []p4test.Match{
		p4test.Exact(1, ip4(in)), p4test.Exact(2, ip4(out)), p4test.Exact(3, []byte{17}),
		p4test.Exact(4, u16(inPort)), p4test.Exact(5, u16(outPort)),
	}
}

// Traffic creates entries; the pool runs dry and later flows take the
// miss path, counted, not logged; Reads list the created entries; a
// controller DELETE and the aging sweep give slots back.
func TestPrivilegedDatapathCreates(t *testing.T) {
	testutil.Privileged(t)
	sw := newCTSwitch(t, false, 2, 600)

	// Flow A opens from the inside; its replies pass.
	if v := sw.from(t, 1, "10.0.1.1", 1000, "10.0.2.1", 80); v != tcActRedir {
		t.Fatalf("first packet of flow A: verdict %d, want redirect", v)
	}
	t0 := time.Now()
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1000); v != tcActRedir {
		t.Fatalf("reply of flow A: verdict %d, want redirect", v)
	}
	if c := sw.ctCounters(t); c.Created != 1 || c.Hits != 1 || sw.poolUsed(t) != 1 {
		t.Fatalf("after flow A: ct %+v, pool used %d; want 1 created, 1 hit, 1 slot", c, sw.poolUsed(t))
	}
	// Nothing opens from the outside, nor towards a denied destination.
	if v := sw.from(t, 2, "10.0.2.9", 80, "10.0.1.1", 2000); v != tcActShot {
		t.Errorf("unsolicited packet from the outside: verdict %d, want drop", v)
	}
	if v := sw.from(t, 1, "10.0.1.1", 1000, "10.0.3.1", 80); v != tcActShot {
		t.Errorf("flow to a denied destination: verdict %d, want drop", v)
	}
	// B fills the pool; C finds it empty: it goes out untracked and its
	// replies are dropped.
	sw.from(t, 1, "10.0.1.1", 1001, "10.0.2.1", 80)
	for i := 0; i < 50; i++ {
		if v := sw.from(t, 1, "10.0.1.1", 1002, "10.0.2.1", 80); v != tcActRedir {
			t.Fatalf("flow C with the pool empty: verdict %d, want redirect (allowed, untracked)", v)
		}
	}
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1002); v != tcActShot {
		t.Errorf("reply of untracked flow C: verdict %d, want drop", v)
	}
	if c := sw.ctCounters(t); c.Created != 2 || c.CreateFailed != 50 || sw.poolUsed(t) != 2 {
		t.Fatalf("pool dry: ct %+v, pool used %d; want 2 created, 50 failed, 2 slots", c, sw.poolUsed(t))
	}
	if st := tableStats(t, sw.b, tblCT); st.PoolSize != 2 || st.PoolFree != 0 || st.Created != 2 || st.SW != 0 || st.HW != 0 {
		t.Errorf("pool dry: TableStats %+v; want pool 2, 0 free, 2 created, no controller entries", st)
	}

	// Reads list the created entries, marked, with their aging and the
	// inside port they recorded (P4 port 1).
	got := sw.created(t)
	if len(got) != 2 {
		t.Fatalf("Read lists %d datapath-created entries, want 2", len(got))
	}
	for _, e := range got {
		if e.Action != actCTFlow || len(e.Params) != 1 || string(e.Params[0]) != "\x01" || e.IdleTimeoutNs != int64(600*time.Millisecond) {
			t.Errorf("created entry %+v: want ct_flow(1), idle_timeout_ns 600ms", e)
		}
	}
	// The controller deletes B: its slot comes back and C can be tracked.
	sw.write(t, p4test.Delete(p4test.Entry{Table: tblCT, Match: ctKey("10.0.1.1", 1001, "10.0.2.1", 80)}))
	if n := sw.poolUsed(t); n != 1 || len(sw.created(t)) != 1 {
		t.Fatalf("after DELETE: pool used %d, %d entries", n, len(sw.created(t)))
	}
	if st := tableStats(t, sw.b, tblCT); st.PoolFree != 1 || st.SW != 0 {
		t.Errorf("after DELETE: TableStats %+v; want 1 free slot, no controller entries", st)
	}
	sw.from(t, 1, "10.0.1.1", 1002, "10.0.2.1", 80)
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1002); v != tcActRedir {
		t.Errorf("reply of flow C once tracked: verdict %d, want redirect", v)
	}
	tC := time.Now()

	// A controller INSERT of a key the datapath holds is refused.
	err := p4test.Write(sw.dev, p4test.Insert(p4test.Entry{Table: tblCT, Match: ctKey("10.0.1.1", 1002, "10.0.2.1", 80),
		Action: actCTFlow, Params: [][]byte{u32(1)}}))
	if !errors.Is(err, translator.ErrExists) {
		t.Errorf("INSERT over a datapath-created entry: %v, want ALREADY_EXISTS", err)
	}

	// Aging: A is hit 350 ms after its creation, C is left alone; at 700 ms
	// C is gone and A stays.
	time.Sleep(time.Until(t0.Add(350 * time.Millisecond)))
	sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1000)
	time.Sleep(time.Until(tC.Add(700 * time.Millisecond)))
	evs := sw.b.sweep()
	if len(evs) != 1 || !evs[0].Removed || evs[0].Entry.Origin != translator.OriginDatapath {
		t.Fatalf("sweep reported %+v, want flow C removed", evs)
	}
	if e := evs[0].Entry; string(e.Match[3].Value) != string(u16(1002)) || evs[0].Idle < 600*time.Millisecond {
		t.Errorf("removed entry %v idle %v, want flow C idle ≥ 600ms", e.Match, evs[0].Idle)
	}
	if n := sw.poolUsed(t); n != 1 {
		t.Errorf("after aging: pool used %d, want 1", n)
	}
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1002); v != tcActShot {
		t.Errorf("reply of aged-out flow C: verdict %d, want drop", v)
	}
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1000); v != tcActRedir {
		t.Errorf("reply of busy flow A after the sweep: verdict %d, want redirect", v)
	}
	got = sw.created(t)
	if len(got) != 1 || got[0].SinceLastHitNs > int64(100*time.Millisecond) {
		t.Errorf("after aging: %+v; want flow A, hit just now", got)
	}
}

// Idle timeouts of controller entries: an idle entry is reported, one that
// sees traffic is not; the report repeats after another timeout;
// time_since_last_hit comes from the datapath.
func TestPrivilegedIdleTimeout(t *testing.T) {
	testutil.Privileged(t)
	sw := newCTSwitch(t, false, 0)
	pinhole := func(inPort uint16) p4test.Update {
		u := p4test.Insert(p4test.Entry{Table: tblCT, Match: ctKey("10.0.1.1", inPort, "10.0.2.1", 80), Action: actCTFlow, Params: [][]byte{u32(1)}})
		u.GetEntity().GetTableEntry().IdleTimeoutNs = int64(400 * time.Millisecond)
		return u
	}
	sw.write(t, pinhole(1111), pinhole(1112))
	t0 := time.Now()
	time.Sleep(250 * time.Millisecond)
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1111); v != tcActRedir {
		t.Fatalf("traffic on pinhole 1111: verdict %d", v)
	}
	if evs := sw.b.sweep(); len(evs) != 0 {
		t.Errorf("sweep at 250ms reported %+v, want nothing", evs)
	}
	time.Sleep(time.Until(t0.Add(500 * time.Millisecond)))
	evs := sw.b.sweep()
	if len(evs) != 1 || evs[0].Removed || string(evs[0].Entry.Match[3].Value) != string(u16(1112)) {
		t.Fatalf("sweep at 500ms reported %+v, want pinhole 1112 idle", evs)
	}
	if evs[0].Idle < 400*time.Millisecond || evs[0].Entry.IdleTimeoutNs != int64(400*time.Millisecond) {
		t.Errorf("idle event %+v", evs[0])
	}
	// time_since_last_hit: 1111 was hit ~250ms ago, 1112 never (written
	// ~500ms ago).
	got, err := p4test.ReadTable(sw.dev, tblCT, true)
	if err != nil || len(got) != 2 {
		t.Fatalf("read: %d entries, %v", len(got), err)
	}
	for _, e := range got {
		since := time.Duration(e.SinceLastHitNs)
		switch string(e.Match[3]) {
		case string(u16(1111)):
			if since < 200*time.Millisecond || since > 400*time.Millisecond {
				t.Errorf("pinhole 1111: time_since_last_hit %v, want about 250ms", since)
			}
		default:
			if since < 450*time.Millisecond || since > 900*time.Millisecond {
				t.Errorf("pinhole 1112: time_since_last_hit %v, want about 500ms", since)
			}
		}
	}
	// Reported once per timeout: not again right away, again after 400ms.
	if evs := sw.b.sweep(); len(evs) != 0 {
		t.Errorf("second sweep reported %+v", evs)
	}
	time.Sleep(420 * time.Millisecond)
	if evs := sw.b.sweep(); len(evs) != 2 {
		t.Errorf("after another timeout: %d events, want both pinholes", len(evs))
	}
	// A deleted entry is no longer reported.
	sw.write(t, p4test.Delete(p4test.Entry{Table: tblCT, Match: ctKey("10.0.1.1", 1112, "10.0.2.1", 80)}))
	time.Sleep(420 * time.Millisecond)
	if evs := sw.b.sweep(); len(evs) != 1 {
		t.Errorf("after DELETE: %d events, want 1", len(evs))
	}
}

// The program's lifecycle: RECONCILE_AND_COMMIT loads a new program, the
// entries the old one created are gone and their slots free, controller
// entries forward; a restart with KeepForwarding keeps both kinds and
// Restore rebuilds them.
func TestPrivilegedCreatedEntriesLifecycle(t *testing.T) {
	testutil.Privileged(t)
	sw := newCTSwitch(t, true, 4, 60000)
	sw.from(t, 1, "10.0.1.1", 1000, "10.0.2.1", 80)
	sw.from(t, 1, "10.0.1.1", 1001, "10.0.2.1", 80)
	if n := sw.poolUsed(t); n != 2 {
		t.Fatalf("pool used %d, want 2", n)
	}

	// Restart keeping forwarding: both kinds survive, the created entries
	// still pass traffic and keep their slots.
	before := readAll(t, sw.dev)
	prog, err := sw.b.cur.prog.Clone()
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	if v := sw.fromProg(t, prog, 2, "10.0.2.1", 80, "10.0.1.1", 1000); v != tcActRedir {
		t.Errorf("reply of flow A while p4tcd is down: verdict %d", v)
	}
	sw.openCT(t, true)
	if ok, err := sw.dev.Restore(); err != nil || !ok {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if after := readAll(t, sw.dev); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("after restore the Read differs:\n%s\nwant\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
	}
	if n := sw.poolUsed(t); n != 2 || len(sw.created(t)) != 2 {
		t.Errorf("after restore: pool used %d, %d created entries; want 2, 2", n, len(sw.created(t)))
	}

	// RECONCILE_AND_COMMIT: a new program and new maps; the old program's
	// entries go with it, the controller's are carried over.
	gen := sw.b.cur.gen
	if err := sw.dev.SetPipeline(p4test.Reconcile, ctPipeline(t, 4, 60000)); err != nil {
		t.Fatal(err)
	}
	if sw.b.cur.gen == gen {
		t.Fatal("reconcile did not load a new program")
	}
	if n := sw.poolUsed(t); n != 0 || len(sw.created(t)) != 0 {
		t.Errorf("after reconcile: pool used %d, %d created entries; want none", n, len(sw.created(t)))
	}
	if _, err := os.Stat(sw.b.genDir(gen)); !os.IsNotExist(err) {
		t.Errorf("the old generation is still pinned: %v", err)
	}
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1000); v != tcActShot {
		t.Errorf("reply of a flow the old program tracked: verdict %d, want drop", v)
	}
	// Controller entries (port zones, allow) still work: a new flow opens.
	if v := sw.from(t, 1, "10.0.1.1", 1000, "10.0.2.1", 80); v != tcActRedir {
		t.Errorf("new flow after reconcile: verdict %d", v)
	}
	if v := sw.from(t, 2, "10.0.2.1", 80, "10.0.1.1", 1000); v != tcActRedir || sw.poolUsed(t) != 1 {
		t.Errorf("reply of the new flow: verdict %d, pool used %d", v, sw.poolUsed(t))
	}
}

// Tables whose permissions keep the datapath from creating entries
// cannot have a pool; add-on-miss needs an exact table.
func TestPoolNeedsDataCreate(t *testing.T) {
	obj, err := os.ReadFile(ctObject)
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.PipelineDevice(ctP4Info, ctJSON, p4test.Device{TCObject: obj,
		Tables: []string{fmt.Sprintf("table_id: %d datapath_pool_size: 8", tblZone)}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := translator.CompileConfig(fpc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan(c); !errors.Is(err, translator.ErrInvalid) || !strings.Contains(err.Error(), "create") {
		t.Errorf("pool on port_zone (no data-path create): %v", err)
	}
}

// Restore counts the pool's use again from the entries the datapath
// created that are in the table: a use left too high (a p4tcd killed
// between deleting such an entry and giving its slot back) or too low
// is set to the true count, and a pool left looking full creates again.
func TestPrivilegedPoolRecount(t *testing.T) {
	testutil.Privileged(t)
	sw := newCTSwitch(t, true, 4, 60000)
	for i := range 3 {
		if v := sw.from(t, 1, "10.0.1.1", uint16(1000+i), "10.0.2.1", 80); v != tcActRedir {
			t.Fatalf("flow %d: verdict %d", i, v)
		}
	}
	if n := sw.poolUsed(t); n != 3 {
		t.Fatalf("pool used %d, want 3", n)
	}
	pool := filepath.Join(sw.b.genDir(sw.b.cur.gen), "maps", sw.b.cur.byID[tblCT].plan.poolMap())
	for _, bad := range []uint32{4, 0, 1 << 31} {
		// Corrupt the pinned pool's use behind p4tcd's back, then
		// restart.
		m, err := ebpf.LoadPinnedMap(pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Update(uint32(0), [2]uint32{4, bad}, ebpf.UpdateAny); err != nil {
			t.Fatal(err)
		}
		m.Close()
		if err := sw.b.Close(); err != nil {
			t.Fatal(err)
		}
		sw.openCT(t, true)
		if ok, err := sw.dev.Restore(); err != nil || !ok {
			t.Fatalf("restore: %v %v", ok, err)
		}
		if c, n, _ := sw.b.Pool(tblCT); n != 3 || c != 4 {
			t.Errorf("pool used %d of %d after a restore from %d, want 3 of 4", n, c, bad)
		}
	}
	// The recount gave the slot back: one more flow fits, then the pool
	// is full.
	if v := sw.from(t, 1, "10.0.1.1", 2000, "10.0.2.1", 80); v != tcActRedir || sw.poolUsed(t) != 4 {
		t.Errorf("a fourth flow: verdict %d, pool used %d", v, sw.poolUsed(t))
	}
	// A count the datapath raced with (the use moved since the count
	// began: here from 99 to 4) is not set; the table is counted again.
	if err := sw.b.cur.settlePool(sw.b.cur.byID[tblCT], 99, 1); err != nil || sw.poolUsed(t) != 4 {
		t.Errorf("a count of 1 begun at 99 with 4 entries: pool used %d (%v), want 4", sw.poolUsed(t), err)
	}
	before := sw.ctCounters(t).CreateFailed
	sw.from(t, 1, "10.0.1.1", 2001, "10.0.2.1", 80)
	if n := sw.poolUsed(t); n != 4 || sw.ctCounters(t).CreateFailed != before+1 {
		t.Errorf("a fifth flow on a full pool: pool used %d, failed creates %d (before %d)", n, sw.ctCounters(t).CreateFailed, before)
	}
}

// The datapath updates and deletes the entries it created
// (bpf_p4tc_entry_update, bpf_p4tc_entry_delete; testdata/ctcrud.c), and
// only those: a controller entry is refused with -EPERM, a missing one
// with -ENOENT. A delete gives the slot back, and never takes the pool's
// use below zero, even when it was undercounted.
func TestPrivilegedDatapathUpdateDelete(t *testing.T) {
	testutil.Privileged(t)
	obj, err := os.ReadFile("testdata/ctcrud.o")
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.PipelineDevice(ctP4Info, "testdata/ctcrud.json", p4test.Device{TCObject: obj,
		Tables: []string{fmt.Sprintf("table_id: %d datapath_pool_size: 2", tblCT)}})
	if err != nil {
		t.Fatal(err)
	}
	ns, ports := portNS(t)
	sw := &ctSwitch{&l3Switch{ns: ns, root: filepath.Join(tempBPFFS(t), "p4tcd"), ports: ports}}
	sw.openCT(t, false)
	if err := sw.dev.SetPipeline(p4test.Commit, fpc); err != nil {
		t.Fatal(err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	const (
		enoent = 2
		eperm  = 1
		hitCT  = 2 * 1000 // act_id of ct_flow, times 1000
	)
	// op runs the program's operation op on the flow from 10.0.1.1:sport,
	// the frame arriving on port.
	op := func(port uint32, sport, op uint16) int32 {
		t.Helper()
		return int32(sw.from(t, port, "10.0.1.1", sport, "10.0.2.1", op))
	}
	lookup := func(sport uint16) int32 { return op(1, sport, 9) }
	in1, in2 := int32(sw.ifindex[1]), int32(sw.ifindex[2])
	for _, c := range []struct {
		what       string
		port       uint32
		sport, op  uint16
		want       int32
		lookupWant int32
		used       uint32
	}{
		{"update of a missing entry", 1, 1000, 2, 200 - enoent, 0, 0},
		{"delete of a missing entry", 1, 1000, 3, 300 - enoent, 0, 0},
		{"create", 1, 1000, 1, 100, hitCT + in1, 1},
		{"update", 2, 1000, 2, 200, hitCT + in2, 1},
		{"second create", 1, 1001, 1, 100, hitCT + in1, 2},
		{"delete", 1, 1000, 3, 300, 0, 1},
		{"delete again", 1, 1000, 3, 300 - enoent, 0, 1},
	} {
		if got := op(c.port, c.sport, c.op); got != c.want {
			t.Errorf("%s: returned %d, want %d", c.what, got, c.want)
		}
		if got := lookup(c.sport); got != c.lookupWant {
			t.Errorf("%s: lookup returned %d, want %d", c.what, got, c.lookupWant)
		}
		if got := sw.poolUsed(t); got != c.used {
			t.Errorf("%s: pool used %d, want %d", c.what, got, c.used)
		}
	}
	if got := sw.created(t); len(got) != 1 {
		t.Errorf("Read lists %d datapath-created entries, want 1 (sport 1001)", len(got))
	}

	// A controller entry is not the datapath's to change.
	sw.write(t, p4test.Insert(p4test.Entry{Table: tblCT, Match: ctKey("10.0.1.1", 2000, "10.0.2.1", 80),
		Action: actCTFlow, Params: [][]byte{u32(2)}}))
	if got := op(1, 2000, 2); got != 200-eperm {
		t.Errorf("update of a controller entry: %d, want %d", got, 200-eperm)
	}
	if got := op(1, 2000, 3); got != 300-eperm {
		t.Errorf("delete of a controller entry: %d, want %d", got, 300-eperm)
	}
	if got := lookup(2000); got != hitCT+in2 {
		t.Errorf("controller entry after the datapath's attempts: lookup %d, want %d", got, hitCT+in2)
	}

	// An undercounted pool (use 0 with an entry present): the delete
	// leaves it at 0 instead of wrapping, and the pool still takes new
	// entries.
	atomic.StoreUint32(sw.b.cur.byID[tblCT].poolWord(1), 0)
	if got := op(1, 1001, 3); got != 300 {
		t.Fatalf("delete with the pool undercounted: %d", got)
	}
	if got := sw.poolUsed(t); got != 0 {
		t.Errorf("pool used %d after a delete from 0, want 0", got)
	}
	if got := op(1, 1002, 1); got != 100 {
		t.Errorf("create after the undercounted delete: %d, want 100", got)
	}
}
