package ebpfdp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// errCrash is what a crashing backend panics with: p4tcd died here.
var errCrash = errors.New("p4tcd killed")

// crashing is a Backend that dies in the middle of a batch, as p4tcd does
// under kill -9: the first `left` ops the Device hands it reach the
// datapath, then it panics (in the Apply that would pass that point, which
// still applies the ops before it, or in CommitBatch when every op got
// through) and passes nothing through again. left < 0 never dies.
type crashing struct {
	*Backend
	left int
	dead bool
}

func (c *crashing) Apply(ops []translator.Op) (int, error) {
	c.pass(len(ops), func(n int) { c.Backend.Apply(ops[:n]) })
	return c.Backend.Apply(ops)
}

// ApplyExterns dies as Apply does: table and extern ops count alike.
func (c *crashing) ApplyExterns(ops []translator.ExternOp) (int, error) {
	c.pass(len(ops), func(n int) { c.Backend.ApplyExterns(ops[:n]) })
	return c.Backend.ApplyExterns(ops)
}

// pass lets n ops through, or applies those that are left (with apply)
// and dies.
func (c *crashing) pass(n int, apply func(n int)) {
	if c.dead {
		panic(errCrash)
	}
	if c.left >= 0 && n > c.left {
		apply(c.left)
		c.dead = true
		panic(errCrash)
	}
	if c.left >= 0 {
		c.left -= n
	}
}

func (c *crashing) BeginBatch() {
	if !c.dead {
		c.Backend.BeginBatch()
	}
}

func (c *crashing) CommitBatch() {
	if c.dead {
		return
	}
	if c.left == 0 {
		c.dead = true
		panic(errCrash)
	}
	c.Backend.CommitBatch()
}

// cutSwitch is a pipeline (l3router with its XDP tier, or ecmp) on a pin
// root that outlives the Backends the test kills.
type cutSwitch struct {
	t     *testing.T // the test that owns the Backends
	ns    *testutil.NetNS
	ports map[uint32]string
	root  string
	b     *Backend
	dev   *translator.Device
	cr    *crashing
	// reads lists what Reads of the pipeline's externs return (nil:
	// none).
	reads func(t *testing.T) []string
}

func newCutSwitch(t *testing.T) *cutSwitch {
	t.Helper()
	ns, ports := portNS(t)
	return newCutSwitchOn(t, ns, ports, l3XDPPipeline(t))
}

// newCutSwitchOn commits a pipeline on ports of ns.
func newCutSwitchOn(t *testing.T, ns *testutil.NetNS, ports map[uint32]string, cfg p4test.Config) *cutSwitch {
	t.Helper()
	sw := &cutSwitch{t: t, ns: ns, ports: ports, root: filepath.Join(tempBPFFS(t), "p4tcd")}
	sw.open(t)
	if err := sw.dev.SetPipeline(p4test.Commit, cfg); err != nil {
		t.Fatal(err)
	}
	return sw
}

// open starts a new p4tcd's Backend (KeepForwarding) and Device.
func (sw *cutSwitch) open(t *testing.T) {
	t.Helper()
	b, err := New(Options{DeviceID: 1, Ports: sw.ports, PinRoot: sw.root, NetNSPath: nsPath(sw.ns), KeepForwarding: true})
	if err != nil {
		t.Fatal(err)
	}
	sw.t.Cleanup(func() { b.Close() })
	sw.b, sw.cr = b, &crashing{Backend: b, left: -1}
	sw.dev = translator.NewDevice(sw.cr)
}

// restart abandons the running p4tcd (its pins stay, as after kill -9)
// and starts another that restores the datapath.
func (sw *cutSwitch) restart(t *testing.T) {
	t.Helper()
	sw.b.Close()
	sw.open(t)
	if ok, err := sw.dev.Restore(); err != nil || !ok {
		t.Fatalf("restore: %v %v", ok, err)
	}
}

// write writes updates as a role with the given placement (nil: the
// tables'), and reports whether p4tcd died during the Write.
func (sw *cutSwitch) write(t *testing.T, sc *translator.Scope, atom p4test.Atomicity, us []p4test.Update) (crashed bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if r != errCrash {
				panic(r)
			}
			crashed = true
		}
	}()
	if _, err := sw.dev.Write(us, atom, sc); err != nil {
		t.Fatalf("write: %v", err)
	}
	return false
}

// state is what the switch holds: every entry a Read returns (and every
// extern), and every row of the maps the datapath and a restart read
// (entries of both tiers, default slots, mask lists, side records, extern
// maps and records; counter cells summed over CPUs, as Reads see them).
// Ternary tables are shown by mask, not mask id: a restart may give a mask
// that went and came back a new id (ids only grow), which the datapath
// cannot tell apart.
func (sw *cutSwitch) state(t *testing.T) (read []string, kernel map[string]string) {
	t.Helper()
	read = readAll(t, sw.dev)
	if sw.reads != nil {
		read = append(read, sw.reads(t)...)
	}
	kernel = map[string]string{}
	dump := func(what string, m *ebpf.Map, key func([]byte) string) {
		k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
		it := m.Iterate()
		for it.Next(&k, &v) {
			kernel[what+" "+key(k)] = hex.EncodeToString(v)
		}
		if err := it.Err(); err != nil {
			t.Fatalf("dump %s: %v", what, err)
		}
	}
	inner := func(what string, outer *ebpf.Map) []byte {
		var m *ebpf.Map
		if err := outer.Lookup(uint32(0), &m); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil
			}
			t.Fatalf("%s: %v", what, err)
		}
		defer m.Close()
		v := make([]byte, m.ValueSize())
		if err := m.Lookup(uint32(0), v); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	p := sw.b.cur
	for _, tr := range p.tiers() {
		for _, ts := range tr.tables {
			name := fmt.Sprintf("%s/%s", tr.kind, ts.plan.table.Name)
			if v := inner(name+" default", ts.dflt); v != nil {
				kernel[name+" default"] = hex.EncodeToString(v)
			}
			key := hex.EncodeToString
			if ts.masks != nil {
				bits := map[uint32]string{}
				var set []string
				for _, m := range ts.tss.parseMasklist(inner(name+" masks", ts.masks)) {
					bits[m.id] = hex.EncodeToString(m.bits)
					set = append(set, bits[m.id])
				}
				slices.Sort(set)
				kernel[name+" masks"] = strings.Join(set, " ")
				key = func(k []byte) string {
					return fmt.Sprintf("%x mask %s %x", k[:4], bits[ne.Uint32(k[4:])], k[8:])
				}
			}
			if ts.entries != nil {
				dump(name, ts.entries, key)
			}
		}
	}
	dump("side", p.side.m, hex.EncodeToString)
	if x := p.ext; x != nil {
		for name, m := range x.maps() {
			if m.Type() != ebpf.PerCPUArray {
				dump(name, m, hex.EncodeToString)
				continue
			}
			sums := make([]translator.CounterData, m.MaxEntries())
			idx := make([]uint32, len(sums))
			for i := range idx {
				idx[i] = uint32(i)
			}
			if err := x.sumCounters(m, idx, sums); err != nil {
				t.Fatalf("dump %s: %v", name, err)
			}
			for i, d := range sums {
				kernel[fmt.Sprintf("%s %d", name, i)] = fmt.Sprint(d)
			}
		}
		dump("externs", x.store.m, hex.EncodeToString)
	}
	return read, kernel
}

// sameState fails the test unless the switch holds what it held.
func (sw *cutSwitch) sameState(t *testing.T, what string, read []string, kernel map[string]string) {
	t.Helper()
	r, k := sw.state(t)
	if !slices.Equal(r, read) {
		t.Errorf("%s: Reads differ:\nwant:\n%s\ngot:\n%s", what, strings.Join(read, ""), strings.Join(r, ""))
	}
	if !maps.Equal(k, kernel) {
		var diff []string
		for key, v := range kernel {
			if k[key] != v {
				diff = append(diff, fmt.Sprintf("%s: want %s, got %q", key, v, k[key]))
			}
		}
		for key, v := range k {
			if _, ok := kernel[key]; !ok {
				diff = append(diff, fmt.Sprintf("%s: want none, got %s", key, v))
			}
		}
		slices.Sort(diff)
		t.Errorf("%s: the maps differ:\n%s", what, strings.Join(diff, "\n"))
	}
}

// A p4tcd killed at any point of a batch — before its first op, between
// any two, after the last but before the answer, in the middle of the
// Device's own rollback — leaves nothing of it once the next p4tcd has
// restored: the Reads and every map row are as before the batch. Exact,
// LPM and ternary inserts, modifies and deletes, side records, default
// actions, entries placed hw, sw and both. A batch committed before the
// kill stays whole. Each restore also runs its rollback a second time,
// as a p4tcd killed during a rollback would.
func TestPrivilegedJournalCutBatch(t *testing.T) {
	testutil.Privileged(t)
	sw := newCutSwitch(t)
	nh := func(id uint16, port uint32, meta string) p4test.Entry {
		return p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(id))},
			Action: actForward, Params: [][]byte{macB, macR, u32(port)}, Metadata: []byte(meta)}
	}
	route := func(prefix string, plen int32, nhop uint16, meta string) p4test.Entry {
		return p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4(prefix), plen)},
			Action: actSetNhop, Params: [][]byte{u16(nhop)}, Metadata: []byte(meta)}
	}
	fill := func(sc *translator.Scope, us ...p4test.Update) {
		t.Helper()
		if err := p4test.WriteAs(sw.dev, sc, us...); err != nil {
			t.Fatal(err)
		}
	}
	// Before: entries of every kind and placement, defaults set.
	fill(nil,
		p4test.Insert(nh(10, 2, "")), p4test.Insert(nh(20, 1, "nh20")),
		p4test.Insert(route("10.1.0.0", 16, 10, "")), p4test.Insert(route("10.2.0.0", 16, 20, "to 10.2")),
		p4test.Insert(aclEntry(10, actDeny, p4test.Range(5, u16(1000), u16(2000)))),
		p4test.Insert(aclEntry(50, actDeny, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))),
		p4test.Insert(aclEntry(45, actPermit, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))),
		p4test.Modify(p4test.Entry{Table: tblACL, Default: true, Action: actDeny, Metadata: []byte("closed")}))
	fill(placed(translator.PlaceHW), p4test.Insert(route("10.3.0.0", 16, 10, "")), p4test.Insert(nh(30, 2, "hw")),
		p4test.Insert(aclEntry(60, actDeny, p4test.Ternary(2, ip4("10.6.0.0"), ip4("255.255.0.0")))))
	fill(placed(translator.PlaceSW), p4test.Insert(route("10.4.0.0", 16, 10, "")),
		p4test.Insert(aclEntry(70, actDeny, p4test.Ternary(2, ip4("10.7.0.0"), ip4("255.255.0.0")))))

	mixed := []p4test.Update{
		p4test.Insert(nh(40, 1, "")), p4test.Insert(nh(41, 2, "meta")),
		p4test.Modify(nh(20, 2, "nh20 changed")), p4test.Modify(nh(10, 1, "now with metadata")),
		p4test.Delete(nh(30, 0, "")), // placed hw
		p4test.Insert(route("10.40.0.0", 16, 40, "")), p4test.Insert(route("10.41.0.0", 24, 41, "m")),
		p4test.Modify(route("10.2.0.0", 16, 10, "")), // loses its side record
		p4test.Delete(route("10.1.0.0", 16, 0, "")), p4test.Delete(route("10.3.0.0", 16, 0, "")),
		p4test.Modify(route("10.4.0.0", 16, 20, "")),                                                   // placed sw
		p4test.Insert(aclEntry(80, actDeny, p4test.Ternary(1, ip4("10.8.0.0"), ip4("255.255.255.0")))), // a new mask
		p4test.Insert(aclEntry(55, actPermit, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))), // wins the key
		p4test.Modify(aclEntry(10, actPermit, p4test.Range(5, u16(1000), u16(2000)))),
		p4test.Delete(aclEntry(50, 0, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))),
		p4test.Delete(aclEntry(60, 0, p4test.Ternary(2, ip4("10.6.0.0"), ip4("255.255.0.0")))),
		p4test.Modify(p4test.Entry{Table: tblACL, Default: true, Action: actPermit}),
		p4test.Modify(p4test.Entry{Table: tblNexthop, Default: true, Action: actForward, Params: [][]byte{macA, macR, u32(1)}}),
	}
	inserts := func(n byte) []p4test.Update {
		return []p4test.Update{
			p4test.Insert(nh(uint16(n), 1, "")), p4test.Insert(route(fmt.Sprintf("10.%d.0.0", n), 16, uint16(n), "x")),
			p4test.Insert(aclEntry(int32(n), actDeny, p4test.Ternary(2, ip4(fmt.Sprintf("10.%d.0.0", n)), ip4("255.255.0.0")))),
		}
	}
	// On what mixed leaves. The last update fails in the datapath (port 9
	// is not a port): the Device takes the batch back with inverse ops,
	// which may be cut too.
	failing := []p4test.Update{
		p4test.Insert(nh(60, 1, "a")), p4test.Insert(route("10.60.0.0", 16, 60, "")),
		p4test.Modify(nh(40, 2, "meta now")), p4test.Delete(route("10.41.0.0", 24, 0, "")),
		p4test.Insert(aclEntry(95, actDeny, p4test.Ternary(1, ip4("10.95.0.0"), ip4("255.255.0.0")))),
		p4test.Delete(aclEntry(80, 0, p4test.Ternary(1, ip4("10.8.0.0"), ip4("255.255.255.0")))),
		p4test.Modify(p4test.Entry{Table: tblACL, Default: true, Action: actDeny}),
		p4test.Insert(nh(99, 9, "")),
	}

	for _, tc := range []struct {
		name string
		sc   *translator.Scope
		atom p4test.Atomicity
		us   []p4test.Update
	}{
		{"mixed", nil, p4test.ContinueOnError, mixed},
		{"placed-hw", placed(translator.PlaceHW), p4test.ContinueOnError, inserts(90)},
		{"placed-sw", placed(translator.PlaceSW), p4test.ContinueOnError, inserts(91)},
		{"rollback-on-error", nil, p4test.RollbackOnError, failing},
	} {
		t.Run(tc.name, func(t *testing.T) { sw.cutEverywhere(t, tc.sc, tc.atom, tc.us) })
		// The next case starts from what this one left.
		sw.cr.left = -1
	}
}

// cutEverywhere writes a batch once for every point p4tcd can die at:
// after each op the Device hands the Backend (table and extern ops alike),
// and after the last one before the commit, until the batch goes through
// and is answered. After each kill the next p4tcd restores: the switch
// must hold exactly what it held before the batch (and what it holds
// after it once answered), also when the rollback runs twice. The batch
// starts from what the previous one left.
func (sw *cutSwitch) cutEverywhere(t *testing.T, sc *translator.Scope, atom p4test.Atomicity, us []p4test.Update) {
	t.Helper()
	read, kernel := sw.state(t)
	for cut := 0; ; cut++ {
		if cut > 200 {
			t.Fatal("the batch never completes")
		}
		sw.cr.left = cut
		seq := sw.b.cur.jr.segs[0].u64(jSeqOff)
		crashed := sw.write(t, sc, atom, us)
		wantRead, wantKernel := read, kernel
		js, err := ReadPinnedJournal(sw.root)
		if err != nil || js.Applying != crashed || js.Seq != atomic.LoadUint64(seq) || js.Generation != sw.b.cur.gen {
			t.Errorf("journal after the Write (killed: %v, batch %d): %+v %v", crashed, atomic.LoadUint64(seq), js, err)
		}
		what := fmt.Sprintf("killed after %d ops", cut)
		if !crashed {
			// Committed and answered, then killed: the batch
			// stays.
			wantRead, wantKernel = sw.state(t)
			what = "killed after the answer"
			if slices.Equal(wantRead, read) && atom != p4test.RollbackOnError {
				t.Fatal("the batch changed nothing")
			}
		}
		sw.restart(t)
		sw.sameState(t, what, wantRead, wantKernel)
		if t.Failed() {
			return
		}
		// A p4tcd killed while rolling back: the next one rolls
		// back again.
		if cut > 0 && crashed {
			atomic.StoreUint32(sw.b.cur.jr.segs[0].u32(jStateOff), jStateApplying)
			sw.restart(t)
			sw.sameState(t, what+", rolled back twice", wantRead, wantKernel)
		}
		if atomic.LoadUint32(sw.b.cur.jr.segs[0].u32(jStateOff)) != jStateIdle {
			t.Errorf("%s: the journal is left open", what)
		}
		if !crashed {
			if cut <= len(us) {
				t.Errorf("only %d ops of %d updates reached the datapath", cut-1, len(us))
			}
			t.Logf("batch of %d updates: %d cut points", len(us), cut+1)
			return
		}
	}
}

// The journal's records round-trip through its segments, across a
// segment boundary, and a record cut before it is published is no record.
func TestJournalRecords(t *testing.T) {
	j := &journal{}
	for range 3 {
		j.segs = append(j.segs, journalSeg{mem: make([]byte, journalSegSize)})
	}
	atomic.StoreUint32(j.segs[0].u32(jMagicOff), journalMagic)
	if recs, _, err := j.pending(); err != nil || len(recs) != 0 {
		t.Fatalf("a fresh journal has %d records pending (%v)", len(recs), err)
	}
	j.begin()
	idx, err := j.mapIndex("xdp/maps/p4tc_t2")
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{7}, 16)
	prev := bytes.Repeat([]byte{9}, 136)
	ref := sideRef{table: 3, id: sideID{1, 2, 3}}
	// Runs of inserts and of modifies, enough to fill a segment and a half:
	// a run that does not fit the rest of a segment is split.
	var want, split int
	for i := 0; j.cur < 1 || j.off < journalSegSize/2; i++ {
		vs, n := 0, 1000
		if i%2 == 1 {
			vs = len(prev)
		}
		for n > 0 {
			m, rk, rv, err := j.rows(idx, len(key), vs, n)
			if err != nil {
				t.Fatal(err)
			}
			if m < n {
				split++
			}
			for k := range m {
				copy(rk[k*len(key):], key)
				if vs > 0 {
					copy(rv[k*vs:], prev)
				}
			}
			n -= m
			want += m
		}
	}
	if split != 1 {
		t.Errorf("%d runs split across segments, want 1", split)
	}
	if err := j.side(ref, []byte("prev record")); err != nil {
		t.Fatal(err)
	}
	if err := j.side(ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := j.dflt(0x02000001); err != nil {
		t.Fatal(err)
	}
	// A record written but not published (p4tcd died in between).
	if _, err := j.add(16, jkDefault, 0, 0, 1); err != nil {
		t.Fatal(err)
	}
	recs, seq, err := j.pending()
	if err != nil {
		t.Fatal(err)
	}
	if seq != 1 || len(recs) != want+4 {
		t.Fatalf("batch %d: %d records, want batch 1 with %d", seq, len(recs), want+4)
	}
	if r := recs[0]; r.kind != jkName || r.name != "xdp/maps/p4tc_t2" || r.a != idx {
		t.Errorf("name record %+v", r)
	}
	for i, r := range recs[1 : want+1] {
		if ins := i/1000%2 == 0; r.kind != jkRows || r.prev == ins || !bytes.Equal(r.key, key) || (!ins && !bytes.Equal(r.val, prev)) {
			t.Fatalf("row %d: %+v", i, r)
		}
	}
	if r := recs[want+1]; r.kind != jkSide || !r.prev || string(r.val) != "prev record" || r.table != 3 || r.id != ref.id {
		t.Errorf("side record %+v", r)
	}
	if r := recs[want+2]; r.kind != jkSide || r.prev {
		t.Errorf("new side record %+v", r)
	}
	if r := recs[want+3]; r.kind != jkDefault || r.table != 0x02000001 {
		t.Errorf("default record %+v", r)
	}
	if got := atomic.LoadUint64(j.segs[0].u64(jChangesOff)); got != uint64(want+3) {
		t.Errorf("header counts %d changes, want %d", got, want+3)
	}
	j.commit()
	if recs, _, err := j.pending(); err != nil || len(recs) != 0 {
		t.Errorf("a committed batch leaves %d records pending (%v)", len(recs), err)
	}
	// The next batch starts over at the head of segment 0.
	j.begin()
	if err := j.dflt(1); err != nil {
		t.Fatal(err)
	}
	if recs, seq, err := j.pending(); err != nil || len(recs) != 1 || seq != 2 {
		t.Errorf("second batch %d: %d records (%v)", seq, len(recs), err)
	}
	// A closed journal (its segments unmapped, as after Backend.Close)
	// takes nothing, whatever is asked of it.
	closed := &journal{}
	closed.begin()
	if closed.active() || closed.dflt(1) != nil || closed.side(ref, nil) != nil {
		t.Error("a closed journal takes records")
	}
	closed.publish()
	closed.commit()
}

// FuzzJournalRecord: decoding never panics, and what decodes fits in what
// was given.
func FuzzJournalRecord(f *testing.F) {
	f.Add([]byte{16, 0, 0, 0, jkDefault, 0, 0, 0, 1, 0, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{24, 0, 0, 0, jkRows, jfPrev, 0, 0, 2, 0, 3, 0, 1, 0, 0, 0, 1, 2, 3, 4, 5, 0, 0, 0})
	f.Add([]byte{16, 0, 0, 0, jkName, 0, 0, 0, 3, 0, 'a', '/', 'b', 0, 0, 0})
	f.Add(append([]byte{48, 0, 0, 0, jkExt, 0, 0, 0, 1, 0, 0, 0}, make([]byte, 36)...))
	f.Add(append([]byte{56, 0, 0, 0, jkCounters, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5}, make([]byte, 39)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, n, err := decodeJournalRec(b)
		if err != nil {
			return
		}
		if n > len(b) || n%8 != 0 || n < jrecHead {
			t.Fatalf("decoded %d bytes of %d", n, len(b))
		}
		size := 0
		for _, r := range rs {
			size += len(r.key) + len(r.val) + len(r.name)
		}
		if size > n || len(rs) == 0 {
			t.Fatalf("%d records of %d bytes from %d", len(rs), size, n)
		}
	})
}

// BenchmarkJournalRows measures what the journal adds to a run of 1,000
// inserts: one record of their keys and one publish, in memory.
func BenchmarkJournalRows(b *testing.B) {
	j := &journal{segs: []journalSeg{{mem: make([]byte, journalSegSize)}}}
	keys := make([]byte, 1000*16)
	b.ResetTimer()
	for range b.N {
		j.begin()
		idx, err := j.mapIndex("maps/p4tc_t2")
		if err != nil {
			b.Fatal(err)
		}
		m, rk, _, err := j.rows(idx, 16, 0, 1000)
		if err != nil || m != 1000 {
			b.Fatal(m, err)
		}
		copy(rk, keys)
		j.publish()
		j.commit()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/op-journaled")
}
