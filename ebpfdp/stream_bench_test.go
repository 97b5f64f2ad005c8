package ebpfdp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// l2Frame is a 300-byte frame from src to dst with a sequence number.
func l2Frame(dst, src net.HardwareAddr, seq uint32) []byte {
	f := make([]byte, 300)
	copy(f[0:6], dst)
	copy(f[6:12], src)
	binary.BigEndian.PutUint16(f[12:], 0x88b5) // local experimental
	copy(f[14:18], "p4io")
	binary.BigEndian.PutUint32(f[18:], seq)
	return f
}

// counter counts the marked frames a packet socket receives, from before
// the frames are sent (the socket's buffer would overflow otherwise).
type counter chan int

// startCount counts marked frames on fd until want arrived or idle passes
// with none after the first.
func startCount(fd int, want int, idle time.Duration) counter {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	c := make(counter, 1)
	go func() { c <- countAt(fd, want, idle) }()
	return c
}

// countAt counts the marked frames a packet socket receives until it has
// want of them or d passes with none.
func countAt(fd int, want int, idle time.Duration) int {
	buf := make([]byte, 2048)
	got := 0
	last := time.Now()
	for got < want && time.Since(last) < idle {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		if n >= 18 && bytes.Equal(buf[14:18], []byte("p4io")) {
			got++
			last = time.Now()
		}
	}
	return got
}

// countEvents counts packet-in events of marked frames and digest events,
// until want of kind arrived or idle passes with none.
func countEvents(ev events, kind translator.EventKind, want int, idle time.Duration) int {
	got := 0
	for got < want {
		select {
		case e := <-ev:
			if e.Kind == kind && (kind != translator.EventPacketIn || bytes.Contains(e.Frame, []byte("p4io"))) {
				got++
			}
		case <-time.After(idle):
			return got
		}
	}
	return got
}

// P4Runtime's packet I/O load profile (openconfig featureprofiles P4RT-6.1:
// 324 pps of traceroute plus 300 kbps of GDP and LLDP each way): 400
// packets a second of 300-byte frames (about 1 Mbit/s) into the CPU port
// and out of it for a second, with no loss. The sender paces itself; the
// test asserts counts, never times.
func TestPrivilegedPacketIOProfileNoLoss(t *testing.T) {
	testutil.Privileged(t)
	l, b, _, ev := newL2Switch(t, 8192)
	tx := packetSocket(t, l.h1, "h1e")
	rx := packetSocket(t, l.h2, "h2e")
	const n, rate = 400, 400
	atH2 := startCount(rx, n, 2*time.Second)
	start := time.Now()
	for i := range n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / rate)))
		if _, err := unix.Write(tx, l2Frame(macB, macA, uint32(i))); err != nil {
			t.Fatal(err)
		}
		if err := b.SendPacket(append([]byte{0, 0, 0, 2}, l2Frame(macB, macA, uint32(i))...)); err != nil {
			t.Fatal(err)
		}
	}
	if got := countEvents(ev, translator.EventPacketIn, n, time.Second); got != n {
		t.Errorf("packet-in: %d of %d frames reached p4tcd", got, n)
	}
	if got := <-atH2; got != n {
		t.Errorf("packet-out: %d of %d frames reached h2", got, n)
	}
}

// BenchmarkPrivilegedPacketIO measures the sustained packet-in, packet-out
// and digest rates through the CPU port and the digest ring, each against
// the same frames switched port to port by the datapath in the same run
// (of-forward = rate ÷ forwarding rate). Frames are sent as fast as the
// sender can; what arrives is counted.
func BenchmarkPrivilegedPacketIO(b *testing.B) {
	testutil.Privileged(b)
	l, be, dev, ev := newL2Switch(b, 1<<16)
	tx := packetSocket(b, l.h1, "h1e")
	rx := packetSocket(b, l.h2, "h2e")
	const n = 20000
	send := func(f func(i int) error) time.Time {
		start := time.Now()
		for i := range n {
			if err := f(i); err != nil {
				b.Fatal(err)
			}
		}
		return start
	}
	// Forwarding baseline: macB known on port 2.
	if err := p4test.Write(dev, p4test.Insert(p4test.Entry{Table: l2TblDmac, Match: []p4test.Match{p4test.Exact(1, macB)}, Action: l2ActForward, Params: [][]byte{u32(2)}}),
		p4test.Insert(p4test.Entry{Table: l2TblSmac, Match: []p4test.Match{p4test.Exact(1, macA)}, Action: l2ActKnown})); err != nil {
		b.Fatal(err)
	}
	rate := func(start time.Time, got int) float64 { return float64(got) / time.Since(start).Seconds() }
	b.ResetTimer()
	var fwd, pin, pout, dig float64
	var pinLoss, poutLoss float64
	for range b.N {
		cnt := startCount(rx, n, 300*time.Millisecond)
		start := send(func(i int) error { _, err := unix.Write(tx, l2Frame(macB, macA, uint32(i))); return err })
		fwd = rate(start, <-cnt)

		// Packet-in: an unknown destination goes to the CPU port.
		start = send(func(i int) error { _, err := unix.Write(tx, l2Frame(macR, macA, uint32(i))); return err })
		got := countEvents(ev, translator.EventPacketIn, n, 300*time.Millisecond)
		pin, pinLoss = rate(start, got), 1-float64(got)/n

		// Packet-out to port 2.
		cnt = startCount(rx, n, 300*time.Millisecond)
		start = send(func(i int) error { return be.SendPacket(append([]byte{0, 0, 0, 2}, l2Frame(macB, macA, uint32(i))...)) })
		got = <-cnt
		pout, poutLoss = rate(start, got), 1-float64(got)/n

		// Digests: every frame a new source MAC.
		start = send(func(i int) error {
			src := net.HardwareAddr{0x06, 0, byte(i >> 16), byte(i >> 8), byte(i), 1}
			_, err := unix.Write(tx, l2Frame(macB, src, uint32(i)))
			return err
		})
		dig = rate(start, countEvents(ev, translator.EventDigest, n, 300*time.Millisecond))
	}
	b.ReportMetric(fwd, "fwd-pps")
	b.ReportMetric(pin, "packet-in-pps")
	b.ReportMetric(pin/fwd, "of-forward-in")
	b.ReportMetric(pinLoss, "packet-in-loss")
	b.ReportMetric(pout, "packet-out-pps")
	b.ReportMetric(pout/fwd, "of-forward-out")
	b.ReportMetric(poutLoss, "packet-out-loss")
	b.ReportMetric(dig, "digests/s")
}
