package ebpfdp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// The l3router example (examples/l3router).
const (
	exampleDir   = "../examples/l3router"
	l3P4Info     = exampleDir + "/l3router.p4info.txt"
	l3JSON       = exampleDir + "/l3router.json"
	l3Object     = exampleDir + "/l3router.o"
	l3Baseline   = exampleDir + "/l3router_baseline.o"
	tblACL       = 0x02000001
	tblLPM       = 0x02000002
	tblNexthop   = 0x02000003
	actDrop      = 0x01000001
	actSetNhop   = 0x01000002
	actForward   = 0x01000003
	actPermit    = 0x01000004
	actDeny      = 0x01000005
	tcActOK      = 0
	tcActShot    = 2
	tcActRedirct = 7
)

// tempBPFFS mounts a bpffs for the test and returns its path; it is
// unmounted at cleanup.
func tempBPFFS(tb testing.TB) string {
	tb.Helper()
	return testutil.BPFFS(tb)
}

// portNS is a namespace holding a veth pair p4t0/p4t1 to use as ports 1
// and 2 of a switch under test.
func portNS(tb testing.TB) (*testutil.NetNS, map[uint32]string) {
	tb.Helper()
	ns := testutil.NewNetNS(tb)
	h, err := netlink.NewHandleAt(ns.Handle())
	if err != nil {
		tb.Fatal(err)
	}
	defer h.Delete()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p4t0"}, PeerName: "p4t1"}
	if err := h.LinkAdd(veth); err != nil {
		tb.Fatalf("add veth: %v", err)
	}
	for _, n := range []string{"p4t0", "p4t1"} {
		l, err := h.LinkByName(n)
		if err != nil {
			tb.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			tb.Fatal(err)
		}
	}
	return ns, map[uint32]string{1: "p4t0", 2: "p4t1"}
}

func nsPath(ns *testutil.NetNS) string { return filepath.Join("/var/run/netns", ns.Name) }

// l3Switch is an l3router switch under test: a Device over a Backend whose
// ports live in a namespace of the test.
type l3Switch struct {
	ports   map[uint32]string
	b       *Backend
	dev     *translator.Device
	ns      *testutil.NetNS
	ifindex map[uint32]int
	root    string
}

// newL3Switch commits l3router on a fresh backend. keep sets
// KeepForwarding.
func newL3Switch(tb testing.TB, keep ...bool) *l3Switch {
	tb.Helper()
	ns, ports := portNS(tb)
	root := filepath.Join(tempBPFFS(tb), "p4tcd")
	sw := &l3Switch{ns: ns, root: root, ports: ports}
	sw.open(tb, ports, len(keep) > 0 && keep[0])
	if err := sw.dev.SetPipeline(p4test.Commit, l3Pipeline(tb)); err != nil {
		tb.Fatalf("commit l3router: %v", err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	return sw
}

// l3Pipeline is the l3router pipeline config.
func l3Pipeline(tb testing.TB) p4test.Config {
	tb.Helper()
	obj, err := os.ReadFile(l3Object)
	if err != nil {
		tb.Fatal(err)
	}
	fpc, err := p4test.Pipeline(l3P4Info, l3JSON, obj)
	if err != nil {
		tb.Fatal(err)
	}
	return fpc
}

// open makes a new Backend and Device on the switch's pin root.
func (sw *l3Switch) open(tb testing.TB, ports map[uint32]string, keep bool) {
	tb.Helper()
	b, err := New(Options{DeviceID: 1, Ports: ports, PinRoot: sw.root, NetNSPath: nsPath(sw.ns), KeepForwarding: keep})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() })
	sw.b, sw.dev = b, translator.NewDevice(b)
}

func (sw *l3Switch) write(tb testing.TB, us ...p4test.Update) {
	tb.Helper()
	if err := p4test.Write(sw.dev, us...); err != nil {
		tb.Fatal(err)
	}
}

// run runs the datapath on a frame and returns the verdict and the frame
// as the program left it.
func (sw *l3Switch) run(tb testing.TB, frame []byte) (uint32, []byte) {
	tb.Helper()
	out := make([]byte, len(frame)+256)
	ret, err := sw.b.cur.prog.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		tb.Fatalf("test run: %v", err)
	}
	return ret, out[:len(frame)]
}

// Frames.

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
	macR = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x1}
)

// frame builds a 64-byte Ethernet/IPv4/UDP (proto 17) or TCP (6) frame.
func frame(proto byte, src, dst string, sport, dport uint16, ttl byte) []byte {
	b := make([]byte, 64)
	copy(b[0:6], macR)
	copy(b[6:12], macA)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-14))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	ip[8], ip[9] = ttl, proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	binary.BigEndian.PutUint16(b[34:], sport)
	binary.BigEndian.PutUint16(b[36:], dport)
	if proto == 17 {
		binary.BigEndian.PutUint16(b[38:], uint16(len(b)-34))
	}
	return b
}

// ipChecksum computes the header checksum (with the checksum field as it
// is: a valid header sums to 0).
func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		if i == 10 {
			continue
		}
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// ipValid reports whether an IPv4 header's checksum verifies.
func ipValid(h []byte) bool {
	var sum uint32
	for i := 0; i+1 < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum == 0xffff
}

func ip4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func u16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }
func u32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// tableStats returns what TableStats reports for a table by P4Info id.
func tableStats(t *testing.T, b *Backend, id uint32) translator.TableStats {
	t.Helper()
	b.mu.Lock()
	name := b.cur.byID[id].plan.table.Name
	b.mu.Unlock()
	for _, st := range b.TableStats() {
		if st.Table == name {
			return st
		}
	}
	t.Fatalf("TableStats has no table %s", name)
	return translator.TableStats{}
}
