//go:build linux

// Command demo is `make demo`: a netns lab with two hosts and p4tcd as the
// router between them, running examples/l3router on the eBPF datapath.
//
//	h1 (10.0.1.1) h1e ── sw1 ┐                ┌ sw2 ── h2e (10.0.2.1) h2
//	                         └─ p4tcd (ns sw) ┘
//
// It creates three network namespaces and two veth pairs, starts p4tcd with
// --datapath ebpf on the switch's ports, becomes primary over P4Runtime,
// pushes l3router (P4Info + `p4tcd pack` device config), installs routes,
// next hops and an ACL, sends UDP datagrams both ways from real sockets in
// the host namespaces, prints what arrived, the per-table hit counters and
// what the ACL dropped, and removes everything it created. Needs root and a
// kernel ≥ 6.6 (tcx) or clsact.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/p4tcd/p4tcd/ebpfdp"
)

var (
	routerMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}
	h1MAC     = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x01, 0x01}
	h2MAC     = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x02, 0x01}
)

// P4Info ids of examples/l3router/l3router.p4info.txt.
const (
	tblACL     = 0x02000001
	tblLPM     = 0x02000002
	tblNexthop = 0x02000003
	actSetNhop = 0x01000002
	actForward = 0x01000003
	actDeny    = 0x01000005
)

func main() {
	bin := flag.String("p4tcd", "bin/p4tcd", "the p4tcd binary")
	dir := flag.String("dir", "examples/l3router", "the l3router example directory")
	flag.Parse()
	if os.Geteuid() != 0 {
		log.Fatal("the demo creates network namespaces and loads BPF: run it as root")
	}
	if err := run(*bin, *dir); err != nil {
		log.Fatal(err)
	}
}

// lab is what the demo created, for teardown.
type lab struct {
	ns     map[string]netns.NsHandle
	prefix string
}

func run(bin, dir string) error {
	var suffix [3]byte
	rand.Read(suffix[:])
	l := &lab{ns: map[string]netns.NsHandle{}, prefix: "p4demo-" + hex.EncodeToString(suffix[:]) + "-"}
	defer l.teardown()
	step("creating the lab: namespaces %sh1, %ssw, %sh2 and two veth pairs", l.prefix, l.prefix, l.prefix)
	if err := l.build(); err != nil {
		return err
	}

	step("packing the device config (p4tcd pack %s)", dir)
	devcfg := filepath.Join(os.TempDir(), l.prefix+"l3router.devcfg")
	defer os.Remove(devcfg)
	if out, err := exec.Command(bin, "pack", "-o", devcfg, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("p4tcd pack: %v\n%s", err, out)
	}

	pinRoot := "/sys/fs/bpf/" + l.prefix + "p4tcd"
	addr := freeAddr()
	step("starting p4tcd --datapath ebpf on ports 1=sw1 2=sw2 (namespace %ssw), P4Runtime on %s", l.prefix, addr)
	var daemonLog bytes.Buffer
	daemon := exec.Command(bin, "--datapath", "ebpf", "--grpc-addr", addr, "--device-id", "1",
		"--port", "1=sw1", "--port", "2=sw2", "--port-netns", l.prefix+"sw", "--bpffs", pinRoot)
	daemon.Stderr = &daemonLog
	if err := daemon.Start(); err != nil {
		return err
	}
	defer func() {
		daemon.Process.Signal(syscall.SIGTERM)
		daemon.Wait()
		os.RemoveAll(pinRoot)
	}()
	if err := waitServing(addr); err != nil {
		return fmt.Errorf("%v\n%s", err, daemonLog.String())
	}

	if err := program(addr, dir, devcfg); err != nil {
		return fmt.Errorf("%v\np4tcd log:\n%s", err, daemonLog.String())
	}

	step("sending UDP: 10 datagrams h1 → h2:7000, 5 datagrams h1 → h2:9999 (the ACL denies dport 9999), 10 datagrams h2 → h1:7001")
	got12, err := l.udp("h1", "h2", netip.MustParseAddrPort("10.0.2.1:7000"), 10)
	if err != nil {
		return err
	}
	denied, err := l.udp("h1", "h2", netip.MustParseAddrPort("10.0.2.1:9999"), 5)
	if err != nil {
		return err
	}
	got21, err := l.udp("h2", "h1", netip.MustParseAddrPort("10.0.1.1:7001"), 10)
	if err != nil {
		return err
	}
	fmt.Printf("\n  h1 → h2:7000  %2d of 10 arrived\n", got12)
	fmt.Printf("  h1 → h2:9999  %2d of 5 arrived (denied by the ACL)\n", denied)
	fmt.Printf("  h2 → h1:7001  %2d of 10 arrived\n\n", got21)

	counters, err := ebpfdp.ReadPinnedCounters(pinRoot)
	if err != nil {
		return fmt.Errorf("read counters: %w", err)
	}
	names := map[uint32]string{tblACL: "acl", tblLPM: "ipv4_lpm", tblNexthop: "nexthop"}
	fmt.Println("  per-table counters, read from the pinned maps:")
	for _, c := range counters {
		fmt.Printf("    %-9s (P4Info id %#x)  tc: hits %3d  misses %3d", names[c.ID], c.ID, c.Counters.Hits, c.Counters.Misses)
		if c.XDP != nil {
			fmt.Printf("   xdp tier: hits %3d  misses %3d", c.XDP.Hits, c.XDP.Misses)
		}
		fmt.Println()
	}
	fmt.Printf("  the ACL dropped %d datagrams\n\n", 5-denied)
	if got12 != 10 || got21 != 10 || denied != 0 {
		return errors.New("the demo's traffic did not go as expected")
	}
	step("done; removing the lab")
	return nil
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

// build creates the namespaces, veths, addresses, routes and neighbours.
func (l *lab) build() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	defer netns.Set(orig)
	for _, n := range []string{"h1", "sw", "h2"} {
		h, err := netns.NewNamed(l.prefix + n)
		if err != nil {
			return fmt.Errorf("create namespace %s: %w", l.prefix+n, err)
		}
		l.ns[n] = h
		if err := netns.Set(orig); err != nil {
			return err
		}
	}
	sw, err := netlink.NewHandleAt(l.ns["sw"])
	if err != nil {
		return err
	}
	defer sw.Close()
	for _, p := range []struct {
		sw, host, ns, addr, gw string
		mac                    net.HardwareAddr
	}{
		{"sw1", "h1e", "h1", "10.0.1.1/24", "10.0.1.254", h1MAC},
		{"sw2", "h2e", "h2", "10.0.2.1/24", "10.0.2.254", h2MAC},
	} {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.sw, HardwareAddr: routerMAC}, PeerName: p.host,
			PeerHardwareAddr: p.mac, PeerNamespace: netlink.NsFd(l.ns[p.ns])}
		if err := sw.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s: %w", p.sw, err)
		}
		if err := linkUp(sw, p.sw); err != nil {
			return err
		}
		h, err := netlink.NewHandleAt(l.ns[p.ns])
		if err != nil {
			return err
		}
		err = configureHost(h, p.host, p.addr, p.gw)
		h.Close()
		if err != nil {
			return fmt.Errorf("configure %s: %w", p.host, err)
		}
	}
	return nil
}

func linkUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetUp(link)
}

// configureHost gives a host its address, a default route through the
// router and the router's MAC for the gateway (a static neighbour: the
// l3router datapath does not answer ARP).
func configureHost(h *netlink.Handle, ifname, cidr, gw string) error {
	link, err := h.LinkByName(ifname)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(link, addr); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return err
	}
	gwIP := net.ParseIP(gw)
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT, IP: gwIP, HardwareAddr: routerMAC}); err != nil {
		return err
	}
	return h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gwIP})
}

func (l *lab) teardown() {
	for n, h := range l.ns {
		h.Close()
		if err := netns.DeleteNamed(l.prefix + n); err != nil {
			log.Printf("delete namespace %s: %v", l.prefix+n, err)
		}
	}
}

// inNS runs f on a locked thread inside the namespace.
func (l *lab) inNS(n string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(l.ns[n]); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// udp sends n datagrams from a socket in namespace from to dst, received by
// a socket in namespace to, and returns how many arrived.
func (l *lab) udp(from, to string, dst netip.AddrPort, n int) (int, error) {
	var rx, tx *net.UDPConn
	if err := l.inNS(to, func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return 0, err
	}
	defer rx.Close()
	if err := l.inNS(from, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return 0, err
	}
	defer tx.Close()
	for i := range n {
		if _, err := fmt.Fprintf(tx, "datagram %d", i); err != nil {
			return 0, err
		}
	}
	got := 0
	buf := make([]byte, 1500)
	for {
		rx.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := rx.Read(buf); err != nil {
			return got, nil
		}
		got++
	}
}

func freeAddr() string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func waitServing(addr string) error {
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("p4tcd is not serving on %s", addr)
}

// program is the controller: arbitration, pipeline, entries.
func program(addr, dir, devcfg string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := p4v1.NewP4RuntimeClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := c.StreamChannel(ctx)
	if err != nil {
		return err
	}
	eid := &p4v1.Uint128{Low: 1}
	if err := stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
		Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: 1, ElectionId: eid}}}); err != nil {
		return err
	}
	if m, err := stream.Recv(); err != nil || m.GetArbitration().GetStatus().GetCode() != 0 {
		return fmt.Errorf("arbitration: %v %v", m, err)
	}
	step("primary controller; pushing l3router (VERIFY_AND_COMMIT)")
	infoText, err := os.ReadFile(filepath.Join(dir, "l3router.p4info.txt"))
	if err != nil {
		return err
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(infoText, &info); err != nil {
		return err
	}
	dc, err := os.ReadFile(devcfg)
	if err != nil {
		return err
	}
	if _, err := c.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: 1, ElectionId: eid, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc},
	}); err != nil {
		return fmt.Errorf("push pipeline: %w", err)
	}

	entry := func(table, action uint32, prio int32, ms []*p4v1.FieldMatch, params ...[]byte) *p4v1.Update {
		a := &p4v1.Action{ActionId: action}
		for i, p := range params {
			a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: p})
		}
		return &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: table, Priority: prio, Match: ms, Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}}}}}
	}
	lpm := func(ip string, plen int32) []*p4v1.FieldMatch {
		a := netip.MustParseAddr(ip).As4()
		return []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: a[:], PrefixLen: plen}}}}
	}
	exact := func(v []byte) []*p4v1.FieldMatch {
		return []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}}
	}
	dport := []*p4v1.FieldMatch{{FieldId: 5, FieldMatchType: &p4v1.FieldMatch_Range_{Range: &p4v1.FieldMatch_Range{Low: []byte{0x27, 0x0f}, High: []byte{0x27, 0x0f}}}}}
	w := &p4v1.WriteRequest{DeviceId: 1, ElectionId: eid, Updates: []*p4v1.Update{
		entry(tblNexthop, actForward, 0, exact([]byte{1}), h1MAC, routerMAC, []byte{1}),
		entry(tblNexthop, actForward, 0, exact([]byte{2}), h2MAC, routerMAC, []byte{2}),
		entry(tblLPM, actSetNhop, 0, lpm("10.0.1.0", 24), []byte{1}),
		entry(tblLPM, actSetNhop, 0, lpm("10.0.2.0", 24), []byte{2}),
		entry(tblACL, actDeny, 10, dport),
	}}
	step("installing 2 next hops, 2 routes and an ACL entry (deny UDP dport 9999)")
	if _, err := c.Write(ctx, w); err != nil {
		return fmt.Errorf("write entries: %w", err)
	}
	return stream.CloseSend()
}
