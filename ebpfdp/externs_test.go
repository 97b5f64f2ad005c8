package ebpfdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// The ecmp example (examples/ecmp): every extern.
const (
	ecmpDir       = "../examples/ecmp"
	ecmpP4Info    = ecmpDir + "/ecmp.p4info.txt"
	ecmpJSON      = ecmpDir + "/ecmp.json"
	ecmpObject    = ecmpDir + "/ecmp.o"
	tblRoute      = 0x02000001
	actFwd        = 0x01000001
	actRouteDrop  = 0x01000002
	profECMP      = 0x11000001
	ctrPortStats  = 0x12000001
	mtrPolicer    = 0x14000001
	regPortPkts   = 0x16000001
	vsMirrorPorts = 0x03000001
)

// ecmpSwitch is the ecmp pipeline on a Backend whose four ports p4e0..p4e3
// (ports 1..4) are veths in a namespace of the test; their peers p4f0..p4f3
// are not ports, so what a port sends arrives there and goes no further.
type ecmpSwitch struct {
	b       *Backend
	dev     *translator.Device
	ns      *testutil.NetNS
	root    string
	ports   map[uint32]string
	ifindex map[uint32]int
}

func ecmpPorts(tb testing.TB) (*testutil.NetNS, map[uint32]string) {
	tb.Helper()
	ns := testutil.NewNetNS(tb)
	h, err := netlink.NewHandleAt(ns.Handle())
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Delete()
	ports := map[uint32]string{}
	for i := range 4 {
		name, peer := fmt.Sprintf("p4e%d", i), fmt.Sprintf("p4f%d", i)
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
			tb.Fatalf("add veth: %v", err)
		}
		for _, n := range []string{name, peer} {
			_ = ns.Do(func() error {
				return os.WriteFile("/proc/sys/net/ipv6/conf/"+n+"/disable_ipv6", []byte("1"), 0o644)
			})
			if err := setUp(h, n); err != nil {
				tb.Fatal(err)
			}
		}
		ports[uint32(i+1)] = name
	}
	return ns, ports
}

func ecmpPipeline(tb testing.TB) p4test.Config {
	tb.Helper()
	obj, err := os.ReadFile(ecmpObject)
	if err != nil {
		tb.Fatal(err)
	}
	fpc, err := p4test.Pipeline(ecmpP4Info, ecmpJSON, obj)
	if err != nil {
		tb.Fatal(err)
	}
	return fpc
}

func newECMPSwitch(tb testing.TB, keep bool) *ecmpSwitch {
	tb.Helper()
	ns, ports := ecmpPorts(tb)
	sw := &ecmpSwitch{ns: ns, ports: ports, root: filepath.Join(tempBPFFS(tb), "p4tcd")}
	sw.open(tb, keep)
	if err := sw.dev.SetPipeline(p4test.Commit, ecmpPipeline(tb)); err != nil {
		tb.Fatalf("commit ecmp: %v", err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	return sw
}

func (sw *ecmpSwitch) open(tb testing.TB, keep bool) {
	tb.Helper()
	b, err := New(Options{DeviceID: 3, Ports: sw.ports, PinRoot: sw.root, NetNSPath: nsPath(sw.ns), KeepForwarding: keep})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	sw.b, sw.dev = b, translator.NewDevice(b)
}

func (sw *ecmpSwitch) write(tb testing.TB, us ...p4test.Update) {
	tb.Helper()
	if err := p4test.Write(sw.dev, us...); err != nil {
		tb.Fatal(err)
	}
}

// run runs the datapath on a frame arriving on port; it returns the
// verdict and the frame as the program left it.
func (sw *ecmpSwitch) run(tb testing.TB, port uint32, f []byte) (uint32, []byte) {
	tb.Helper()
	var ctx [44]byte // struct __sk_buff up to ifindex
	binary.LittleEndian.PutUint32(ctx[36:], uint32(sw.ifindex[port]))
	binary.LittleEndian.PutUint32(ctx[40:], uint32(sw.ifindex[port]))
	out := make([]byte, len(f)+256)
	var ret uint32
	// In the ports' namespace: the kernel resolves the context's and the
	// clones' ifindexes in the caller's.
	err := sw.ns.Do(func() (err error) {
		ret, err = sw.b.cur.prog.Run(&ebpf.RunOptions{Data: f, DataOut: out, Context: ctx[:]})
		return err
	})
	if err != nil {
		tb.Fatalf("test run: %v", err)
	}
	return ret, out[:len(f)]
}

func mac(last byte) []byte { return []byte{0x02, 0, 0, 0, 0, last} }

func route(dst string, plen int32) p4test.Entry {
	return p4test.Entry{Table: tblRoute, Match: []p4test.Match{p4test.LPM(1, ip4(dst), plen)}}
}

// member is forward(port, dmac 02::<port>, smac macR).
func member(op p4test.Op, id, port uint32) p4test.Update {
	return p4test.Member(op, profECMP, id, actFwd, u32(port), mac(byte(port)), macR)
}

func TestPrivilegedExternsCountersRegisters(t *testing.T) {
	testutil.Privileged(t)
	sw := newECMPSwitch(t, false)
	sw.write(t, member(p4test.OpInsert, 1, 2))
	r := route("10.1.0.0", 16)
	r.Member = 1
	sw.write(t, p4test.Insert(r))

	f := frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64)
	for range 5 {
		if ret, out := sw.run(t, 1, f); ret != tcActRedirct || !bytes.Equal(out[0:6], mac(2)) {
			t.Fatalf("routed frame: verdict %d, dmac %x", ret, out[0:6])
		}
	}
	// The indexed counter counted what was sent, in cell 1 (port 1).
	got, err := p4test.ReadCounter(sw.dev, ctrPortStats, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != (p4test.CounterData{Packets: 5, Bytes: 5 * 64}) {
		t.Errorf("port_stats[1] = %+v, want 5 packets, 320 bytes", got[1])
	}
	// The route's direct counter, read with the table's entries.
	tc, err := p4test.ReadTableCounters(sw.dev, tblRoute)
	if err != nil {
		t.Fatal(err)
	}
	if c := tc[string(ip4("10.1.0.0"))]; c != (p4test.CounterData{Packets: 5, Bytes: 320}) {
		t.Errorf("route 10.1/16 counter_data %+v, want 5 packets, 320 bytes", c)
	}
	// A miss counts in the default entry's cell.
	sw.run(t, 1, frame(17, "10.0.0.1", "10.9.0.1", 1000, 80, 64))
	if c, err := p4test.ReadDirectCounter(sw.dev, p4test.Entry{Table: tblRoute, Default: true}); err != nil || c.Packets != 1 {
		t.Errorf("default entry counter %+v (%v), want 1 packet", c, err)
	}

	// Writes: a cell set by the controller counts on from there.
	sw.write(t, p4test.Counter(ctrPortStats, 1, p4test.CounterData{Packets: 1000, Bytes: 64000}),
		p4test.DirectCounter(r, p4test.CounterData{Packets: 7}))
	sw.run(t, 1, f)
	got, _ = p4test.ReadCounter(sw.dev, ctrPortStats, 1)
	if got[1] != (p4test.CounterData{Packets: 1001, Bytes: 64064}) {
		t.Errorf("port_stats[1] after write 1000 and a frame = %+v", got[1])
	}
	if c, _ := p4test.ReadDirectCounter(sw.dev, r); c != (p4test.CounterData{Packets: 8, Bytes: 64}) {
		t.Errorf("route counter after write 7 and a frame = %+v", c)
	}
	// A write without index reaches every cell.
	sw.write(t, p4test.Counter(ctrPortStats, -1, p4test.CounterData{Packets: 3}))
	all, _ := p4test.ReadCounter(sw.dev, ctrPortStats, -1)
	if len(all) != 64 || all[0].Packets != 3 || all[63].Packets != 3 || all[1].Bytes != 0 {
		t.Errorf("after a wildcard write: %d cells, [0] %+v [1] %+v [63] %+v", len(all), all[0], all[1], all[63])
	}

	// The register: the datapath's counting is seen by Read, and the
	// controller's write by the datapath.
	regs, err := p4test.ReadRegister(sw.dev, regPortPkts, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(regs[1], []byte{7}) {
		t.Errorf("port_pkts[1] = %x, want 07 (7 frames)", regs[1])
	}
	sw.write(t, p4test.Register(regPortPkts, 1, u32(0x12345678)))
	sw.run(t, 1, f)
	if regs, _ := p4test.ReadRegister(sw.dev, regPortPkts, 1); !bytes.Equal(regs[1], u32(0x12345679)) {
		t.Errorf("port_pkts[1] after write 0x12345678 and a frame = %x", regs[1])
	}
	sw.write(t, p4test.Register(regPortPkts, -1, []byte{9}))
	if regs, _ := p4test.ReadRegister(sw.dev, regPortPkts, -1); len(regs) != 64 || !bytes.Equal(regs[63], []byte{9}) {
		t.Errorf("after a wildcard register write: %d cells, [63] %x", len(regs), regs[63])
	}
}

func TestPrivilegedExternsMeters(t *testing.T) {
	testutil.Privileged(t)
	sw := newECMPSwitch(t, false)
	sw.write(t, member(p4test.OpInsert, 1, 2))
	r := route("10.1.0.0", 16)
	r.Member = 1
	sw.write(t, p4test.Insert(r))
	f := frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64)
	verdicts := func(n int) (passed int) {
		for range n {
			if ret, _ := sw.run(t, 1, f); ret == tcActRedirct {
				passed++
			}
		}
		return passed
	}
	// Unconfigured meters pass everything.
	if n := verdicts(20); n != 20 {
		t.Fatalf("%d of 20 frames passed unconfigured meters", n)
	}
	// policer[1] (packets): bursts of 2 (committed) and 4 (peak) at 1
	// packet per second: a burst of 20 gets 4 through (2 GREEN, 2
	// YELLOW), the rest RED.
	cfg := &p4test.MeterConfig{CIR: 1, CBurst: 2, PIR: 1, PBurst: 4}
	sw.write(t, p4test.Meter(mtrPolicer, 1, cfg))
	if n := verdicts(20); n != 4 {
		t.Errorf("policer at 1 packet/s, pburst 4: %d of 20 frames passed, want 4", n)
	}
	if got, err := p4test.ReadMeter(sw.dev, mtrPolicer, 1); err != nil || got == nil || *got != *cfg {
		t.Errorf("policer[1] reads back %+v (%v), want %+v", got, err, *cfg)
	}
	// A reset (no config) passes everything again; so does another port.
	sw.write(t, p4test.Meter(mtrPolicer, 1, nil))
	if n := verdicts(5); n != 5 {
		t.Errorf("after a reset: %d of 5 frames passed", n)
	}
	// The route's direct meter (bytes): 2 frames of committed burst, 3
	// of peak, at a rate far below.
	dm := &p4test.MeterConfig{CIR: 8, CBurst: 128, PIR: 8, PBurst: 192}
	sw.write(t, p4test.DirectMeter(r, dm))
	if n := verdicts(10); n != 3 {
		t.Errorf("direct meter of 192 peak bytes: %d of 10 frames of 64 bytes passed, want 3", n)
	}
	// A high rate refills: 1 Gbyte/s passes a pause's worth.
	sw.write(t, p4test.DirectMeter(r, &p4test.MeterConfig{CIR: 1 << 30, CBurst: 64, PIR: 1 << 30, PBurst: 64}))
	for i := range 5 {
		time.Sleep(time.Millisecond)
		if n := verdicts(1); n != 1 {
			t.Errorf("frame %d after 1 ms at 1 GB/s was dropped", i)
		}
	}
}

// dmacs sends flows (source ports) in on port 1 and counts the frames per
// destination MAC the selector picked; drops count under "".
func (sw *ecmpSwitch) dmacs(tb testing.TB, flows int) map[string]int {
	tb.Helper()
	out := map[string]int{}
	for i := range flows {
		ret, f := sw.run(tb, 1, frame(17, "10.0.0.1", "10.1.2.3", uint16(1000+i), 80, 64))
		if ret != tcActRedirct {
			out[""]++
			continue
		}
		out[string(f[0:6])]++
	}
	return out
}

func TestPrivilegedExternsSelector(t *testing.T) {
	testutil.Privileged(t)
	sw := newECMPSwitch(t, false)
	sw.write(t, member(p4test.OpInsert, 1, 2), member(p4test.OpInsert, 2, 3), member(p4test.OpInsert, 3, 4))
	sw.write(t, p4test.Group(p4test.OpInsert, profECMP, 10,
		p4test.GroupMember{ID: 1, Weight: 1}, p4test.GroupMember{ID: 2, Weight: 1, Watch: 4}))
	r := route("10.1.0.0", 16)
	r.Group = 10
	sw.write(t, p4test.Insert(r))

	// Flows spread over both members; a flow always takes one path.
	const flows = 200
	got := sw.dmacs(t, flows)
	a, b := got[string(mac(2))], got[string(mac(3))]
	if a+b != flows || a < flows/4 || b < flows/4 {
		t.Errorf("ECMP over 2 members: %d and %d of %d flows (drops %d)", a, b, flows, got[""])
	}
	if again := sw.dmacs(t, flows); again[string(mac(2))] != a {
		t.Errorf("flows changed paths between runs: %d then %d", a, again[string(mac(2))])
	}
	// WCMP: weights 3 and 1.
	sw.write(t, p4test.Group(p4test.OpModify, profECMP, 10,
		p4test.GroupMember{ID: 1, Weight: 3}, p4test.GroupMember{ID: 2, Weight: 1, Watch: 4}))
	got = sw.dmacs(t, flows)
	if a, b := got[string(mac(2))], got[string(mac(3))]; a+b != flows || a < 2*b {
		t.Errorf("WCMP 3:1: %d and %d of %d flows", a, b, flows)
	}
	// The watch port of member 2 (port 4) goes down: its flows move.
	h, err := netlink.NewHandleAt(sw.ns.Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Delete()
	l, err := h.LinkByName("p4f3") // the peer: port 4 loses its carrier
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flows to leave the member whose watch port is down", func() bool {
		return sw.dmacs(t, flows)[string(mac(2))] == flows
	})
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flows to come back to the member whose watch port is up", func() bool {
		return sw.dmacs(t, flows)[string(mac(3))] > 0
	})
	// A watch port that is not a port is refused.
	err = p4test.Write(sw.dev, p4test.Group(p4test.OpModify, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 1, Watch: 77}))
	if !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("watch port 77: %v, want INVALID_ARGUMENT", err)
	}
	// A member modified is what every group and entry using it runs.
	sw.write(t, p4test.Group(p4test.OpModify, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 1}),
		member(p4test.OpModify, 1, 4))
	if got := sw.dmacs(t, 10); got[string(mac(4))] != 10 {
		t.Errorf("after member 1 moved to port 4: %v", got)
	}
	// An empty group drops.
	sw.write(t, p4test.Group(p4test.OpModify, profECMP, 10))
	if got := sw.dmacs(t, 5); got[""] != 5 {
		t.Errorf("empty group: %v, want every frame dropped", got)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// capture opens an AF_PACKET socket on the peer of port, seeing only the
// frames that arrive there (what the port sent).
func (sw *ecmpSwitch) capture(t *testing.T, port uint32) int {
	t.Helper()
	fd := packetSocket(t, sw.ns, fmt.Sprintf("p4f%d", port-1))
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestPrivilegedExternsReplication(t *testing.T) {
	testutil.Privileged(t)
	sw := newECMPSwitch(t, false)
	at := map[uint32]int{1: sw.capture(t, 1), 2: sw.capture(t, 2), 3: sw.capture(t, 3), 4: sw.capture(t, 4)}
	drain := func() {
		for _, fd := range at {
			receive(fd, 20*time.Millisecond)
		}
	}
	drain()
	sw.write(t, p4test.Multicast(p4test.OpInsert, 1, p4test.Replica{Port: 1}, p4test.Replica{Port: 2},
		p4test.Replica{Port: 3}, p4test.Replica{Port: 4}))
	bcast := frame(17, "10.0.0.1", "10.255.255.255", 1000, 80, 64)
	copy(bcast[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if ret, _ := sw.run(t, 1, bcast); ret != tcActShot {
		t.Errorf("broadcast: verdict %d, want the original dropped", ret)
	}
	for port, fd := range at {
		want := 1
		if port == 1 {
			want = 0 // the ingress port
		}
		if got := receive(fd, 200*time.Millisecond); len(got) != want {
			t.Errorf("broadcast: %d copies out of port %d, want %d", len(got), port, want)
		}
	}
	// Clone session 1 mirrors UDP to ports in the value set to port 4.
	sw.write(t, member(p4test.OpInsert, 1, 2))
	r := route("10.1.0.0", 16)
	r.Member = 1
	sw.write(t, p4test.Insert(r), p4test.Clone(p4test.OpInsert, 1, 0, p4test.Replica{Port: 4}),
		p4test.ValueSet(vsMirrorPorts, u16(5000), u16(5001)))
	mirrored := frame(17, "10.0.0.1", "10.1.2.3", 1000, 5001, 64)
	if ret, out := sw.run(t, 1, mirrored); ret != tcActRedirct || !bytes.Equal(out[0:6], mac(2)) {
		t.Errorf("mirrored frame: verdict %d dmac %x, want it routed too", ret, out[0:6])
	}
	sw.run(t, 1, frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64))
	got := receive(at[4], 200*time.Millisecond)
	if len(got) != 1 || !bytes.Equal(got[0][14:], mirrored[14:]) || binary.BigEndian.Uint16(got[0][36:]) != 5001 {
		t.Errorf("port 4 got %d mirrored frames, want the one to port 5001 as it came in", len(got))
	}
	// The value set replaced: 5001 no longer mirrors.
	sw.write(t, p4test.ValueSet(vsMirrorPorts, u16(5000)))
	sw.run(t, 1, mirrored)
	if got := receive(at[4], 100*time.Millisecond); len(got) != 0 {
		t.Errorf("port 4 got %d frames after 5001 left the value set", len(got))
	}
	// A port that is not a port, and truncation, are refused.
	if err := p4test.Write(sw.dev, p4test.Multicast(p4test.OpModify, 1, p4test.Replica{Port: 9})); !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("replica on port 9: %v, want INVALID_ARGUMENT", err)
	}
}

func TestPrivilegedExternsRestore(t *testing.T) {
	testutil.Privileged(t)
	sw := newECMPSwitch(t, true)
	sw.write(t, member(p4test.OpInsert, 1, 2), member(p4test.OpInsert, 2, 3))
	sw.write(t, p4test.Group(p4test.OpInsert, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 2}, p4test.GroupMember{ID: 2, Weight: 1, Watch: 4}))
	r := route("10.1.0.0", 16)
	r.Group = 10
	r.Meter = &p4test.MeterConfig{CIR: 1 << 20, CBurst: 1 << 12, PIR: 1 << 21, PBurst: 1 << 13}
	r2 := route("10.2.0.0", 16)
	r2.Member = 2
	sw.write(t, p4test.Insert(r), p4test.Insert(r2),
		p4test.Meter(mtrPolicer, 3, &p4test.MeterConfig{CIR: 100, CBurst: 10, PIR: 200, PBurst: 20}),
		p4test.Multicast(p4test.OpInsert, 1, p4test.Replica{Port: 2}, p4test.Replica{Port: 3, Instance: 1}),
		p4test.Clone(p4test.OpInsert, 1, 3, p4test.Replica{Port: 4}),
		p4test.ValueSet(vsMirrorPorts, u16(5000)))
	for range 3 {
		sw.run(t, 1, frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64))
	}
	kinds := []string{"members", "groups", "multicast", "clones", "value_sets", "meters"}
	before := map[string][]string{}
	for _, k := range kinds {
		var err error
		if before[k], err = p4test.ReadEntities(sw.dev, k); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := p4test.ReadAll(sw.dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	sw.open(t, true)
	if ok, err := sw.dev.Restore(); !ok || err != nil {
		t.Fatalf("restore: %v %v", ok, err)
	}
	for _, k := range kinds {
		after, err := p4test.ReadEntities(sw.dev, k)
		if err != nil {
			t.Fatal(err)
		}
		if !equalStrings(before[k], after) {
			t.Errorf("%s after restore:\n%v\nwant\n%v", k, after, before[k])
		}
	}
	if after, _ := p4test.ReadAll(sw.dev); !equalStrings(entries, after) {
		t.Errorf("entries after restore:\n%v\nwant\n%v", after, entries)
	}
	// Counters went on counting in the pinned maps; the restored cells
	// keep counting where they were.
	if c, err := p4test.ReadDirectCounter(sw.dev, r); err != nil || c.Packets != 3 {
		t.Errorf("route counter after restore %+v (%v), want 3 packets", c, err)
	}
	sw.run(t, 1, frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64))
	if c, _ := p4test.ReadDirectCounter(sw.dev, r); c.Packets != 4 {
		t.Errorf("route counter after restore and a frame %+v, want 4 packets", c)
	}
	// New writes work on the restored state.
	r3 := route("10.3.0.0", 16)
	r3.Member = 1
	sw.write(t, p4test.Insert(r3), p4test.Group(p4test.OpModify, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 1}))
	if got := sw.dmacs(t, 20); got[string(mac(2))] != 20 {
		t.Errorf("after restore and a group modify: %v", got)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestPrivilegedExternsVerify(t *testing.T) {
	testutil.Privileged(t)
	ns, ports := ecmpPorts(t)
	b, err := New(Options{DeviceID: 4, Ports: ports, PinRoot: filepath.Join(tempBPFFS(t), "p4tcd"), NetNSPath: nsPath(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dev := translator.NewDevice(b)
	// l3router's object has none of ecmp's extern maps.
	obj, err := os.ReadFile(l3Object)
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.Pipeline(ecmpP4Info, ecmpJSON, obj)
	if err != nil {
		t.Fatal(err)
	}
	err = dev.SetPipeline(p4test.Verify, fpc)
	if !errors.Is(err, translator.ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte("maps do not match")) {
		t.Errorf("verify ecmp's P4Info with l3router's object: %v", err)
	}
}

// TestPrivilegedExternsMeterTypes runs the policer as the other P4Info
// meter types: RFC 2697's srTCM (committed bucket, then the excess one)
// and the two-colour marker (no excess bucket).
func TestPrivilegedExternsMeterTypes(t *testing.T) {
	testutil.Privileged(t)
	info, err := os.ReadFile(ecmpP4Info)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := os.ReadFile(ecmpObject)
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(ecmpJSON)
	if err != nil {
		t.Fatal(err)
	}
	const policer = "    name: \"MainControlImpl.policer\"\n    alias: \"policer\"\n  }\n  spec {\n    unit: PACKETS\n"
	if !bytes.Contains(info, []byte(policer)) {
		t.Fatal("the policer's spec is not where the test looks")
	}
	for _, tc := range []struct {
		typ  string
		cfg  p4test.MeterConfig
		pass int
	}{
		{"SINGLE_RATE_THREE_COLOR", p4test.MeterConfig{CIR: 1, CBurst: 2, PIR: 1, PBurst: 2, EBurst: 3}, 5},
		{"SINGLE_RATE_TWO_COLOR", p4test.MeterConfig{CIR: 1, CBurst: 3, PIR: 1, PBurst: 3}, 3},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			fpc, err := p4test.PipelineText(bytes.Replace(info, []byte(policer), []byte(policer+"    type: "+tc.typ+"\n"), 1), js, obj)
			if err != nil {
				t.Fatal(err)
			}
			ns, ports := ecmpPorts(t)
			sw := &ecmpSwitch{ns: ns, ports: ports, root: filepath.Join(tempBPFFS(t), "p4tcd")}
			sw.open(t, false)
			if err := sw.dev.SetPipeline(p4test.Commit, fpc); err != nil {
				t.Fatal(err)
			}
			sw.ifindex = map[uint32]int{}
			for p, i := range sw.b.ports.ifindex {
				sw.ifindex[p] = int(i)
			}
			sw.write(t, member(p4test.OpInsert, 1, 2))
			r := route("10.1.0.0", 16)
			r.Member = 1
			sw.write(t, p4test.Insert(r), p4test.Meter(mtrPolicer, 1, &tc.cfg))
			passed := 0
			for range 20 {
				if ret, _ := sw.run(t, 1, frame(17, "10.0.0.1", "10.1.2.3", 1000, 80, 64)); ret == tcActRedirct {
					passed++
				}
			}
			if passed != tc.pass {
				t.Errorf("%s %+v: %d of 20 frames passed, want %d", tc.typ, tc.cfg, passed, tc.pass)
			}
		})
	}
}

// The externs on a ternary table (testdata/xtss): direct counters and
// meters of entries that share masked keys, members, groups and one-shot
// sets in the tuple space's values, and their cells across a restart and
// a promotion.
func TestPrivilegedExternsTernary(t *testing.T) {
	testutil.Privileged(t)
	const (
		tblACL  = 0x02000001
		actTag  = 0x01000001
		profSel = 0x11000001
	)
	obj, err := os.ReadFile("testdata/xtss.o")
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.Pipeline("testdata/xtss.p4info.txt", "testdata/xtss.json", obj)
	if err != nil {
		t.Fatal(err)
	}
	ns, ports := ecmpPorts(t)
	sw := &ecmpSwitch{ns: ns, ports: ports, root: filepath.Join(tempBPFFS(t), "p4tcd")}
	sw.open(t, true)
	if err := sw.dev.SetPipeline(p4test.Commit, fpc); err != nil {
		t.Fatal(err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	acl := func(dst, mask string, prio int32) p4test.Entry {
		return p4test.Entry{Table: tblACL, Priority: prio, Match: []p4test.Match{p4test.Ternary(1, ip4(dst), ip4(mask))}}
	}
	tag := func(id, v uint32) p4test.Update { return p4test.Member(p4test.OpInsert, profSel, id, actTag, u32(v)) }
	wide, narrow, set := acl("10.0.0.0", "255.0.0.0", 10), acl("10.1.0.0", "255.255.0.0", 20), acl("192.168.0.0", "255.255.0.0", 5)
	wide.Member, narrow.Group = 1, 10
	set.OneShot = []p4test.SetAction{{Action: actTag, Params: [][]byte{u32(7)}, Weight: 1}, {Action: actTag, Params: [][]byte{u32(8)}, Weight: 1}}
	sw.write(t, tag(1, 1), tag(2, 2), p4test.Group(p4test.OpInsert, profSel, 10, p4test.GroupMember{ID: 2, Weight: 1}))
	sw.write(t, p4test.Insert(wide), p4test.Insert(narrow))
	at := func(dst string) uint32 {
		ret, _ := sw.run(t, 1, frame(17, "10.9.9.9", dst, 1, 2, 64))
		return ret
	}
	if got := at("10.1.2.3"); got != 102 {
		t.Errorf("10.1.2.3 (narrow, group of member 2): %d, want 102", got)
	}
	if got := at("10.2.0.1"); got != 101 {
		t.Errorf("10.2.0.1 (wide, member 1): %d, want 101", got)
	}
	if got := at("11.0.0.1"); got != 1 {
		t.Errorf("a miss: %d, want the default action's 1", got)
	}
	read := func(e p4test.Entry) int64 {
		t.Helper()
		c, err := p4test.ReadDirectCounter(sw.dev, e)
		if err != nil {
			t.Fatal(err)
		}
		return c.Packets
	}
	if w, n, d := read(wide), read(narrow), read(p4test.Entry{Table: tblACL, Default: true}); w != 1 || n != 1 || d != 1 {
		t.Errorf("counters wide %d narrow %d default %d, want 1 each", w, n, d)
	}
	// The narrow entry's meter: a burst of 2 packets.
	sw.write(t, p4test.DirectMeter(narrow, &p4test.MeterConfig{CIR: 1, CBurst: 2, PIR: 1, PBurst: 2}))
	red := 0
	for range 5 {
		if at("10.1.2.3") == 3 {
			red++
		}
	}
	if red != 3 {
		t.Errorf("narrow's meter at burst 2: %d of 5 RED, want 3", red)
	}

	// A restart keeps the cells: the ternary entries' values are rebuilt
	// from their side records, cells included.
	entries, _ := p4test.ReadAll(sw.dev)
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	sw.open(t, true)
	if ok, err := sw.dev.Restore(); !ok || err != nil {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if after, _ := p4test.ReadAll(sw.dev); !equalStrings(entries, after) {
		t.Errorf("entries after restore:\n%v\nwant\n%v", after, entries)
	}
	if w, n := read(wide), read(narrow); w != 1 || n != 6 {
		t.Errorf("after restore: counters wide %d narrow %d, want 1 and 6", w, n)
	}
	// Deleting narrow promotes wide for 10.1/16: it counts in wide's cell.
	sw.write(t, p4test.Delete(narrow))
	if got := at("10.1.2.3"); got != 101 {
		t.Errorf("10.1.2.3 after narrow went: %d, want wide's 101", got)
	}
	if w := read(wide); w != 2 {
		t.Errorf("wide's counter after the promotion: %d, want 2", w)
	}
	// One-shot sets, once the selector's members, groups and entries that
	// use them are gone (P4Runtime §9.2.3: no mixing).
	sw.write(t, p4test.Delete(wide), p4test.Group(p4test.OpDelete, profSel, 10),
		p4test.Member(p4test.OpDelete, profSel, 1, actTag), p4test.Member(p4test.OpDelete, profSel, 2, actTag))
	sw.write(t, p4test.Insert(set))
	seen := map[uint32]int{}
	for i := range 32 {
		ret, _ := sw.run(t, 1, frame(17, fmt.Sprintf("10.9.9.%d", i), "192.168.1.1", 1, 2, 64))
		seen[ret]++
	}
	if seen[107] == 0 || seen[108] == 0 || seen[107]+seen[108] != 32 {
		t.Errorf("one-shot set of tags 7 and 8 over 32 sources: %v", seen)
	}
	if c := read(set); c != 32 {
		t.Errorf("the one-shot entry's counter: %d, want 32", c)
	}
	// And across a restart: the set reads back as written, its hidden
	// group runs, its cell counts on.
	entries, _ = p4test.ReadAll(sw.dev)
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	sw.open(t, true)
	if ok, err := sw.dev.Restore(); !ok || err != nil {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if after, _ := p4test.ReadAll(sw.dev); !equalStrings(entries, after) {
		t.Errorf("entries after the second restore:\n%v\nwant\n%v", after, entries)
	}
	if got := at("192.168.1.1"); got != 107 && got != 108 {
		t.Errorf("the one-shot entry after restore: %d", got)
	}
	if c := read(set); c != 33 {
		t.Errorf("the one-shot entry's counter after restore and a frame: %d, want 33", c)
	}
}
