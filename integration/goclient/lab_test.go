package goclient

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// privileged gates a test that needs root: it skips without root, except in
// CI (CI=true), where it fails. (The main module has testutil.Privileged;
// this module cannot import it.)
func privileged(t *testing.T) {
	t.Helper()
	if !strings.HasPrefix(t.Name(), "TestPrivileged") {
		t.Fatalf("privileged test %s must be named TestPrivileged*", t.Name())
	}
	if os.Geteuid() == 0 {
		return
	}
	if v := strings.ToLower(os.Getenv("CI")); v == "true" || v == "1" {
		t.Fatalf("%s needs root, and CI must run privileged tests", t.Name())
	}
	t.Skipf("%s needs root", t.Name())
}

var (
	routerMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe}
	h1MAC     = net.HardwareAddr{0x02, 0, 0, 0, 1, 1}
	h2MAC     = net.HardwareAddr{0x02, 0, 0, 0, 2, 1}
)

// lab is two hosts and a switch, each in a network namespace the test
// creates, wired with veths; it is removed at cleanup:
//
//	h1 (10.0.1.1) h1e ── sw1 [switch] sw2 ── h2e (10.0.2.1) h2
type lab struct {
	prefix     string
	h1, sw, h2 string // namespace names
	pinRoot    string
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	p := "p4t-" + hex.EncodeToString(b[:]) + "-"
	l := &lab{prefix: p, h1: p + "h1", sw: p + "sw", h2: p + "h2", pinRoot: "/sys/fs/bpf/" + p + "p4tcd"}
	for _, n := range []string{l.h1, l.sw, l.h2} {
		ip(t, "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		// No IPv6: the hosts' own neighbour discovery would be traffic
		// the tests did not send.
		ip(t, "netns", "exec", n, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6")
	}
	t.Cleanup(func() { os.RemoveAll(l.pinRoot) })
	for _, h := range []struct {
		sw, host, ns, addr, gw string
		mac                    net.HardwareAddr
	}{
		{"sw1", "h1e", l.h1, "10.0.1.1/24", "10.0.1.254", h1MAC},
		{"sw2", "h2e", l.h2, "10.0.2.1/24", "10.0.2.254", h2MAC},
	} {
		ip(t, "-n", l.sw, "link", "add", h.sw, "address", routerMAC.String(), "type", "veth",
			"peer", "name", h.host, "address", h.mac.String(), "netns", h.ns)
		ip(t, "-n", l.sw, "link", "set", h.sw, "up")
		ip(t, "-n", h.ns, "addr", "add", h.addr, "dev", h.host)
		ip(t, "-n", h.ns, "link", "set", h.host, "up")
		// The router's MAC for the gateway: l3router does not answer ARP.
		ip(t, "-n", h.ns, "neigh", "add", h.gw, "lladdr", routerMAC.String(), "dev", h.host, "nud", "permanent")
		ip(t, "-n", h.ns, "route", "add", "default", "via", h.gw)
	}
	return l
}

// inNS runs f on a locked OS thread inside the named namespace.
func inNS(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
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

// capture is an AF_PACKET socket on an interface of a namespace.
type capture struct{ fd int }

func (l *lab) capture(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	var fd int
	err := inNS(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_IP))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifc.Index})
	})
	if err != nil {
		t.Fatalf("capture on %s: %v", ifname, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return &capture{fd}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// frames returns the UDP frames carrying marker received within d.
func (c *capture) frames(marker string, d time.Duration) [][]byte {
	var out [][]byte
	buf := make([]byte, 2048)
	for end := time.Now().Add(d); time.Now().Before(end); {
		n, err := unix.Read(c.fd, buf)
		if err != nil || n < 42 {
			continue
		}
		if strings.Contains(string(buf[42:n]), marker) {
			out = append(out, append([]byte(nil), buf[:n]...))
		}
	}
	return out
}

// send sends n UDP datagrams carrying marker from a socket in namespace ns
// to dst.
func send(t *testing.T, ns string, dst netip.AddrPort, marker string, n int) {
	t.Helper()
	err := inNS(ns, func() error {
		// Unconnected, so the ICMP port-unreachable h2 answers (nobody
		// listens there) does not fail the next send.
		c, err := net.ListenUDP("udp4", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := range n {
			if _, err := c.WriteToUDPAddrPort([]byte(fmt.Sprintf("%s %d", marker, i)), dst); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send from %s: %v", ns, err)
	}
}

// ipChecksumOK checks the IPv4 header checksum of a frame.
func ipChecksumOK(f []byte) bool {
	h := f[14 : 14+int(f[14]&0xf)*4]
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum) == 0xffff
}

// pack builds l3router's device config with the p4tcd binary.
func pack(t *testing.T) (devcfg, p4info string) {
	return packExample(t, "l3router")
}

// packExample builds an example's device config with the p4tcd binary.
func packExample(t *testing.T, name string) (devcfg, p4info string) {
	t.Helper()
	dir := filepath.Join("..", "..", "examples", name)
	devcfg = filepath.Join(t.TempDir(), name+".devcfg")
	if out, err := exec.Command(p4tcdBin, "pack", "-o", devcfg, dir).CombinedOutput(); err != nil {
		t.Fatalf("p4tcd pack: %v\n%s", err, out)
	}
	return devcfg, filepath.Join(dir, name+".p4info.txt")
}
