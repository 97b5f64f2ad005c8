package ebpfdp

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// The XDP tier is p4tcd's hardware tier on stock kernels: the same
// pipeline built for XDP (the device config's xdp_object), with maps of
// its own that hold the controller entries placed hw or both. It runs
// before the tc tier on every port; a packet it handles (its lookups hit)
// never reaches tc, one it does not (a miss) goes on to tc with XDP_PASS,
// where entries placed sw and those the datapath creates live.

// XDPMode is how the XDP tier attaches to a port (`ip link set dev IFACE
// xdpdrv|xdpgeneric obj ...`).
type XDPMode uint8

const (
	// XDPAuto attaches in native (driver) mode where the port's driver
	// supports XDP and in generic mode elsewhere.
	XDPAuto XDPMode = iota
	// XDPNative runs the program in the driver, before an skb exists
	// (`ip link set dev IFACE xdpdrv obj ...`); ports whose driver lacks
	// XDP fail to attach.
	XDPNative
	// XDPGeneric runs it on the skb, after the driver (`ip link set dev
	// IFACE xdpgeneric obj ...`): works on every device, and saves only
	// the tc layer's cost.
	XDPGeneric
)

func (m XDPMode) String() string { return [...]string{"auto", "native", "generic"}[m] }

// ParseXDPMode reads an XDP mode name (auto, native, generic), as
// --xdp-mode takes it.
func ParseXDPMode(s string) (XDPMode, error) {
	for m := XDPAuto; m <= XDPGeneric; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("xdp mode %q: want auto, native or generic", s)
}

// modes lists the attach modes to try, in order.
func (m XDPMode) modes() []XDPMode {
	switch m {
	case XDPNative, XDPGeneric:
		return []XDPMode{m}
	}
	return []XDPMode{XDPNative, XDPGeneric}
}

func (m XDPMode) flags() link.XDPAttachFlags {
	if m == XDPGeneric {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}

// attachXDP runs prog at XDP on a port: an existing link is updated in
// place (the port never runs nothing), otherwise a link is created in the
// first mode that works and pinned at pinPath.
func attachXDP(a *attachment, prog *ebpf.Program, pinPath string, mode XDPMode) error {
	if a.tcx != nil {
		if err := a.tcx.Update(prog); err != nil {
			return fmt.Errorf("update xdp link on %s: %w", a.ifname, err)
		}
		return nil
	}
	var errs []error
	for _, m := range mode.modes() {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: a.ifindex, Flags: m.flags()})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
			continue
		}
		if err := l.Pin(pinPath); err != nil {
			l.Close()
			return fmt.Errorf("pin xdp link of %s: %w", a.ifname, err)
		}
		a.tcx, a.mode = l, m
		return nil
	}
	return fmt.Errorf("attach xdp to %s: %w", a.ifname, errors.Join(errs...))
}

// detachXDP removes p4tcd's XDP program from a port (`ip link set dev
// IFACE xdp off`).
func detachXDP(a *attachment, pinPath string) error {
	if a.tcx == nil {
		return nil
	}
	err := a.tcx.Unpin()
	if cerr := a.tcx.Close(); err == nil {
		err = cerr
	}
	a.tcx = nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("detach xdp link of %s: %w", a.ifname, err)
	}
	return nil
}

// attachXDPAll points every port's XDP hook at p's XDP tier, or detaches
// p4tcd's XDP programs when p has none. If a port fails, the ports
// already switched go back to the running XDP program (or lose the new
// one).
func (b *Backend) attachXDPAll(p *pipeline, ifindex map[uint32]uint32) error {
	if err := os.MkdirAll(b.xdpLinkPin(""), 0o700); err != nil {
		return fmt.Errorf("create pin root: %w", err)
	}
	return b.ns.do(func(*netlink.Handle) error {
		if p.xdp == nil {
			for name, a := range b.xatts {
				if err := detachXDP(a, b.xdpLinkPin(name)); err != nil {
					b.log.Warn("xdp program not detached", "port", name, "err", err)
				}
				delete(b.xatts, name)
			}
			return nil
		}
		var switched []*attachment
		for _, port := range sortedPorts(b.allPorts()) {
			if port == b.opts.CPUPort {
				continue // packet-outs take the tc program
			}
			name := b.allPorts()[port]
			a := b.xatts[name]
			if a != nil && a.ifindex != int(ifindex[port]) {
				if err := detachXDP(a, b.xdpLinkPin(name)); err != nil {
					b.log.Warn("stale xdp link not removed", "port", name, "err", err)
				}
				a = nil
			}
			if a == nil {
				a = &attachment{ifname: name, ifindex: int(ifindex[port])}
			}
			if err := attachXDP(a, p.xdp.prog, b.xdpLinkPin(name), b.opts.XDPMode); err != nil {
				for _, s := range switched {
					var uerr error
					if b.cur != nil && b.cur.xdp != nil {
						uerr = attachXDP(s, b.cur.xdp.prog, b.xdpLinkPin(s.ifname), b.opts.XDPMode)
					} else {
						uerr = detachXDP(s, b.xdpLinkPin(s.ifname))
						delete(b.xatts, s.ifname)
					}
					if uerr != nil {
						b.log.Error("port left on the new xdp program", "port", s.ifname, "err", uerr)
					}
				}
				return fmt.Errorf("port %d: %w", port, err)
			}
			if b.xatts[name] == nil {
				b.log.Info("xdp tier attached", "port", name, "mode", a.mode)
			}
			b.xatts[name] = a
			switched = append(switched, a)
		}
		return nil
	})
}

// XDPModes reports the mode the XDP tier runs in on each port, by
// interface name (empty without an XDP tier): what `ip link show dev
// IFACE` shows as xdp (native) or xdpgeneric.
func (b *Backend) XDPModes() map[string]XDPMode {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]XDPMode{}
	for name, a := range b.xatts {
		if a.tcx != nil {
			out[name] = a.mode
		}
	}
	return out
}
