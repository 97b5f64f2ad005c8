package ebpfdp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// ecmpLab is four hosts around an ecmp switch, each in a namespace of the
// test: host i's h<i>e ⇄ the switch's port i (s<i>). IPv6 is off, so only
// the test's frames cross.
type ecmpLab struct {
	sw    *testutil.NetNS
	hosts [5]*testutil.NetNS // 1..4
}

func newECMPLab(t *testing.T) *ecmpLab {
	t.Helper()
	l := &ecmpLab{sw: testutil.NewNetNS(t)}
	h, err := netlink.NewHandleAt(l.sw.Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Delete()
	noIPv6 := func(ns *testutil.NetNS, ifc string) {
		_ = ns.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/"+ifc+"/disable_ipv6", []byte("1"), 0o644)
		})
	}
	for i := 1; i <= 4; i++ {
		host := testutil.NewNetNS(t)
		l.hosts[i] = host
		sw, he := fmt.Sprintf("s%d", i), fmt.Sprintf("h%de", i)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: sw}, PeerName: he, PeerNamespace: netlink.NsFd(host.Handle())}
		if err := h.LinkAdd(veth); err != nil {
			t.Fatalf("add veth %s: %v", sw, err)
		}
		noIPv6(l.sw, sw)
		noIPv6(host, he)
		if err := setUp(h, sw); err != nil {
			t.Fatal(err)
		}
		hh, err := netlink.NewHandleAt(host.Handle())
		if err != nil {
			t.Fatal(err)
		}
		err = setUp(hh, he)
		hh.Delete()
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// socket opens host i's AF_PACKET socket, which sees only frames that
// arrive.
func (l *ecmpLab) socket(t *testing.T, i int) int {
	t.Helper()
	fd := packetSocket(t, l.hosts[i], fmt.Sprintf("h%de", i))
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestPrivilegedExternsLive(t *testing.T) {
	testutil.Privileged(t)
	l := newECMPLab(t)
	b, err := New(Options{DeviceID: 5, Ports: map[uint32]string{1: "s1", 2: "s2", 3: "s3", 4: "s4"},
		PinRoot: filepath.Join(tempBPFFS(t), "p4tcd"), NetNSPath: nsPath(l.sw)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	dev := translator.NewDevice(b)
	if err := dev.SetPipeline(p4test.Commit, ecmpPipeline(t)); err != nil {
		t.Fatal(err)
	}
	write := func(us ...p4test.Update) {
		t.Helper()
		if err := p4test.Write(dev, us...); err != nil {
			t.Fatal(err)
		}
	}
	var fd [5]int
	for i := 1; i <= 4; i++ {
		fd[i] = l.socket(t, i)
	}
	send := func(frames ...[]byte) {
		t.Helper()
		for _, f := range frames {
			if _, err := unix.Write(fd[1], f); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
	}
	// 10.1/16 over h2 and h3 (ECMP, h3's member watching port 3);
	// broadcasts to everyone; UDP to port 5001 mirrored to h4.
	write(member(p4test.OpInsert, 1, 2), member(p4test.OpInsert, 2, 3))
	write(p4test.Group(p4test.OpInsert, profECMP, 10, p4test.GroupMember{ID: 1, Weight: 1}, p4test.GroupMember{ID: 2, Weight: 1, Watch: 3}))
	r := route("10.1.0.0", 16)
	r.Group = 10
	write(p4test.Insert(r),
		p4test.Multicast(p4test.OpInsert, 1, p4test.Replica{Port: 1}, p4test.Replica{Port: 2}, p4test.Replica{Port: 3}, p4test.Replica{Port: 4}),
		p4test.Clone(p4test.OpInsert, 1, 0, p4test.Replica{Port: 4}),
		p4test.ValueSet(vsMirrorPorts, u16(5001)))

	// ECMP: 64 flows from h1 spread over h2 and h3.
	var flows [][]byte
	for i := range 64 {
		flows = append(flows, frame(17, "10.0.0.1", "10.1.2.3", uint16(2000+i), 80, 64))
	}
	send(flows...)
	at2, at3 := receive(fd[2], 300*time.Millisecond), receive(fd[3], 50*time.Millisecond)
	if len(at2)+len(at3) != 64 || len(at2) < 16 || len(at3) < 16 {
		t.Errorf("64 flows: h2 got %d, h3 got %d; want all, spread", len(at2), len(at3))
	}
	for _, f := range append(at2, at3...) {
		if f[22] != 63 || !ipValid(f[14:34]) {
			t.Errorf("forwarded frame: TTL %d, checksum valid %v", f[22], ipValid(f[14:34]))
			break
		}
	}
	// Counters count what was sent: the route's direct counter and port
	// 1's cell, frames of 64 bytes.
	if c, err := p4test.ReadDirectCounter(dev, r); err != nil || c != (p4test.CounterData{Packets: 64, Bytes: 64 * 64}) {
		t.Errorf("route counter %+v (%v), want 64 packets, 4096 bytes", c, err)
	}
	if c, err := p4test.ReadCounter(dev, ctrPortStats, 1); err != nil || c[1] != (p4test.CounterData{Packets: 64, Bytes: 64 * 64}) {
		t.Errorf("port_stats[1] %+v (%v), want 64 packets, 4096 bytes", c[1], err)
	}
	if regs, err := p4test.ReadRegister(dev, regPortPkts, 1); err != nil || !bytes.Equal(regs[1], []byte{64}) {
		t.Errorf("port_pkts[1] %x (%v), want 64", regs[1], err)
	}

	// h3's port goes down (its host takes its end down): everything to h2.
	hh, err := netlink.NewHandleAt(l.hosts[3].Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Delete()
	h3e, err := hh.LinkByName("h3e")
	if err != nil {
		t.Fatal(err)
	}
	if err := hh.LinkSetDown(h3e); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the link event
	send(flows...)
	if got := receive(fd[2], 300*time.Millisecond); len(got) != 64 {
		t.Errorf("with h3's port down, h2 got %d of 64 flows", len(got))
	}
	if err := hh.LinkSetUp(h3e); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	// A broadcast from h1: one copy at each other host, none back.
	bcast := frame(17, "10.0.0.1", "10.255.255.255", 3000, 80, 64)
	copy(bcast[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	send(bcast)
	for i := 1; i <= 4; i++ {
		want := 1
		if i == 1 {
			want = 0
		}
		if got := receive(fd[i], 200*time.Millisecond); len(got) != want {
			t.Errorf("broadcast: h%d got %d copies, want %d", i, len(got), want)
		}
	}

	// Mirrored: h4 gets the frame as h1 sent it; h2 or h3 the routed one.
	m := frame(17, "10.0.0.1", "10.1.2.3", 4000, 5001, 64)
	send(m)
	got4 := receive(fd[4], 300*time.Millisecond)
	if len(got4) != 1 || !bytes.Equal(got4[0][:60], m[:60]) {
		t.Errorf("h4 got %d mirrored frames, want the one h1 sent", len(got4))
	}
	if n := len(receive(fd[2], 50*time.Millisecond)) + len(receive(fd[3], 50*time.Millisecond)); n != 1 {
		t.Errorf("the mirrored frame reached %d of h2, h3; want 1", n)
	}

	// The policer on port 1: 10 packets/s with bursts of 5: of a burst of
	// 40, 5 arrive.
	write(p4test.Meter(mtrPolicer, 1, &p4test.MeterConfig{CIR: 10, CBurst: 5, PIR: 10, PBurst: 5}))
	burst := make([][]byte, 40)
	for i := range burst {
		burst[i] = frame(17, "10.0.0.1", "10.1.2.3", 5000, 80, 64)
	}
	send(burst...)
	n := 0
	for i := 2; i <= 3; i++ {
		for _, f := range receive(fd[i], 200*time.Millisecond) {
			if binary.BigEndian.Uint16(f[34:]) == 5000 {
				n++
			}
		}
	}
	if n < 5 || n > 7 {
		t.Errorf("policer at 10/s, burst 5: %d of 40 frames arrived, want 5 (or one or two more refilled)", n)
	}
}
