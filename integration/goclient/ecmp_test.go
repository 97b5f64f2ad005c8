package goclient

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"golang.org/x/sys/unix"
)

// ecmpLab is a switch with four hosts, each in a namespace of the test:
// h1 (10.0.1.1) sends; h2 and h3 both stand for 10.0.2.0/24 (the ECMP
// paths); h4 collects mirrored frames. Host i is on switch port i (s<i>).
type ecmpLab struct {
	sw      string
	hosts   [5]string
	pinRoot string
}

var hostMACs = [5]net.HardwareAddr{nil, h1MAC, h2MAC, {0x02, 0, 0, 0, 3, 1}, {0x02, 0, 0, 0, 4, 1}}

func newECMPLab(t *testing.T) *ecmpLab {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	p := "p4t-" + hex.EncodeToString(b[:]) + "-"
	l := &ecmpLab{sw: p + "sw", pinRoot: "/sys/fs/bpf/" + p + "p4tcd"}
	ip(t, "netns", "add", l.sw)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.sw).Run() })
	t.Cleanup(func() { os.RemoveAll(l.pinRoot) })
	for i := 1; i <= 4; i++ {
		l.hosts[i] = fmt.Sprintf("%sh%d", p, i)
		ns := l.hosts[i]
		ip(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sw, he := fmt.Sprintf("s%d", i), fmt.Sprintf("h%de", i)
		ip(t, "-n", l.sw, "link", "add", sw, "address", routerMAC.String(), "type", "veth",
			"peer", "name", he, "address", hostMACs[i].String(), "netns", ns)
		for _, x := range [][2]string{{l.sw, sw}, {ns, he}} {
			ip(t, "netns", "exec", x[0], "sysctl", "-qw", "net.ipv6.conf."+x[1]+".disable_ipv6=1")
			ip(t, "-n", x[0], "link", "set", x[1], "up")
		}
		addr := "10.0.2.1/24"
		if i == 1 {
			addr = "10.0.1.1/24"
		}
		ip(t, "-n", ns, "addr", "add", addr, "dev", he)
	}
	ip(t, "-n", l.hosts[1], "neigh", "add", "10.0.1.254", "lladdr", routerMAC.String(), "dev", "h1e", "nud", "permanent")
	ip(t, "-n", l.hosts[1], "route", "add", "default", "via", "10.0.1.254")
	return l
}

// flows sends one datagram carrying marker from each of n source ports
// of h1 to dst.
func (l *ecmpLab) flows(t *testing.T, dst netip.AddrPort, marker string, n int) {
	t.Helper()
	src := netip.MustParseAddr("10.0.1.1")
	for i := range n {
		sendFromPort(t, l.hosts[1], netip.AddrPortFrom(src, uint16(20000+i)), dst, marker, 1)
	}
}

// broadcast sends n datagrams from h1 to 255.255.255.255.
func (l *ecmpLab) broadcast(t *testing.T, marker string, n int) {
	t.Helper()
	err := inNS(l.hosts[1], func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "h1e"); err != nil {
			return err
		}
		for i := range n {
			if err := unix.Sendto(fd, []byte(fmt.Sprintf("%s %d", marker, i)), 0, &unix.SockaddrInet4{Port: 7000, Addr: [4]byte{255, 255, 255, 255}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("broadcast from h1: %v", err)
	}
}

func packECMP(t *testing.T) (devcfg, p4info string) {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", "ecmp")
	devcfg = filepath.Join(t.TempDir(), "ecmp.devcfg")
	if out, err := exec.Command(p4tcdBin, "pack", "-o", devcfg, dir).CombinedOutput(); err != nil {
		t.Fatalf("p4tcd pack: %v\n%s", err, out)
	}
	return devcfg, filepath.Join(dir, "ecmp.p4info.txt")
}

func u32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

// The externs end to end: p4tcd on the eBPF datapath, programmed by
// p4runtime-go-client with members and a group (watch ports), a
// multicast group and a clone session (egress_port replicas), a value
// set, a meter; real frames from h1's sockets.
func TestPrivilegedECMPOverP4Runtime(t *testing.T) {
	privileged(t)
	l := newECMPLab(t)
	devcfg, p4info := packECMP(t)
	d := startDaemon(t, "--datapath", "ebpf", "--device-id", "1",
		"--port", "1=s1", "--port", "2=s2", "--port", "3=s3", "--port", "4=s4",
		"--port-netns", l.sw, "--bpffs", l.pinRoot)
	r := connect(t, d, 1)
	ctx := within(t, 60*time.Second)
	if _, err := r.SetFwdPipeFromBytes(ctx, readFile(t, devcfg), oldP4Info(t, p4info), 1); err != nil {
		t.Fatalf("push ecmp: %v", err)
	}
	// Members forward to h2 and h3; group 1 holds both, h3's watching its
	// port; 10.0.2.0/24 takes the group.
	for i, port := range []uint32{2, 3} {
		m := r.NewActionProfileMember("MainControlImpl.ecmp_selector", uint32(i+1), "MainControlImpl.forward",
			[][]byte{u32(port), hostMACs[port], routerMAC})
		if err := r.InsertActionProfileMember(ctx, m); err != nil {
			t.Fatalf("insert member: %v", err)
		}
	}
	g := r.NewActionProfileGroup("MainControlImpl.ecmp_selector", 1, []*p4v1.ActionProfileGroup_Member{
		{MemberId: 1, Weight: 1},
		{MemberId: 2, Weight: 1, WatchKind: &p4v1.ActionProfileGroup_Member_WatchPort{WatchPort: []byte{3}}},
	}, 0)
	if err := r.InsertActionProfileGroup(ctx, g); err != nil {
		t.Fatalf("insert group: %v", err)
	}
	dst := netip.MustParseAddr("10.0.2.0").As4()
	route := r.NewTableEntry("MainControlImpl.route",
		map[string]client.MatchInterface{"hdr.ipv4.dstAddr": &client.LpmMatch{Value: dst[:], PLen: 24}},
		r.NewTableActionGroup(1), nil)
	if err := r.InsertTableEntry(ctx, route); err != nil {
		t.Fatalf("insert route: %v", err)
	}
	if err := r.InsertMulticastGroup(ctx, 1, []uint32{1, 2, 3, 4}); err != nil {
		t.Fatalf("insert multicast group: %v", err)
	}
	if err := r.InsertCloneSession(ctx, 1, []uint32{4}, client.DefaultCloneSessionOptions); err != nil {
		t.Fatalf("insert clone session: %v", err)
	}
	vs := &p4v1.ValueSetEntry{ValueSetId: 50331649, Members: []*p4v1.ValueSetMember{{Match: []*p4v1.FieldMatch{
		{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{0x13, 0x89}}}}}}}} // 5001
	if err := r.WriteUpdate(ctx, &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: vs}}}); err != nil {
		t.Fatalf("write value set: %v", err)
	}
	var caps [5]*capture
	for i := 2; i <= 4; i++ {
		caps[i] = (&lab{}).capture(t, l.hosts[i], fmt.Sprintf("h%de", i))
	}

	// 40 flows spread over h2 and h3, TTL − 1, checksum valid.
	l.flows(t, netip.MustParseAddrPort("10.0.2.1:7000"), "ecmp", 40)
	at2, at3 := caps[2].frames("ecmp", 300*time.Millisecond), caps[3].frames("ecmp", 50*time.Millisecond)
	if len(at2)+len(at3) != 40 || len(at2) < 8 || len(at3) < 8 {
		t.Errorf("40 flows: h2 got %d, h3 got %d; want all of them, spread", len(at2), len(at3))
	}
	for _, f := range append(at2, at3...) {
		if f[22] != 63 || !ipChecksumOK(f) {
			t.Errorf("forwarded frame: TTL %d, checksum valid %v", f[22], ipChecksumOK(f))
			break
		}
	}
	// Counters count what was sent: the route's direct counter and port
	// 1's cell.
	dce, err := r.ReadEntitySingle(ctx, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{TableEntry: &p4v1.TableEntry{
		TableId: route.TableId, Match: route.Match}}}})
	if err != nil || dce.GetDirectCounterEntry().GetData().GetPacketCount() != 40 {
		t.Errorf("route counter %v (%v), want 40 packets", dce.GetDirectCounterEntry().GetData(), err)
	}
	if c, err := r.ReadCounterEntry(ctx, "MainControlImpl.port_stats", 1); err != nil || c.GetPacketCount() != 40 {
		t.Errorf("port_stats[1] %v (%v), want 40 packets", c, err)
	}

	// h3's link goes down: its flows move to h2.
	ip(t, "-n", l.hosts[3], "link", "set", "h3e", "down")
	time.Sleep(100 * time.Millisecond)
	l.flows(t, netip.MustParseAddrPort("10.0.2.1:7000"), "failover", 40)
	if got := caps[2].frames("failover", 300*time.Millisecond); len(got) != 40 {
		t.Errorf("with h3's port down, h2 got %d of 40 flows", len(got))
	}
	ip(t, "-n", l.hosts[3], "link", "set", "h3e", "up")
	time.Sleep(200 * time.Millisecond)

	// A broadcast reaches every other host once.
	l.broadcast(t, "bcast", 1)
	for i := 2; i <= 4; i++ {
		if got := caps[i].frames("bcast", 200*time.Millisecond); len(got) != 1 {
			t.Errorf("broadcast: h%d got %d copies, want 1", i, len(got))
		}
	}
	// UDP to port 5001 is mirrored to h4 as sent.
	l.flows(t, netip.MustParseAddrPort("10.0.2.1:5001"), "mirror", 1)
	got4 := caps[4].frames("mirror", 300*time.Millisecond)
	if len(got4) != 1 || got4[0][22] != 64 || !bytes.Equal(got4[0][0:6], routerMAC) {
		t.Errorf("h4 got %d mirrored frames; want 1, as h1 sent it", len(got4))
	}

	// The policer on port 1, 10 packets/s with bursts of 5.
	me := &p4v1.MeterEntry{MeterId: 335544321, Index: &p4v1.Index{Index: 1}, Config: &p4v1.MeterConfig{Cir: 10, Cburst: 5, Pir: 10, Pburst: 5}}
	if err := r.WriteUpdate(ctx, &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: me}}}); err != nil {
		t.Fatalf("configure the policer: %v", err)
	}
	if cfg, err := r.ReadMeterEntry(ctx, "MainControlImpl.policer", 1); err != nil || cfg.GetCir() != 10 || cfg.GetPburst() != 5 {
		t.Errorf("policer[1] reads back %v (%v)", cfg, err)
	}
	l.flows(t, netip.MustParseAddrPort("10.0.2.1:7000"), "policed", 30)
	n := len(caps[2].frames("policed", 300*time.Millisecond)) + len(caps[3].frames("policed", 50*time.Millisecond))
	if n < 5 || n > 15 {
		t.Errorf("policed at 10/s, burst 5: %d of 30 datagrams arrived", n)
	}
}
