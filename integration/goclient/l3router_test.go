package goclient

import (
	"bytes"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/encoding/prototext"
)

// router is a go-client controller of l3router.
type router struct {
	*client.Client
	t    *testing.T
	stop chan struct{}
}

// connect makes a p4runtime-go-client controller primary on the daemon.
func connect(t *testing.T, d *daemon, election uint64) *router {
	t.Helper()
	c := client.NewClient(d.dial(t), 1, &p4v1.Uint128{Low: election})
	arb := make(chan bool, 8)
	msgs := make(chan *p4v1.StreamMessageResponse, 64)
	r := &router{Client: c, t: t, stop: make(chan struct{})}
	go c.Run(r.stop, arb, msgs)
	t.Cleanup(r.close)
	select {
	case ok := <-arb:
		if !ok {
			t.Fatal("go client is not primary")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no arbitration answer within 2s")
	}
	return r
}

func (r *router) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
}

func (r *router) nexthop(id byte, dmac []byte, port byte) *p4v1.TableEntry {
	return r.NewTableEntry("MainControlImpl.nexthop",
		map[string]client.MatchInterface{"nhop_id": &client.ExactMatch{Value: []byte{0, id}}},
		r.NewTableActionDirect("MainControlImpl.forward", [][]byte{dmac, routerMAC, {0, 0, 0, port}}), nil)
}

func (r *router) route(prefix string, plen int32, nhop byte) *p4v1.TableEntry {
	a := netip.MustParseAddr(prefix).As4()
	return r.NewTableEntry("MainControlImpl.ipv4_lpm",
		map[string]client.MatchInterface{"dst": &client.LpmMatch{Value: a[:], PLen: plen}},
		r.NewTableActionDirect("MainControlImpl.set_nhop", [][]byte{{0, nhop}}), nil)
}

func (r *router) denyDport(port uint16, prio int32) *p4v1.TableEntry {
	p := []byte{byte(port >> 8), byte(port)}
	return r.NewTableEntry("MainControlImpl.acl",
		map[string]client.MatchInterface{"dport": &client.RangeMatch{Low: p, High: p}},
		r.NewTableActionDirect("MainControlImpl.deny", nil), &client.TableEntryOptions{Priority: prio})
}

// program pushes l3router and installs next hops, routes and an ACL entry.
func (r *router) program(devcfg, p4info string) {
	r.t.Helper()
	r.programInfo(devcfg, oldP4Info(r.t, p4info))
}

// programInfo is program with the P4Info given as text.
func (r *router) programInfo(devcfg string, p4info []byte) {
	r.t.Helper()
	ctx := within(r.t, 30*time.Second)
	if _, err := r.SetFwdPipeFromBytes(ctx, readFile(r.t, devcfg), p4info, 1); err != nil {
		r.t.Fatalf("push l3router: %v", err)
	}
	for _, e := range []*p4v1.TableEntry{
		r.nexthop(1, h1MAC, 1), r.nexthop(2, h2MAC, 2),
		r.route("10.0.1.0", 24, 1), r.route("10.0.2.0", 24, 2),
		r.denyDport(9999, 10),
	} {
		if err := r.InsertTableEntry(ctx, e); err != nil {
			r.t.Fatalf("insert %v: %v", e, err)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oldP4Info is the P4Info as a client built on P4Runtime v1.4.0-rc.5 protos
// (like this one) sees and pushes it: fields added later, such as
// initial_default_action, are dropped. p4tcd then takes each table's
// default action from the P4TC introspection.
func oldP4Info(t *testing.T, p string) []byte {
	t.Helper()
	var info p4configv1.P4Info
	if err := (prototext.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(readFile(t, p), &info); err != nil {
		t.Fatal(err)
	}
	b, err := prototext.Marshal(&info)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// delivered sends n datagrams h1 → h2 and returns the frames h2e received.
func (l *lab) delivered(t *testing.T, cap *capture, dport uint16, marker string, n int) [][]byte {
	t.Helper()
	send(t, l.h1, netip.AddrPortFrom(netip.MustParseAddr("10.0.2.1"), dport), marker, n)
	return cap.frames(marker, 300*time.Millisecond)
}

// The eBPF datapath end to end: p4tcd started as a process on a switch
// namespace, l3router pushed and programmed by p4runtime-go-client over
// P4Runtime, real frames from a UDP socket in h1 forwarded to h2.
func TestPrivilegedL3RouterOverP4Runtime(t *testing.T) {
	privileged(t)
	l := newLab(t)
	devcfg, p4info := pack(t)
	d := startDaemon(t, "--datapath", "ebpf", "--device-id", "1", "--port", "1=sw1", "--port", "2=sw2",
		"--port-netns", l.sw, "--bpffs", l.pinRoot)
	r := connect(t, d, 1)
	r.program(devcfg, p4info)
	cap := l.capture(t, l.h2, "h2e")

	// Routed: next hop's MACs, TTL − 1, a valid checksum.
	got := l.delivered(t, cap, 7000, "routed", 3)
	if len(got) != 3 {
		t.Fatalf("h2 received %d of 3 datagrams", len(got))
	}
	f := got[0]
	if !bytes.Equal(f[0:6], h2MAC) || !bytes.Equal(f[6:12], routerMAC) {
		t.Errorf("MACs dst %x src %x, want %x %x", f[0:6], f[6:12], []byte(h2MAC), []byte(routerMAC))
	}
	if f[22] != 63 || !ipChecksumOK(f) {
		t.Errorf("TTL %d (want 63 from the host's 64), checksum valid %v", f[22], ipChecksumOK(f))
	}

	// The ACL drops dport 9999; a destination with no route takes the
	// default action (drop).
	if got := l.delivered(t, cap, 9999, "denied", 3); len(got) != 0 {
		t.Errorf("the ACL let %d datagrams through", len(got))
	}
	send(t, l.h1, netip.MustParseAddrPort("10.0.9.9:7000"), "noroute", 3)
	if got := cap.frames("noroute", 200*time.Millisecond); len(got) != 0 {
		t.Errorf("a miss in ipv4_lpm forwarded %d datagrams", len(got))
	}

	ctx := within(t, 30*time.Second)
	// DELETE stops forwarding; INSERT brings it back.
	if err := r.DeleteTableEntry(ctx, r.route("10.0.2.0", 24, 2)); err != nil {
		t.Fatal(err)
	}
	if got := l.delivered(t, cap, 7000, "deleted", 3); len(got) != 0 {
		t.Errorf("after DELETE of the route, %d datagrams still arrived", len(got))
	}
	if err := r.InsertTableEntry(ctx, r.route("10.0.2.0", 24, 2)); err != nil {
		t.Fatal(err)
	}
	if got := l.delivered(t, cap, 7000, "reinserted", 3); len(got) != 3 {
		t.Errorf("after re-INSERT, %d of 3 datagrams arrived", len(got))
	}

	// RECONCILE_AND_COMMIT with the pipeline keeps the entries and the
	// forwarding.
	if _, err := r.SetFwdPipeFromBytesWithAction(ctx, readFile(t, devcfg), oldP4Info(t, p4info), 2, p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT); err != nil {
		t.Fatalf("RECONCILE_AND_COMMIT: %v", err)
	}
	if got := l.delivered(t, cap, 7000, "reconciled", 3); len(got) != 3 {
		t.Errorf("after RECONCILE_AND_COMMIT, %d of 3 datagrams arrived", len(got))
	}
	if got := l.delivered(t, cap, 9999, "reconciled-denied", 3); len(got) != 0 {
		t.Errorf("after RECONCILE_AND_COMMIT the ACL let %d datagrams through", len(got))
	}
	routes, err := r.ReadTableEntryWildcard(ctx, "MainControlImpl.ipv4_lpm")
	if err != nil || len(routes) != 2 {
		t.Errorf("routes after reconcile: %d, %v", len(routes), err)
	}
}

// A restart with --keep-forwarding: frames flow while p4tcd is down, and the
// next p4tcd rebuilds its entries from the pinned maps.
func TestPrivilegedRestartKeepsForwarding(t *testing.T) {
	privileged(t)
	l := newLab(t)
	devcfg, p4info := pack(t)
	args := []string{"--datapath", "ebpf", "--device-id", "1", "--port", "1=sw1", "--port", "2=sw2",
		"--port-netns", l.sw, "--bpffs", l.pinRoot, "--keep-forwarding"}
	d := startDaemon(t, args...)
	r := connect(t, d, 1)
	r.program(devcfg, p4info)
	cap := l.capture(t, l.h2, "h2e")
	if got := l.delivered(t, cap, 7000, "before", 3); len(got) != 3 {
		t.Fatalf("before the restart: %d of 3 datagrams", len(got))
	}
	r.close()
	if err := d.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop p4tcd: %v", err)
	}
	if got := l.delivered(t, cap, 7000, "down", 3); len(got) != 3 {
		t.Errorf("while p4tcd is down: %d of 3 datagrams (want forwarding to continue)", len(got))
	}

	d2 := startDaemon(t, args...)
	r2 := connect(t, d2, 1)
	ctx := within(t, 30*time.Second)
	for table, want := range map[string]int{"MainControlImpl.ipv4_lpm": 2, "MainControlImpl.nexthop": 2, "MainControlImpl.acl": 1} {
		// The client must learn the P4Info first.
		if _, err := r2.GetFwdPipe(ctx, client.GetFwdPipeAll); err != nil {
			t.Fatal(err)
		}
		got, err := r2.ReadTableEntryWildcard(ctx, table)
		if err != nil || len(got) != want {
			t.Errorf("after restart, %s holds %d entries (%v), want %d", table, len(got), err, want)
		}
	}
	// The restarted daemon programs the datapath it adopted.
	if err := r2.DeleteTableEntry(ctx, r2.route("10.0.2.0", 24, 2)); err != nil {
		t.Fatal(err)
	}
	if got := l.delivered(t, cap, 7000, "after", 3); len(got) != 0 {
		t.Errorf("after restart and DELETE, %d datagrams still arrived", len(got))
	}
}
