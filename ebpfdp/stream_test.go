package ebpfdp

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// l2switch: examples/l2switch (learning switch, packet I/O, digests).
const (
	l2Dir        = "../examples/l2switch"
	l2Digest     = 385875969
	l2CPUPort    = 510
	l2TblSmac    = 33554433
	l2ActKnown   = 16777217
	l2TblDmac    = 33554434
	l2ActForward = 16777219
)

// events collects what a Backend reports.
type events chan translator.Event

// next returns the next event of kind (0: any) that ok accepts; the hosts'
// own traffic (IPv6 neighbour discovery, MLD) makes events of its own.
func (ev events) next(t *testing.T, kind translator.EventKind, ok func(translator.Event) bool) translator.Event {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		select {
		case e := <-ev:
			if (kind == 0 || e.Kind == kind) && ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no event of kind %d within 2s", kind)
		}
	}
}

// newL2Switch runs examples/l2switch on a Backend with a CPU port in a
// three-namespace lab (h1 - sw1 [sw] sw2 - h2); the events it reports go
// to a channel of the given size.
func newL2Switch(tb testing.TB, events int) (*lab, *Backend, *translator.Device, events) {
	tb.Helper()
	l := newLab(tb)
	root := filepath.Join(tempBPFFS(tb), "p4tcd")
	b, err := New(Options{DeviceID: 9, Ports: map[uint32]string{1: "sw1", 2: "sw2"}, CPUPort: l2CPUPort,
		PinRoot: root, NetNSPath: filepath.Join("/var/run/netns", l.sw.Name)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	dev := translator.NewDevice(b)
	ev := make(chan translator.Event, events)
	b.SetEventHandler(func(e translator.Event) {
		select {
		case ev <- e:
		default: // a slow test drops events, as a slow server would
		}
	})
	obj, err := os.ReadFile(filepath.Join(l2Dir, "l2switch.o"))
	if err != nil {
		tb.Fatal(err)
	}
	fpc, err := p4test.Pipeline(filepath.Join(l2Dir, "l2switch.p4info.txt"), filepath.Join(l2Dir, "l2switch.json"), obj)
	if err != nil {
		tb.Fatal(err)
	}
	if err := dev.SetPipeline(p4test.Commit, fpc); err != nil {
		tb.Fatal(err)
	}
	return l, b, dev, ev
}

// The CPU port and digests on real veths: a frame from h1 with an unknown
// source and destination becomes a digest {src MAC, port} and a packet-in
// with the packet_in header; a packet-out naming port 2 leaves at h2; once
// the controller knows both MACs, frames are switched without it.
func TestPrivilegedPacketIOAndDigests(t *testing.T) {
	testutil.Privileged(t)
	l, b, dev, ev := newL2Switch(t, 64)
	tx := packetSocket(t, l.h1, "h1e")
	rx := packetSocket(t, l.h2, "h2e")
	f := frame(17, "10.0.0.1", "10.0.0.2", 1000, 2000, 64) // dst macR, src macA

	if _, err := unix.Write(tx, f); err != nil {
		t.Fatal(err)
	}
	wantRec := append([]byte{0, 0}, macA...)
	wantRec = binary.BigEndian.AppendUint32(wantRec, 1)
	// The packet_in header (port 1), then the frame as it came in. The
	// digest and the packet-in come from different readers, in any order.
	want := append([]byte{0, 0, 0, 1}, f...)
	ev.next(t, 0, func(e translator.Event) bool {
		switch {
		case e.Kind == translator.EventDigest && bytes.Equal(e.Data, wantRec):
			if e.DigestID != l2Digest {
				t.Errorf("digest id %d, want %d", e.DigestID, l2Digest)
			}
			wantRec = nil
		case e.Kind == translator.EventPacketIn && bytes.Equal(e.Frame, want):
			want = nil
		}
		return wantRec == nil && want == nil
	})

	// A packet-out to port 2 reaches h2 as the plain frame.
	if err := b.SendPacket(append([]byte{0, 0, 0, 2}, f...)); err != nil {
		t.Fatal(err)
	}
	if got := receive(rx, 300*time.Millisecond); len(got) != 1 || !bytes.Equal(got[0], f) {
		t.Fatalf("h2 got %x, want the packet-out's frame once", got)
	}

	// Learnt: the frame is switched to h2 without the controller.
	ifOf := func(mac []byte, act uint32, params ...[]byte) p4test.Update {
		return p4test.Insert(p4test.Entry{Table: l2TblDmac, Match: []p4test.Match{p4test.Exact(1, mac)}, Action: act, Params: params})
	}
	if err := p4test.Write(dev,
		p4test.Insert(p4test.Entry{Table: l2TblSmac, Match: []p4test.Match{p4test.Exact(1, macA)}, Action: l2ActKnown}),
		ifOf(macR, l2ActForward, u32(2))); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(tx, f); err != nil {
		t.Fatal(err)
	}
	if got := receive(rx, 300*time.Millisecond); len(got) != 1 {
		t.Fatalf("after learning, h2 got %d frames, want 1", len(got))
	}
	for len(ev) > 0 {
		if e := <-ev; bytes.Contains(e.Frame, f) || bytes.Contains(e.Data, macA) {
			t.Errorf("after learning, the datapath still reported %+v", e)
		}
	}
	if err := b.SendPacket(append([]byte{0, 0, 0, 99}, f...)); err != nil {
		t.Fatal(err) // a packet-out to no port is dropped by the datapath, not refused here
	}
}
