package goclient

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	"github.com/cilium/ebpf"
	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/prototext"
)

// kill9Batch is the number of updates in each Write of the kill -9 test:
// more than the translator hands the datapath at once (4,096), so that a
// Write can be cut between two of its runs.
const kill9Batch = 10_000

// kill9Entries is how many entries the kill -9 test loads; the
// P4TCD_KILL9_ENTRIES environment variable changes it (the documented
// manual run loads 1,000,000).
func kill9Entries(t *testing.T) int {
	n := 200_000
	if v := os.Getenv("P4TCD_KILL9_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 4*kill9Batch {
			t.Fatalf("P4TCD_KILL9_ENTRIES=%q: want a number ≥ %d", v, 4*kill9Batch)
		}
	}
	return n
}

// kill9 kills p4tcd (SIGKILL) in the middle of loading many entries of
// l3router's tables and starts it again with the same flags, while h1
// sends h2 a steady flow of datagrams through the switch:
//
//   - the restarted p4tcd rebuilds its state from the pinned maps: a
//     wildcard Read returns every entry of every Write that returned OK,
//     and nothing of the Write that was cut (p4tcd died while applying
//     it: its batch journal says so, and the maps held part of it before
//     the restart); loading then completes, and the maps hold exactly
//     what Reads return;
//   - arbitration starts afresh (P4Runtime §5: election_id_past resets on
//     a full restart): a controller with a lower election id than the
//     last primary's becomes primary;
//   - no datagram is lost: the datapath forwards while p4tcd is dead
//     (pinned tcx links) and while the next one restores.
func TestPrivilegedKill9MidLoad(t *testing.T) {
	privileged(t)
	total := kill9Entries(t)
	ld := newLoad(total)
	l := newLab(t)
	devcfg, p4info := pack(t)
	args := []string{"--datapath", "ebpf", "--device-id", "1", "--port", "1=sw1", "--port", "2=sw2",
		"--port-netns", l.sw, "--bpffs", l.pinRoot, "--keep-forwarding"}

	d := startDaemon(t, args...)
	r := connect(t, d, 10)
	r.programInfo(devcfg, sizedP4Info(t, p4info, ld))
	fl := startFlow(t, l)
	t0 := time.Now()

	// Kill p4tcd in the middle of a Write, past half the load. If the
	// kill lands between two Writes (the Write had committed, or had not
	// begun), try again further on.
	election, acked := uint64(10), 0
	for attempt := 1; ; attempt++ {
		killFrom := acked + ld.batches()/2
		if attempt > 1 {
			killFrom = acked + 1
		}
		var cut bool
		acked, cut = ld.loadUntilKilled(t, d, r, election, acked, killFrom, l.pinRoot)
		inKernel := kernelEntries(t, l.pinRoot)
		t.Logf("attempt %d: killed p4tcd with %d Writes of %d acknowledged (%d entries), the Write in flight cut: %v; the maps hold %d entries",
			attempt, acked, ld.batches(), ld.upTo(acked), cut, inKernel)
		if cut && inKernel <= ld.upTo(acked)+baseEntries {
			t.Fatalf("the journal shows a Write cut, but the maps hold only the %d acknowledged entries: the cut left nothing to take back", inKernel)
		}

		down := time.Now()
		d = startDaemon(t, args...)
		d.serving(t, 5*time.Minute)
		// A lower election id than the last primary's: after a full
		// restart, election_id_past starts afresh.
		election = uint64(attempt)
		r = connect(t, d, election)
		ctx := within(t, 2*time.Minute)
		if _, err := r.GetFwdPipe(ctx, client.GetFwdPipeAll); err != nil {
			t.Fatal(err)
		}
		if cut && !d.logged("rolled back a Write that was never answered") {
			t.Error("the restarted p4tcd did not log the rollback of the Write in flight")
		}
		present := ld.checkRead(t, r, acked, cut)
		t.Logf("restarted, restored, and %d entries read back %v after the kill",
			ld.upTo(acked)+baseEntries, time.Since(down).Round(time.Millisecond))
		if present {
			// Committed before the kill, unanswered: the client sees it
			// by reading back, as P4Runtime clients do after a lost
			// answer.
			acked++
		}
		if cut {
			break
		}
		if attempt == 3 {
			t.Fatal("three kills in a row missed a Write in flight")
		}
	}

	// Load the rest (the cut Write again, whole) and check everything.
	for b := acked; b < ld.batches(); b++ {
		if err := ld.write(within(t, time.Minute), r, election, b); err != nil {
			t.Fatalf("Write %d after the restart: %v", b, err)
		}
	}
	ld.checkRead(t, r, ld.batches(), false)
	if n := kernelEntries(t, l.pinRoot); n != total+baseEntries {
		t.Errorf("the maps hold %d entries, Reads %d", n, total+baseEntries)
	}
	t.Logf("%d entries loaded across a kill -9 in %v", total, time.Since(t0).Round(time.Millisecond))

	sent, lost := fl.finish(t)
	t.Logf("frames h1 → h2 across the kill and the restart: %d sent, %d lost", sent, lost)
	if sent < 100 {
		t.Errorf("only %d frames sent: the flow did not run", sent)
	}
	if lost != 0 {
		t.Errorf("%d of %d frames lost across the restart", lost, sent)
	}
}

// baseEntries are the entries program installs in nexthop and ipv4_lpm.
const baseEntries = 4

// l3Load is the load of the kill -9 test: entry i is the next hop 100+i
// for i < nexthops, then the /32 route to 11.0.0.0 + (i − nexthops) via
// next hop 2. Write b holds entries [b·kill9Batch, (b+1)·kill9Batch).
type l3Load struct {
	total, nexthops int
}

func newLoad(total int) l3Load {
	return l3Load{total: total, nexthops: min(total/10, 60_000)}
}

func (ld l3Load) batches() int { return (ld.total + kill9Batch - 1) / kill9Batch }

// upTo is the number of entries of the first b Writes.
func (ld l3Load) upTo(b int) int { return min(b*kill9Batch, ld.total) }

func (ld l3Load) entry(r *router, i int) *p4v1.TableEntry {
	if i < ld.nexthops {
		id := 100 + i
		return r.NewTableEntry("MainControlImpl.nexthop",
			map[string]client.MatchInterface{"nhop_id": &client.ExactMatch{Value: []byte{byte(id >> 8), byte(id)}}},
			r.NewTableActionDirect("MainControlImpl.forward", [][]byte{h2MAC, routerMAC, {0, 0, 0, 2}}), nil)
	}
	return r.NewTableEntry("MainControlImpl.ipv4_lpm",
		map[string]client.MatchInterface{"dst": &client.LpmMatch{Value: binary.BigEndian.AppendUint32(nil, 11<<24+uint32(i-ld.nexthops)), PLen: 32}},
		r.NewTableActionDirect("MainControlImpl.set_nhop", [][]byte{{0, 2}}), nil)
}

// index is the inverse of entry for what a Read returns: -1 for the
// entries program installs, -2 for anything else.
func (ld l3Load) index(te *p4v1.TableEntry) int {
	if len(te.GetMatch()) != 1 {
		return -2
	}
	m := te.GetMatch()[0]
	var v uint64
	for _, b := range append(m.GetExact().GetValue(), m.GetLpm().GetValue()...) {
		v = v<<8 | uint64(b)
	}
	if m.GetExact() != nil {
		switch {
		case v == 1 || v == 2:
			return -1
		case v >= 100 && v < 100+uint64(ld.nexthops):
			return int(v - 100)
		}
		return -2
	}
	switch plen := m.GetLpm().GetPrefixLen(); {
	case plen == 24 && (v == 10<<24|1<<8 || v == 10<<24|2<<8):
		return -1
	case plen == 32 && v >= 11<<24 && v < 11<<24+uint64(ld.total-ld.nexthops):
		return ld.nexthops + int(v-11<<24)
	}
	return -2
}

// write sends Write b.
func (ld l3Load) write(ctx context.Context, r *router, election uint64, b int) error {
	var ups []*p4v1.Update
	for i := b * kill9Batch; i < ld.upTo(b+1); i++ {
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT,
			Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: ld.entry(r, i)}}})
	}
	_, err := r.Write(ctx, &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: election}, Updates: ups})
	return err
}

// loadUntilKilled sends Writes from `from` on, one at a time, and kills
// p4tcd (SIGKILL) as soon as Write killFrom or a later one is half
// applied: its batch journal (ebpfdp's documented pin) shows a batch open
// with half the Write's ops journaled. The translator hands the datapath
// 4,096 ops at a time and the journal takes a run's ops just before the
// run is written, so by then the first of them are in the maps. It returns how many Writes
// returned OK, and whether the journal showed the Write in flight open
// (begun and not committed) once p4tcd was dead.
func (ld l3Load) loadUntilKilled(t *testing.T, d *daemon, r *router, election uint64, from, killFrom int, pinRoot string) (acked int, cut bool) {
	t.Helper()
	jr := openJournal(t, pinRoot)
	var ok atomic.Int64
	ok.Store(int64(from))
	done := make(chan error, 1)
	go func() {
		for b := from; b < ld.batches(); b++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := ld.write(ctx, r, election, b)
			cancel()
			if err != nil {
				done <- err
				return
			}
			ok.Store(int64(b + 1))
		}
		done <- nil
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Microsecond) {
		select {
		case err := <-done:
			t.Fatalf("the load ended before the kill (Write %d: %v)", ok.Load(), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no Write was half applied within 2 minutes")
		}
		if ok.Load() < int64(killFrom) {
			continue
		}
		if h := jr.header(t); h.applying && h.changes >= kill9Batch/2 {
			d.kill9(t)
			break
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the client's Write did not return after the kill")
	}
	return int(ok.Load()), jr.header(t).applying
}

// checkRead reads both tables and checks them against the load: the
// entries program installed, every entry of the first acked Writes, none
// of the Writes after the next one, and of the next one (the Write in
// flight at the kill) none when it was cut, else all or none. It reports
// whether the next Write is there.
func (ld l3Load) checkRead(t *testing.T, r *router, acked int, cut bool) (next bool) {
	t.Helper()
	ctx := within(t, 2*time.Minute)
	present := make([]bool, ld.total)
	base := 0
	for _, table := range []string{"MainControlImpl.nexthop", "MainControlImpl.ipv4_lpm"} {
		tes, err := r.ReadTableEntryWildcard(ctx, table)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, te := range tes {
			switch i := ld.index(te); {
			case i == -1:
				base++
			case i < 0:
				t.Errorf("%s: an entry nobody wrote: %v", table, te)
			case present[i]:
				t.Errorf("%s: entry %d read twice", table, i)
			default:
				present[i] = true
			}
		}
	}
	if base != baseEntries {
		t.Errorf("%d of the %d entries programmed first", base, baseEntries)
	}
	count := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			if present[i] {
				n++
			}
		}
		return n
	}
	a, n := ld.upTo(acked), ld.upTo(acked+1)
	if got := count(0, a); got != a {
		t.Errorf("%d of the %d entries of acknowledged Writes read back", got, a)
	}
	if got := count(n, ld.total); got != 0 {
		t.Errorf("%d entries of Writes never sent read back", got)
	}
	inflight := count(a, n)
	switch {
	case cut && inflight != 0:
		t.Errorf("%d of the %d entries of the Write cut by the kill read back; want none", inflight, n-a)
	case inflight != 0 && inflight != n-a:
		t.Errorf("%d of the %d entries of the unanswered Write read back; want all or none", inflight, n-a)
	}
	return inflight == n-a && n > a
}

// sizedP4Info is l3router's P4Info (as oldP4Info gives it) with room for
// the load: next hop ids are 16 bits.
func sizedP4Info(t *testing.T, p4info string, ld l3Load) []byte {
	t.Helper()
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(oldP4Info(t, p4info), &info); err != nil {
		t.Fatal(err)
	}
	for _, tb := range info.Tables {
		switch tb.GetPreamble().GetName() {
		case "MainControlImpl.nexthop":
			tb.Size = 1 << 16
		case "MainControlImpl.ipv4_lpm":
			tb.Size = int64(ld.total + 1024)
		}
	}
	b, err := prototext.Marshal(&info)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// journal reads the header of the batch journal ebpfdp pins with the
// running pipeline generation: <root>/g<N>/journal/0, an array whose first
// page holds, at byte 12, the state (1 while a batch is open) and, at byte
// 32, the number of changes (map rows, mostly) journaled in the open batch
// (docs/ebpf-datapath.md).
type journal struct{ m *ebpf.Map }

type journalHeader struct {
	applying bool
	changes  uint64
}

func openJournal(t *testing.T, pinRoot string) *journal {
	t.Helper()
	pins, err := filepath.Glob(filepath.Join(pinRoot, "g*", "journal", "0"))
	if err != nil || len(pins) != 1 {
		t.Fatalf("journal pins %v (%v), want one", pins, err)
	}
	m, err := ebpf.LoadPinnedMap(pins[0], nil)
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return &journal{m}
}

func (j *journal) header(t *testing.T) journalHeader {
	t.Helper()
	page := make([]byte, 4096)
	if err := j.m.Lookup(uint32(0), page); err != nil {
		t.Fatalf("read journal: %v", err)
	}
	if string(page[8:12]) != "p4jr" {
		t.Fatalf("journal magic %q", page[8:12])
	}
	return journalHeader{applying: binary.LittleEndian.Uint32(page[12:]) == 1, changes: binary.LittleEndian.Uint64(page[32:])}
}

// kernelEntries counts the entries of nexthop and ipv4_lpm in the tc
// tier's pinned maps (P4TC table ids 3 and 2: p4tc_t3, p4tc_t2).
func kernelEntries(t *testing.T, pinRoot string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"p4tc_t2", "p4tc_t3"} {
		pins, err := filepath.Glob(filepath.Join(pinRoot, "g*", "maps", name))
		if err != nil || len(pins) != 1 {
			t.Fatalf("pinned map %s: %v (%v)", name, pins, err)
		}
		m, err := ebpf.LoadPinnedMap(pins[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
		it := m.Iterate()
		for it.Next(&k, &v) {
			n++
		}
		err = it.Err()
		m.Close()
		if err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
	}
	return n
}

// flow is a steady stream of numbered UDP datagrams from h1 to h2
// (10.0.2.1:7000) through the switch, at most one a millisecond, and what
// h2 received of it.
type flow struct {
	tx, rx *net.UDPConn
	stop   chan struct{}
	wg     sync.WaitGroup
	// sending is closed when the sender has stopped.
	sending chan struct{}
	sent    atomic.Uint32
	mu      sync.Mutex
	got     map[uint32]bool
}

func startFlow(t *testing.T, l *lab) *flow {
	t.Helper()
	f := &flow{stop: make(chan struct{}), sending: make(chan struct{}), got: map[uint32]bool{}}
	dst := netip.MustParseAddrPort("10.0.2.1:7000")
	if err := inNS(l.h2, func() (err error) {
		f.rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		t.Fatalf("listen in h2: %v", err)
	}
	// Room for seconds of datagrams, should the reader be starved.
	if sc, err := f.rx.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20) })
	}
	if err := inNS(l.h1, func() (err error) {
		f.tx, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		f.rx.Close()
		t.Fatalf("socket in h1: %v", err)
	}
	t.Cleanup(func() {
		f.halt()
		f.tx.Close()
		f.rx.Close()
		f.wg.Wait()
	})
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 64)
		for {
			n, err := f.rx.Read(buf)
			if err != nil {
				return
			}
			if n == 8 && string(buf[:4]) == "seq:" {
				f.mu.Lock()
				f.got[binary.BigEndian.Uint32(buf[4:])] = true
				f.mu.Unlock()
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		defer close(f.sending)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		msg := []byte("seq:\x00\x00\x00\x00")
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			binary.BigEndian.PutUint32(msg[4:], f.sent.Load())
			if _, err := f.tx.WriteToUDPAddrPort(msg, dst); err != nil {
				continue
			}
			f.sent.Add(1)
		}
	}()
	return f
}

func (f *flow) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
}

// finish stops the sender, waits up to 2 s for the last datagrams, and
// returns how many were sent and how many of those h2 never received.
func (f *flow) finish(t *testing.T) (sent, lost int) {
	t.Helper()
	f.halt()
	<-f.sending
	sent = int(f.sent.Load())
	received := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for seq := range f.got {
			if int(seq) < sent {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(2 * time.Second); received() < sent && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return sent, sent - received()
}
