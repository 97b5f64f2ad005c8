package ebpfdp

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// lab is two hosts and a switch, each in a namespace of the test:
// h1 (h1e) <-> (sw1) switch (sw2) <-> (h2e) h2.
type lab struct {
	h1, sw, h2 *testutil.NetNS
}

func newLab(t testing.TB) *lab {
	t.Helper()
	l := &lab{h1: testutil.NewNetNS(t), sw: testutil.NewNetNS(t), h2: testutil.NewNetNS(t)}
	h, err := netlink.NewHandleAt(l.sw.Handle())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Delete()
	for _, v := range []struct {
		name, peer string
		ns         *testutil.NetNS
	}{{"sw1", "h1e", l.h1}, {"sw2", "h2e", l.h2}} {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: v.name}, PeerName: v.peer, PeerNamespace: netlink.NsFd(v.ns.Handle())}
		if err := h.LinkAdd(veth); err != nil {
			t.Fatalf("add veth %s: %v", v.name, err)
		}
		if err := setUp(h, v.name); err != nil {
			t.Fatal(err)
		}
		ph, err := netlink.NewHandleAt(v.ns.Handle())
		if err != nil {
			t.Fatal(err)
		}
		err = setUp(ph, v.peer)
		ph.Delete()
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(l)
}

// packetSocket opens an AF_PACKET socket on ifname inside ns; it is closed
// at cleanup.
func packetSocket(t testing.TB, ns *testutil.NetNS, ifname string) int {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index})
	})
	if err != nil {
		t.Fatalf("packet socket on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// receive reads frames from fd for up to d and returns the IPv4 frames our
// tests sent (IP id 0x1234).
func receive(fd int, d time.Duration) [][]byte {
	var out [][]byte
	buf := make([]byte, 2048)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue // timeout
		}
		f := buf[:n]
		if n >= 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && binary.BigEndian.Uint16(f[18:]) == 0x1234 {
			out = append(out, append([]byte(nil), f...))
		}
	}
	return out
}

func TestPrivilegedLiveVeth(t *testing.T) {
	testutil.Privileged(t)
	l := newLab(t)
	root := filepath.Join(tempBPFFS(t), "p4tcd")
	b, err := New(Options{DeviceID: 7, Ports: map[uint32]string{1: "sw1", 2: "sw2"}, PinRoot: root,
		NetNSPath: filepath.Join("/var/run/netns", l.sw.Name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	sw := &l3Switch{b: b, dev: translator.NewDevice(b)}
	if err := sw.dev.SetPipeline(p4test.Commit, l3Pipeline(t)); err != nil {
		t.Fatal(err)
	}
	routes(t, sw) // 10.1/16 -> next hop 10: port 2, dmac macB, smac macR
	sw.write(t, p4test.Insert(aclEntry(10, actDeny, p4test.Range(5, u16(1000), u16(2000)))))
	tx := packetSocket(t, l.h1, "h1e")
	rx := packetSocket(t, l.h2, "h2e")
	send := func(f []byte) {
		t.Helper()
		if _, err := unix.Write(tx, f); err != nil {
			t.Fatalf("send: %v", err)
		}
	}

	// Routed: MACs rewritten, TTL - 1, checksum still valid.
	in := frame(17, "10.0.0.1", "10.1.2.3", 4321, 80, 64)
	send(in)
	got := receive(rx, 300*time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("h2 received %d frames, want 1", len(got))
	}
	out := got[0]
	if !bytes.Equal(out[0:6], macB) || !bytes.Equal(out[6:12], macR) {
		t.Errorf("MACs dst %x src %x, want %x %x", out[0:6], out[6:12], []byte(macB), []byte(macR))
	}
	if out[22] != 63 || !ipValid(out[14:34]) {
		t.Errorf("TTL %d, checksum valid %v; want 63, true", out[22], ipValid(out[14:34]))
	}
	if !bytes.Equal(out[26:34], in[26:34]) || !bytes.Equal(out[34:42], in[34:42]) {
		t.Errorf("addresses or ports changed")
	}

	// ACL deny: dport 1500 is in the denied range.
	send(frame(17, "10.0.0.1", "10.1.2.3", 4321, 1500, 64))
	// Miss in ipv4_lpm: the default action drops.
	send(frame(17, "10.0.0.1", "10.9.9.9", 4321, 80, 64))
	if got := receive(rx, 200*time.Millisecond); len(got) != 0 {
		t.Errorf("h2 received %d frames that should have been dropped", len(got))
	}
	acl, err := b.Counters(tblACL)
	if err != nil {
		t.Fatal(err)
	}
	lpm, _ := b.Counters(tblLPM)
	if acl.Hits != 1 || lpm.Misses != 1 || lpm.Hits != 2 {
		t.Errorf("counters acl %+v ipv4_lpm %+v; want 1 acl hit, 2 lpm hits and 1 miss", acl, lpm)
	}

	// The same counters, read from the pins as another process would.
	pinned, err := ReadPinnedCounters(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(pinned) != 3 || pinned[1].ID != tblLPM || pinned[1].Counters != lpm {
		t.Errorf("pinned counters %+v, want ipv4_lpm %+v", pinned, lpm)
	}

	// A default action that forwards: the miss now reaches h2.
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblLPM, Default: true, Action: actSetNhop, Params: [][]byte{u16(10)}}))
	send(frame(17, "10.0.0.1", "10.9.9.9", 4321, 80, 64))
	if got := receive(rx, 300*time.Millisecond); len(got) != 1 || got[0][22] != 63 {
		t.Errorf("miss with default set_nhop(10): h2 received %d frames", len(got))
	}
}
