package ebpfdp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// netnsRunner runs work in the network namespace of the ports: directly
// when that is the caller's, else on a dedicated goroutine locked to its
// thread, which is the only thread that ever switches namespace.
type netnsRunner struct {
	path string // "" for the caller's namespace
}

func (r netnsRunner) do(fn func(h *netlink.Handle) error) error {
	if r.path == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		defer h.Delete()
		return fn(h)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- r.inNamespace(fn)
	}()
	return <-errc
}

// inNamespace runs on a locked thread. If the thread cannot go back to its
// namespace it stays locked, so it dies with the goroutine.
func (r netnsRunner) inNamespace(fn func(h *netlink.Handle) error) error {
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromPath(r.path)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open netns %s: %w", r.path, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", r.path, err)
	}
	h, err := netlink.NewHandle()
	var ferr error
	if err != nil {
		ferr = fmt.Errorf("open netlink: %w", err)
	} else {
		ferr = fn(h)
		h.Delete()
	}
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("leave netns %s: %w", r.path, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// resolvePorts looks every --port interface up: P4 port -> ifindex.
func resolvePorts(h *netlink.Handle, ports map[uint32]string) (map[uint32]uint32, error) {
	out := make(map[uint32]uint32, len(ports))
	for _, p := range sortedPorts(ports) {
		l, err := h.LinkByName(ports[p])
		if err != nil {
			return nil, translator.Errorf(translator.ErrInvalid, "port %d: interface %s: %v", p, ports[p], err)
		}
		out[p] = uint32(l.Attrs().Index)
	}
	return out, nil
}

func sortedPorts(ports map[uint32]string) []uint32 {
	out := make([]uint32, 0, len(ports))
	for p := range ports {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// attachment is a datapath program's hook on one port: for the tc tier a
// pinned tcx link or, on kernels without tcx (< 6.6), a cls_bpf filter in
// a clsact qdisc; for the XDP tier a pinned XDP link.
type attachment struct {
	ifname  string
	ifindex int
	tcx     link.Link // the link; nil for cls_bpf
	mode    XDPMode   // XDP: the mode it attached in
}

// forceClsact makes attach skip tcx (tests of the fallback).
var forceClsact = false

// The cls_bpf filter p4tcd owns on a port's ingress.
const (
	filterPrio   = 1
	filterHandle = 0x50345443 // "P4TC"
	filterName   = "p4tcd"
)

func clsFilter(ifindex int, prog *ebpf.Program) *netlink.BpfFilter {
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: filterHandle, Priority: filterPrio, Protocol: unix.ETH_P_ALL,
		},
		Name: filterName, DirectAction: true,
	}
	if prog != nil {
		f.Fd = prog.FD()
	}
	return f
}

// attach runs prog at the ingress of a port, replacing what p4tcd ran
// there before without a gap: `tc filter replace dev IFACE ingress bpf da
// obj ...`, done as a tcx link (updated in place when it exists, pinned at
// pinPath) or a cls_bpf filter.
func attach(h *netlink.Handle, a *attachment, prog *ebpf.Program, pinPath string) error {
	if a.tcx != nil {
		if err := a.tcx.Update(prog); err != nil {
			return fmt.Errorf("update tcx link on %s: %w", a.ifname, err)
		}
		return nil
	}
	if !forceClsact {
		l, err := link.AttachTCX(link.TCXOptions{Interface: a.ifindex, Program: prog, Attach: ebpf.AttachTCXIngress})
		if err == nil {
			if err := l.Pin(pinPath); err != nil {
				l.Close()
				return fmt.Errorf("pin tcx link of %s: %w", a.ifname, err)
			}
			a.tcx = l
			return nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("attach tcx to %s: %w", a.ifname, err)
		}
	}
	qd := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: a.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := h.QdiscReplace(qd); err != nil {
		return fmt.Errorf("add clsact qdisc to %s: %w", a.ifname, err)
	}
	if err := h.FilterReplace(clsFilter(a.ifindex, prog)); err != nil {
		return fmt.Errorf("add bpf filter to %s: %w", a.ifname, err)
	}
	return nil
}

// detach removes p4tcd's program from a port: `tc filter del dev IFACE
// ingress ...`. The clsact qdisc stays: other filters may use it.
func detach(h *netlink.Handle, a *attachment, pinPath string) error {
	if a.tcx != nil {
		err := a.tcx.Unpin()
		if cerr := a.tcx.Close(); err == nil {
			err = cerr
		}
		a.tcx = nil
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("detach tcx link of %s: %w", a.ifname, err)
		}
		return nil
	}
	err := h.FilterDel(clsFilter(a.ifindex, nil))
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete bpf filter of %s: %w", a.ifname, err)
	}
	return nil
}

// loadLinks opens the tcx links pinned under dir, by interface name.
func loadLinks(dir string) (map[string]link.Link, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]link.Link{}
	for _, e := range ents {
		l, err := link.LoadPinnedLink(filepath.Join(dir, e.Name()), nil)
		if err != nil {
			return nil, fmt.Errorf("load pinned link %s: %w", e.Name(), err)
		}
		out[e.Name()] = l
	}
	return out, nil
}
