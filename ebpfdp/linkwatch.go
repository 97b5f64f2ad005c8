package ebpfdp

import (
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Watch ports: a member of a selector group is skipped while its watch
// port is down. BPF cannot read a link's state, so p4tcd follows the
// ports' links (netlink RTM_NEWLINK/RTM_DELLINK, like `ip monitor link`)
// and keeps p4tc_port_down: a port is down when it is not IFF_UP or has no
// carrier (IFF_LOWER_UP), or is gone. The datapath reads the map per
// packet for watched members only, so a port going down moves its traffic
// with one map write, however many groups watch it.

// linkWatch is a running subscription to link events.
type linkWatch struct {
	done    chan struct{} // closed to stop
	stopped chan struct{} // closed when the reader has returned
}

// linkIsDown reports whether a link cannot carry traffic.
func linkIsDown(a *netlink.LinkAttrs) bool {
	return a.RawFlags&unix.IFF_UP == 0 || a.RawFlags&unix.IFF_LOWER_UP == 0
}

// portOf finds the P4 port of an interface name. The Backend's lock is
// held.
func (b *Backend) portOf(name string) (uint32, bool) {
	for port, ifc := range b.allPorts() {
		if ifc == name {
			return port, true
		}
	}
	return 0, false
}

// followLinks makes p's datapath follow the ports' link states, when it
// has selectors: it starts the watch (once per Backend), then reads every
// port's state and writes it, so that no change is missed between the
// two. The Backend's lock is held.
func (b *Backend) followLinks(p *pipeline) {
	if p.ext == nil || p.ext.portDown == nil {
		return
	}
	if b.links == nil {
		if err := b.startLinkWatch(); err != nil {
			b.log.Warn("watch ports not followed: every port counts as up", "err", err)
			return
		}
	}
	down := map[uint32]bool{}
	err := b.ns.do(func(h *netlink.Handle) error {
		for port, name := range b.allPorts() {
			l, err := h.LinkByName(name)
			down[port] = err != nil || linkIsDown(l.Attrs())
		}
		return nil
	})
	if err != nil {
		b.log.Warn("port states not read", "err", err)
		return
	}
	b.linkDown = down
	if err := p.ext.setPortsDown(down); err != nil {
		b.log.Warn("port states not written", "err", err)
	}
}

// startLinkWatch subscribes to the link events of the ports' namespace.
// The Backend's lock is held; the reader takes it for each event.
func (b *Backend) startLinkWatch() error {
	ch := make(chan netlink.LinkUpdate, 64)
	lw := &linkWatch{done: make(chan struct{}), stopped: make(chan struct{})}
	err := b.ns.do(func(*netlink.Handle) error {
		// The socket is opened on this thread, in the ports' namespace,
		// and stays there.
		return netlink.LinkSubscribeWithOptions(ch, lw.done, netlink.LinkSubscribeOptions{
			ErrorCallback: func(err error) { b.log.Debug("link events", "err", err) },
		})
	})
	if err != nil {
		return err
	}
	b.links = lw
	go func() {
		defer close(lw.stopped)
		for u := range ch {
			b.linkEvent(u)
		}
	}()
	return nil
}

// linkEvent records one port's new state and writes it into the running
// datapath.
func (b *Backend) linkEvent(u netlink.LinkUpdate) {
	a := u.Attrs()
	down := u.Header.Type == unix.RTM_DELLINK || linkIsDown(a)
	b.mu.Lock()
	defer b.mu.Unlock()
	port, ok := b.portOf(a.Name)
	if !ok || b.closed {
		return
	}
	if b.linkDown == nil {
		b.linkDown = map[uint32]bool{}
	}
	if prev, known := b.linkDown[port]; known && prev == down {
		return
	}
	b.linkDown[port] = down
	if b.cur != nil && b.cur.ext != nil {
		if err := b.cur.ext.setPortDown(port, down); err != nil {
			b.log.Warn("port state not written", "port", port, "err", err)
		}
	}
	b.log.Debug("port link", "port", port, "interface", a.Name, "down", down)
}

// stopLinkWatch ends the subscription; the Backend's lock must not be
// held (the reader may be waiting for it).
func (b *Backend) stopLinkWatch() {
	b.mu.Lock()
	lw := b.links
	b.links = nil
	b.mu.Unlock()
	if lw != nil {
		close(lw.done)
		<-lw.stopped
	}
}
