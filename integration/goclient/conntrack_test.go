package goclient

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/anypb"
)

// datapathMetadata is the metadata p4tcd gives entries the datapath
// created (translator.DatapathMetadata).
const datapathMetadata = "p4tcd:datapath-created"

// ctLab is a firewall lab: h1 (inside, 10.0.0.1) and h2 (outside,
// 10.0.0.2) on one subnet, the switch between them.
func newCTLab(t *testing.T) *lab {
	t.Helper()
	l := newLab(t) // namespaces and veths, readdressed below
	for _, h := range []struct {
		ns, ifc, addr, peer string
		peerMAC             net.HardwareAddr
	}{
		{l.h1, "h1e", "10.0.0.1/24", "10.0.0.2", h2MAC},
		{l.h2, "h2e", "10.0.0.2/24", "10.0.0.1", h1MAC},
	} {
		ip(t, "-n", h.ns, "route", "flush", "dev", h.ifc)
		ip(t, "-n", h.ns, "addr", "flush", "dev", h.ifc)
		ip(t, "-n", h.ns, "addr", "add", h.addr, "dev", h.ifc)
		ip(t, "-n", h.ns, "neigh", "replace", h.peer, "lladdr", h.peerMAC.String(), "dev", h.ifc, "nud", "permanent")
	}
	return l
}

// sendFromPort sends n datagrams carrying marker from src (bound) in
// namespace ns to dst.
func sendFromPort(t *testing.T, ns string, src, dst netip.AddrPort, marker string, n int) {
	t.Helper()
	err := inNS(ns, func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(src))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range n {
			if _, err := c.WriteToUDPAddrPort([]byte(marker+" "+string(rune('0'+i))), dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from %s %v: %v", ns, src, err)
	}
}

// roleConfig is a p4tcd.v1.RoleConfig in an Any, encoded by hand (this
// module does not import p4tcd's protos): placement, shared ids and
// can_push_pipeline.
func roleConfig(placement uint64, ids ...uint32) *anypb.Any {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, placement)
	var packed []byte
	for _, id := range ids {
		packed = protowire.AppendVarint(packed, uint64(id))
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, packed)
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	return &anypb.Any{TypeUrl: "type.googleapis.com/p4tcd.v1.RoleConfig", Value: b}
}

// connectRole makes a go-client controller primary for a role.
func connectRole(t *testing.T, d *daemon, role *p4v1.Role) *client.Client {
	t.Helper()
	c := client.NewClientForRole(d.dial(t), 1, &p4v1.Uint128{Low: 1}, role)
	arb := make(chan bool, 8)
	stop := make(chan struct{})
	go c.Run(stop, arb, make(chan *p4v1.StreamMessageResponse, 64))
	t.Cleanup(func() { close(stop) })
	select {
	case ok := <-arb:
		if !ok {
			t.Fatalf("role %q: not primary", role.GetName())
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("role %q: no arbitration answer", role.GetName())
	}
	return c
}

// packConntrack packs examples/conntrack with a pool of 2 entries aged
// after 1.5 s.
func packConntrack(t *testing.T) (devcfg, p4info string) {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "conntrack")
	dir := t.TempDir()
	for _, f := range []string{"conntrack.json", "conntrack.o", "conntrack.p4info.txt"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	settings := "tables { table_id: 33554435 datapath_pool_size: 2 timer_profiles_ms: 1500 }\n"
	if err := os.WriteFile(filepath.Join(dir, "conntrack.p4tcd.txt"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	devcfg = filepath.Join(dir, "conntrack.devcfg")
	if out, err := exec.Command(p4tcdBin, "pack", "-o", devcfg, dir).CombinedOutput(); err != nil {
		t.Fatalf("p4tcd pack: %v\n%s", err, out)
	}
	return devcfg, filepath.Join(dir, "conntrack.p4info.txt")
}

// The conntrack example end to end: p4tcd with the eBPF datapath, a
// controller whose role config places its writes, traffic that creates
// entries until the pool runs dry, Reads of the created entries, aging.
func TestPrivilegedConntrackOverP4Runtime(t *testing.T) {
	privileged(t)
	l := newCTLab(t)
	devcfg, p4info := packConntrack(t)
	d := startDaemon(t, "--datapath", "ebpf", "--device-id", "1", "--port", "1=sw1", "--port", "2=sw2",
		"--port-netns", l.sw, "--bpffs", l.pinRoot, "--log-level", "debug")
	const tZone, tAllow, tCT = 33554433, 33554434, 33554435
	const placeSW, placeHW = 1, 2
	c := connectRole(t, d, &p4v1.Role{Name: "fw", Config: roleConfig(placeSW, tZone, tAllow, tCT)})
	ctx := within(t, 60*time.Second)
	if _, err := c.SetFwdPipeFromBytes(ctx, readFile(t, devcfg), oldP4Info(t, p4info), 1); err != nil {
		t.Fatalf("push conntrack: %v", err)
	}
	port := func(p byte) []byte { return []byte{0, 0, 0, p} }
	zone := func(in, inside, peer byte) *p4v1.TableEntry {
		return c.NewTableEntry("MainControlImpl.port_zone", map[string]client.MatchInterface{"input_port": &client.ExactMatch{Value: port(in)}},
			c.NewTableActionDirect("MainControlImpl.set_zone", [][]byte{{inside}, port(peer)}), nil)
	}
	allow := func(dst string) *p4v1.TableEntry {
		a := netip.MustParseAddr(dst).As4()
		return c.NewTableEntry("MainControlImpl.allow", map[string]client.MatchInterface{"dst": &client.LpmMatch{Value: a[:], PLen: 32}},
			c.NewTableActionDirect("MainControlImpl.permit", nil), nil)
	}
	for _, e := range []*p4v1.TableEntry{zone(1, 1, 2), zone(2, 0, 1), allow("10.0.0.2")} {
		if err := c.InsertTableEntry(ctx, e); err != nil {
			t.Fatalf("insert %v: %v", e, err)
		}
	}
	// A role placing its writes in hardware: conntrack has no XDP tier,
	// so the write is refused, which shows the role's placement reaching
	// the datapath.
	hw := connectRole(t, d, &p4v1.Role{Name: "hw", Config: roleConfig(placeHW, tAllow)})
	if _, err := hw.GetFwdPipe(ctx, client.GetFwdPipeAll); err != nil {
		t.Fatal(err)
	}
	err := hw.InsertTableEntry(ctx, allow("10.0.0.9"))
	if code := updateCode(err); code != codes.FailedPrecondition {
		t.Errorf("role placing hw without an XDP tier: %v (update code %v), want FAILED_PRECONDITION", err, code)
	}

	h1 := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), p) }
	h2 := netip.MustParseAddrPort("10.0.0.2:7000")
	toH2 := l.capture(t, l.h2, "h2e")
	toH1 := l.capture(t, l.h1, "h1e")
	opens := func(p uint16, marker string) int {
		sendFromPort(t, l.h1, h1(p), h2, marker, 1)
		return len(toH2.frames(marker, 200*time.Millisecond))
	}
	replies := func(p uint16, marker string) int {
		sendFromPort(t, l.h2, h2, h1(p), marker, 1)
		return len(toH1.frames(marker, 200*time.Millisecond))
	}
	if n := opens(5001, "open-1"); n != 1 {
		t.Fatalf("flow 5001 out: %d frames at h2", n)
	}
	if n := replies(5001, "reply-1"); n != 1 {
		t.Errorf("reply of tracked flow 5001: %d frames at h1, want 1", n)
	}
	if n := replies(5009, "unsolicited"); n != 0 {
		t.Errorf("unsolicited traffic from the outside: %d frames at h1", n)
	}
	// The pool holds 2: 5002 is tracked, 5003 goes out untracked.
	opens(5002, "open-2")
	if n := opens(5003, "open-3"); n != 1 {
		t.Errorf("flow 5003 (pool empty): %d frames at h2, want 1 (allowed, untracked)", n)
	}
	if n := replies(5003, "reply-3"); n != 0 {
		t.Errorf("reply of untracked flow 5003: %d frames at h1", n)
	}
	if n := replies(5002, "reply-2"); n != 1 {
		t.Errorf("reply of tracked flow 5002: %d frames at h1", n)
	}

	created := func() []*p4v1.TableEntry {
		t.Helper()
		all, err := c.ReadTableEntryWildcard(ctx, "MainControlImpl.ct")
		if err != nil {
			t.Fatal(err)
		}
		var out []*p4v1.TableEntry
		for _, e := range all {
			if string(e.GetMetadata()) == datapathMetadata {
				out = append(out, e)
			}
		}
		return out
	}
	got := created()
	if len(got) != 2 {
		t.Fatalf("Read lists %d datapath-created entries, want 2", len(got))
	}
	for _, e := range got {
		if e.GetIdleTimeoutNs() != int64(1500*time.Millisecond) || string(e.GetAction().GetAction().GetParams()[0].GetValue()) != "\x01" {
			t.Errorf("created entry %v: want idle_timeout_ns 1.5s and ct_flow(port 1)", e)
		}
	}
	// Aging: no traffic for the profile's 1.5 s plus a sweep.
	deadline := time.Now().Add(6 * time.Second)
	for len(created()) > 0 && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
	}
	if n := len(created()); n != 0 {
		t.Fatalf("%d created entries left after aging", n)
	}
	if n := replies(5001, "reply-aged"); n != 0 {
		t.Errorf("reply of aged-out flow 5001: %d frames at h1", n)
	}
	// The slots are free again: a new flow is tracked.
	opens(5004, "open-4")
	if n := replies(5004, "reply-4"); n != 1 {
		t.Errorf("reply of flow 5004 after aging freed the pool: %d frames", n)
	}
}

// updateCode is the canonical code of the first update of a failed Write.
func updateCode(err error) codes.Code {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if e, ok := d.(*p4v1.Error); ok {
			return codes.Code(e.GetCanonicalCode())
		}
	}
	return st.Code()
}
