package goclient

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"golang.org/x/sys/unix"
)

// streamClient is a go-client controller with its stream messages.
type streamClient struct {
	*client.Client
	msgs chan *p4v1.StreamMessageResponse
}

// stream connects a go-client controller and reports whether it is primary.
func stream(t *testing.T, d *daemon, election uint64) (*streamClient, bool) {
	t.Helper()
	c := client.NewClient(d.dial(t), 1, &p4v1.Uint128{Low: election})
	arb := make(chan bool, 8)
	sc := &streamClient{Client: c, msgs: make(chan *p4v1.StreamMessageResponse, 4096)}
	stop := make(chan struct{})
	go c.Run(stop, arb, sc.msgs)
	t.Cleanup(func() { close(stop) })
	select {
	case primary := <-arb:
		return sc, primary
	case <-time.After(2 * time.Second):
		t.Fatal("no arbitration answer within 2s")
	}
	return nil, false
}

// wait returns the first message ok accepts within d, or nil.
func (sc *streamClient) wait(d time.Duration, ok func(*p4v1.StreamMessageResponse) bool) *p4v1.StreamMessageResponse {
	deadline := time.After(d)
	for {
		select {
		case m := <-sc.msgs:
			if ok(m) {
				return m
			}
		case <-deadline:
			return nil
		}
	}
}

// rawFrame is an Ethernet frame from src to dst carrying marker.
func rawFrame(dst, src net.HardwareAddr, marker string) []byte {
	f := append(append(append([]byte{}, dst...), src...), 0x88, 0xb5) // local experimental ethertype
	f = append(f, marker...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// sendRaw writes a frame on an interface of a namespace.
func sendRaw(t *testing.T, ns, ifname string, f []byte) {
	t.Helper()
	err := inNS(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6})
	})
	if err != nil {
		t.Fatalf("send on %s: %v", ifname, err)
	}
}

// rawCapture reads frames carrying marker from an AF_PACKET socket.
func (l *lab) rawCapture(t *testing.T, ns, ifname string) func(marker string, d time.Duration) [][]byte {
	t.Helper()
	var fd int
	err := inNS(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index})
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return func(marker string, d time.Duration) [][]byte {
		var out [][]byte
		buf := make([]byte, 2048)
		for end := time.Now().Add(d); time.Now().Before(end); {
			n, err := unix.Read(fd, buf)
			if err == nil && bytes.Contains(buf[:n], []byte(marker)) {
				out = append(out, append([]byte(nil), buf[:n]...))
			}
		}
		return out
	}
}

func isPacketIn(marker string) func(*p4v1.StreamMessageResponse) bool {
	return func(m *p4v1.StreamMessageResponse) bool {
		return m.GetPacket() != nil && bytes.Contains(m.GetPacket().GetPayload(), []byte(marker))
	}
}

// digestOf reports whether a DigestList carries learn_t {mac, port}.
func digestOf(mac net.HardwareAddr, port byte) func(*p4v1.StreamMessageResponse) bool {
	return func(m *p4v1.StreamMessageResponse) bool {
		for _, d := range m.GetDigest().GetData() {
			ms := d.GetStruct().GetMembers()
			if len(ms) == 2 && bytes.Equal(ms[0].GetBitstring(), mac) && bytes.Equal(ms[1].GetBitstring(), []byte{port}) {
				return true
			}
		}
		return false
	}
}

// The stream channel end to end on the eBPF datapath with examples/l2switch
// and an independent client: packet-ins with their metadata, packet-outs to
// a port, digests batched and held back until acked, idle-timeout
// notifications for idle entries only, and a backup that gets no
// packet-ins and whose packet-outs go nowhere.
func TestPrivilegedL2SwitchStream(t *testing.T) {
	privileged(t)
	l := newLab(t)
	devcfg, p4info := packExample(t, "l2switch")
	d := startDaemon(t, "--datapath", "ebpf", "--device-id", "1", "--port", "1=sw1", "--port", "2=sw2",
		"--port-netns", l.sw, "--bpffs", l.pinRoot)
	p, primary := stream(t, d, 2)
	if !primary {
		t.Fatal("controller 2 is not primary")
	}
	backup, _ := stream(t, d, 1)
	ctx := within(t, 60*time.Second)
	if _, err := p.SetFwdPipeFromBytes(ctx, readFile(t, devcfg), oldP4Info(t, p4info), 1); err != nil {
		t.Fatalf("push l2switch: %v", err)
	}
	if _, err := backup.GetFwdPipe(ctx, client.GetFwdPipeAll); err != nil {
		t.Fatal(err)
	}
	if err := p.EnableDigest(ctx, "learn_t", &p4v1.DigestEntry_Config{
		MaxTimeoutNs: int64(50 * time.Millisecond), MaxListSize: 10, AckTimeoutNs: int64(time.Minute)}); err != nil {
		t.Fatalf("enable digest: %v", err)
	}
	atH2 := l.rawCapture(t, l.h2, "h2e")

	// An unknown source and destination: a digest and a packet-in.
	f := rawFrame(h2MAC, h1MAC, "unknown-1")
	sendRaw(t, l.h1, "h1e", f)
	pi := p.wait(3*time.Second, isPacketIn("unknown-1"))
	if pi == nil {
		t.Fatal("no packet-in for a frame with an unknown destination")
	}
	md := pi.GetPacket().GetMetadata()
	if len(md) != 1 || md[0].GetMetadataId() != 1 || !bytes.Equal(md[0].GetValue(), []byte{1}) || !bytes.Equal(pi.GetPacket().GetPayload(), f) {
		t.Errorf("packet-in %v, want ingress_port 1 and the frame", pi.GetPacket())
	}
	dl := p.wait(3*time.Second, digestOf(h1MAC, 1))
	if dl == nil {
		t.Fatal("no digest for h1's MAC on port 1")
	}
	if backup.wait(300*time.Millisecond, isPacketIn("unknown-1")) != nil {
		t.Error("the backup received a packet-in")
	}

	// Not acked: the same learnt data does not come back.
	sendRaw(t, l.h1, "h1e", rawFrame(h2MAC, h1MAC, "unknown-2"))
	if p.wait(3*time.Second, isPacketIn("unknown-2")) == nil {
		t.Fatal("no packet-in for the second frame")
	}
	if p.wait(300*time.Millisecond, digestOf(h1MAC, 1)) != nil {
		t.Error("an unacked digest came back")
	}
	// Acked: it does.
	if err := p.AckDigestList(ctx, dl.GetDigest()); err != nil {
		t.Fatal(err)
	}
	var again *p4v1.StreamMessageResponse
	for i := 0; i < 20 && again == nil; i++ {
		sendRaw(t, l.h1, "h1e", rawFrame(h2MAC, h1MAC, "unknown-3"))
		again = p.wait(200*time.Millisecond, digestOf(h1MAC, 1))
	}
	if again == nil {
		t.Error("after the ack, the digest never came back")
	}

	// A packet-out to port 2 reaches h2; the backup's goes nowhere.
	po := rawFrame(h2MAC, h1MAC, "packet-out")
	if err := p.SendPacketOut(ctx, &p4v1.PacketOut{Payload: po, Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: []byte{2}}}}); err != nil {
		t.Fatal(err)
	}
	if got := atH2("packet-out", 500*time.Millisecond); len(got) != 1 || !bytes.Equal(got[0][:len(po)], po) {
		t.Errorf("h2 got %d copies of the packet-out, want 1", len(got))
	}
	if err := backup.SendPacketOut(ctx, &p4v1.PacketOut{Payload: rawFrame(h2MAC, h1MAC, "backup-out"), Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: []byte{2}}}}); err != nil {
		t.Fatal(err)
	}
	if got := atH2("backup-out", 300*time.Millisecond); len(got) != 0 {
		t.Errorf("a backup's packet-out reached h2 (%d copies)", len(got))
	}
	if e := backup.wait(time.Second, func(m *p4v1.StreamMessageResponse) bool { return m.GetError() != nil }); e == nil {
		t.Error("the backup's packet-out got no StreamError")
	}

	// Idle timeouts: a dmac entry that sees traffic is not reported; one
	// that does not is.
	idleMAC := net.HardwareAddr{0x02, 0, 0, 0, 9, 9}
	for _, mac := range []net.HardwareAddr{h2MAC, idleMAC} {
		e := p.NewTableEntry("MainControlImpl.dmac", map[string]client.MatchInterface{"dst": &client.ExactMatch{Value: mac}},
			p.NewTableActionDirect("MainControlImpl.forward", [][]byte{{2}}), &client.TableEntryOptions{IdleTimeout: 1500 * time.Millisecond})
		if err := p.InsertTableEntry(ctx, e); err != nil {
			t.Fatalf("insert dmac %v: %v", mac, err)
		}
	}
	var idle []*p4v1.TableEntry
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		sendRaw(t, l.h1, "h1e", rawFrame(h2MAC, h1MAC, "busy"))
		if m := p.wait(200*time.Millisecond, func(m *p4v1.StreamMessageResponse) bool { return m.GetIdleTimeoutNotification() != nil }); m != nil {
			idle = append(idle, m.GetIdleTimeoutNotification().GetTableEntry()...)
		}
	}
	sawIdle := false
	for _, te := range idle {
		mac := te.GetMatch()[0].GetExact().GetValue()
		switch {
		case bytes.Equal(mac, idleMAC):
			sawIdle = true
			if te.GetIdleTimeoutNs() != int64(1500*time.Millisecond) {
				t.Errorf("idle entry carries idle_timeout_ns %d", te.GetIdleTimeoutNs())
			}
		case bytes.Equal(mac, h2MAC):
			t.Errorf("an entry that saw traffic was reported idle")
		}
	}
	if !sawIdle {
		t.Error("the entry that saw no traffic was never reported idle")
	}
	if got := atH2("busy", 200*time.Millisecond); len(got) == 0 {
		t.Error("frames to h2's MAC were not forwarded by the dmac entry")
	}
}
