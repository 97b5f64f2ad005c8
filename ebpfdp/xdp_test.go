package ebpfdp

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

const l3XDPObject = exampleDir + "/l3router_xdp.o"

// l3XDPPipeline is l3router with its XDP tier.
func l3XDPPipeline(tb testing.TB) p4test.Config {
	tb.Helper()
	tc, err := os.ReadFile(l3Object)
	if err != nil {
		tb.Fatal(err)
	}
	xdp, err := os.ReadFile(l3XDPObject)
	if err != nil {
		tb.Fatal(err)
	}
	fpc, err := p4test.PipelineDevice(l3P4Info, l3JSON, p4test.Device{TCObject: tc, XDPObject: xdp})
	if err != nil {
		tb.Fatal(err)
	}
	return fpc
}

// xdpPass attaches an XDP program that passes everything to a host's
// veth: a veth takes frames redirected to it by XDP (ndo_xdp_xmit) only
// when its peer runs XDP or has GRO on.
func xdpPass(t testing.TB, ns *testutil.NetNS, ifname string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	err = ns.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		xl, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: l.Attrs().Index, Flags: link.XDPDriverMode})
		if err != nil {
			return err
		}
		t.Cleanup(func() { xl.Close() })
		return nil
	})
	if err != nil {
		t.Fatalf("xdp pass on %s: %v", ifname, err)
	}
}

func placed(p translator.Placement) *translator.Scope {
	return &translator.Scope{Placement: &p}
}

// Entries placed hw are hit in the XDP tier and never reach tc, sw ones
// only in tc, both ones in XDP; deleting a hw entry sends its traffic to
// tc. Real frames on veths, per-tier counters. Then RECONCILE_AND_COMMIT
// and a restart keep every placement forwarding.
func TestPrivilegedXDPTier(t *testing.T) {
	testutil.Privileged(t)
	l := newLab(t)
	xdpPass(t, l.h2, "h2e")
	root := filepath.Join(tempBPFFS(t), "p4tcd")
	open := func(keep bool) *l3Switch {
		b, err := New(Options{DeviceID: 7, Ports: map[uint32]string{1: "sw1", 2: "sw2"}, PinRoot: root,
			NetNSPath: filepath.Join("/var/run/netns", l.sw.Name), KeepForwarding: keep})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return &l3Switch{b: b, dev: translator.NewDevice(b)}
	}
	sw := open(true)
	if err := sw.dev.SetPipeline(p4test.Commit, l3XDPPipeline(t)); err != nil {
		t.Fatal(err)
	}
	if m := sw.b.XDPModes(); m["sw1"] != XDPNative || m["sw2"] != XDPNative {
		t.Errorf("xdp modes %v, want native on both veths", m)
	}
	route := func(prefix string) p4test.Entry {
		return p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4(prefix), 16)}, Action: actSetNhop, Params: [][]byte{u16(10)}}
	}
	write := func(p translator.Placement, us ...p4test.Update) {
		t.Helper()
		if err := p4test.WriteAs(sw.dev, placed(p), us...); err != nil {
			t.Fatal(err)
		}
	}
	write(translator.PlaceBoth,
		p4test.Insert(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(10))}, Action: actForward, Params: [][]byte{macB, macR, u32(2)}}),
		p4test.Insert(aclEntry(1, actPermit)), // every packet hits the ACL
		p4test.Insert(route("10.3.0.0")))
	write(translator.PlaceHW, p4test.Insert(route("10.1.0.0")))
	write(translator.PlaceSW, p4test.Insert(route("10.2.0.0")))

	tiers := func(what string, sw0, hw0, sw1, hw1 int) {
		t.Helper()
		lpm, nh := tableStats(t, sw.b, tblLPM), tableStats(t, sw.b, tblNexthop)
		if lpm.SW != sw0 || lpm.HW != hw0 || nh.SW != sw1 || nh.HW != hw1 {
			t.Errorf("%s: TableStats ipv4_lpm sw %d hw %d, nexthop sw %d hw %d; want %d %d, %d %d",
				what, lpm.SW, lpm.HW, nh.SW, nh.HW, sw0, hw0, sw1, hw1)
		}
	}
	tiers("written", 2, 2, 1, 1)

	tx := packetSocket(t, l.h1, "h1e")
	rx := packetSocket(t, l.h2, "h2e")
	deliver := func(dst string) int {
		t.Helper()
		if _, err := unix.Write(tx, frame(17, "10.0.0.1", dst, 4321, 80, 64)); err != nil {
			t.Fatalf("send: %v", err)
		}
		return len(receive(rx, 200*time.Millisecond))
	}
	type lpm struct{ xdpHits, xdpMisses, tcHits, tcMisses uint64 }
	counts := func() lpm {
		t.Helper()
		x, err := sw.b.TierCounters(TierXDP, tblLPM)
		if err != nil {
			t.Fatal(err)
		}
		c, err := sw.b.TierCounters(TierTC, tblLPM)
		if err != nil {
			t.Fatal(err)
		}
		return lpm{x.Hits, x.Misses, c.Hits, c.Misses}
	}
	check := func(what, dst string, arrive int, want lpm) {
		t.Helper()
		before := counts()
		if n := deliver(dst); n != arrive {
			t.Errorf("%s: %d frames arrived, want %d", what, n, arrive)
		}
		got := counts()
		d := lpm{got.xdpHits - before.xdpHits, got.xdpMisses - before.xdpMisses, got.tcHits - before.tcHits, got.tcMisses - before.tcMisses}
		if d != want {
			t.Errorf("%s: ipv4_lpm counted %+v, want %+v", what, d, want)
		}
	}
	check("route placed hw", "10.1.2.3", 1, lpm{xdpHits: 1})
	check("route placed sw", "10.2.2.3", 1, lpm{xdpMisses: 1, tcHits: 1})
	check("route placed both", "10.3.2.3", 1, lpm{xdpHits: 1})
	if c, _ := sw.b.TierCounters(TierTC, tblACL); c.Hits != 1 {
		t.Errorf("tc ACL hits %d: only the sw-routed packet should reach tc", c.Hits)
	}
	if err := p4test.Write(sw.dev, p4test.Delete(route("10.1.0.0"))); err != nil {
		t.Fatal(err)
	}
	check("hw route deleted", "10.1.2.3", 0, lpm{xdpMisses: 1, tcMisses: 1})
	tiers("hw route deleted", 2, 1, 1, 1)
	write(translator.PlaceHW, p4test.Insert(route("10.1.0.0")))

	// RECONCILE_AND_COMMIT: new programs and maps in both tiers, every
	// placement still forwarding from where it was.
	if err := sw.dev.SetPipeline(p4test.Reconcile, l3XDPPipeline(t)); err != nil {
		t.Fatal(err)
	}
	check("hw after reconcile", "10.1.2.3", 1, lpm{xdpHits: 1})
	check("sw after reconcile", "10.2.2.3", 1, lpm{xdpMisses: 1, tcHits: 1})
	check("both after reconcile", "10.3.2.3", 1, lpm{xdpHits: 1})
	tiers("after reconcile", 2, 2, 1, 1)

	// A restart keeping forwarding: Restore gives every entry back with
	// its placement (deleting the hw route must find it in the XDP tier).
	before := readAll(t, sw.dev)
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := deliver("10.1.2.3"); n != 1 {
		t.Errorf("hw route while p4tcd is down: %d frames", n)
	}
	sw = open(false)
	if ok, err := sw.dev.Restore(); err != nil || !ok {
		t.Fatalf("restore: %v %v", ok, err)
	}
	if after := readAll(t, sw.dev); !slices.Equal(after, before) {
		t.Errorf("restored entries differ:\n%v\nwant\n%v", after, before)
	}
	check("hw after restore", "10.1.2.3", 1, lpm{xdpHits: 1})
	tiers("after restore", 2, 2, 1, 1)
	if err := p4test.Write(sw.dev, p4test.Delete(route("10.1.0.0")), p4test.Delete(route("10.2.0.0"))); err != nil {
		t.Fatalf("delete restored hw and sw routes: %v", err)
	}
	check("hw route deleted after restore", "10.1.2.3", 0, lpm{xdpMisses: 1, tcMisses: 1})
	check("sw route deleted after restore", "10.2.2.3", 0, lpm{xdpMisses: 1, tcMisses: 1})
	tiers("routes deleted after restore", 1, 1, 1, 1)
}

// Without an XDP object there is no hardware tier: entries placed hw are
// refused (FAILED_PRECONDITION), both and sw go to tc.
func TestPrivilegedPlacementWithoutXDP(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	e := p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.0.0"), 16)}, Action: actSetNhop, Params: [][]byte{u16(10)}}
	if err := p4test.WriteAs(sw.dev, placed(translator.PlaceHW), p4test.Insert(e)); !errors.Is(err, translator.ErrPrecondition) {
		t.Errorf("hw entry without an XDP tier: %v, want FAILED_PRECONDITION", err)
	}
	if err := p4test.WriteAs(sw.dev, placed(translator.PlaceSW), p4test.Insert(e)); err != nil {
		t.Errorf("sw entry: %v", err)
	}
	if _, err := sw.b.TierCounters(TierXDP, tblLPM); !errors.Is(err, translator.ErrNotFound) {
		t.Errorf("xdp counters without an XDP tier: %v", err)
	}
	// A table placed hw needs the XDP tier: VERIFY says so.
	obj, err := os.ReadFile(l3Object)
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.PipelineDevice(l3P4Info, l3JSON, p4test.Device{TCObject: obj, Tables: []string{"table_id: 0x02000002 placement: PLACEMENT_HW"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.dev.SetPipeline(p4test.Verify, fpc); !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("VERIFY of a table placed hw without xdp_object: %v, want INVALID_ARGUMENT", err)
	}
}

// An entry for both tiers that the tc tier refuses at the run's first op
// (a port that is not a --port) is refused, and the XDP tier is not asked
// to apply an empty run.
func TestPrivilegedXDPTierRefusedFirstOp(t *testing.T) {
	testutil.Privileged(t)
	ns, ports := portNS(t)
	b, err := New(Options{DeviceID: 1, Ports: ports, PinRoot: filepath.Join(tempBPFFS(t), "p4tcd"), NetNSPath: nsPath(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dev := translator.NewDevice(b)
	if err := dev.SetPipeline(p4test.Commit, l3XDPPipeline(t)); err != nil {
		t.Fatal(err)
	}
	err = p4test.Write(dev, p4test.Insert(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(1))},
		Action: actForward, Params: [][]byte{macB, macR, u32(9)}}))
	if !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("next hop to port 9: %v, want INVALID_ARGUMENT", err)
	}
}
