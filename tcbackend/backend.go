package tcbackend

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// Options configure a Backend.
type Options struct {
	// ABI is the P4TC ABI to speak; ABIAuto probes the kernel.
	ABI ABI
	// NetNS is the network namespace whose P4TC to drive; 0 or
	// netns.None() means the caller's.
	NetNS netns.NsHandle
	// Ports maps P4 port numbers to interface names for parameters and
	// key fields of P4TC type dev, which hold ifindexes. nil passes port
	// numbers through as ifindexes.
	Ports map[uint32]string
	// Timeout bounds each wait for the kernel; 0 means 10s.
	Timeout time.Duration
	// EventGroup overrides the ABI's multicast group for entry events
	// (RTNLGRP_P4TC moves when a P4TC kernel is rebased); 0 keeps it.
	EventGroup uint32
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger

	// sock overrides the socket layer's protocol and peer (tests point it
	// at a stand-in for a P4TC kernel); zero is the kernel.
	sock socketOptions
}

// socketOptions returns where the options send messages.
func (o *Options) socketOptions() socketOptions {
	s := o.sock
	if s.proto == 0 && s.peer == 0 {
		s.proto = unix.NETLINK_ROUTE
	}
	s.ns = o.NetNS
	if s.ns == 0 {
		s.ns = netns.None()
	}
	s.timeout = o.Timeout
	if s.timeout == 0 {
		s.timeout = 10 * time.Second
	}
	return s
}

// Backend is the P4TC kernel backend: it realises a P4Runtime pipeline as
// P4TC template objects and its entries as P4TC runtime entries, over
// rtnetlink, as `tc p4template` and `tc p4ctrl` do. It implements
// translator.Backend.
type Backend struct {
	opts  Options
	sock  socketOptions
	a     *abiTable
	enc   encoder
	c     *conn
	ports *portMap
	log   *slog.Logger

	// mu guards every field below; the event readers take it for
	// reading.
	mu     sync.RWMutex
	p      *plan                  // the committed pipeline, or nil
	state  map[string]*tableState // by P4TC table name
	closed bool
	subs   map[*subscription]struct{}
}

var _ translator.Backend = (*Backend)(nil)

// New connects to the kernel's P4TC. With ABIAuto it probes which ABI the
// kernel speaks; it fails with ErrNotSupported when the kernel has no P4TC.
func New(o Options) (*Backend, error) {
	b := &Backend{opts: o, sock: o.socketOptions(), state: map[string]*tableState{}, subs: map[*subscription]struct{}{}}
	b.log = o.Logger
	if b.log == nil {
		b.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c, err := dial(b.sock)
	if err != nil {
		return nil, fmt.Errorf("connect to P4TC: %w", err)
	}
	abi, err := detect(c, o.ABI)
	if err != nil {
		c.close()
		return nil, err
	}
	b.c = c
	b.a, _ = tableFor(abi)
	b.enc = encoder{b.a}
	if b.ports, err = resolvePorts(o.Ports, b.sock.ns); err != nil {
		c.close()
		return nil, err
	}
	return b, nil
}

// ABI returns the ABI the backend speaks.
func (b *Backend) ABI() ABI { return b.a.abi }

// resolvePorts looks up the interface of every mapped port.
func resolvePorts(ports map[uint32]string, ns netns.NsHandle) (*portMap, error) {
	if ports == nil {
		return nil, nil
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("resolve ports: %w", err)
	}
	defer h.Close()
	m := &portMap{toIfindex: map[uint32]uint32{}, toPort: map[uint32]uint32{}}
	for port, name := range ports {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("resolve port %d (%s): %w", port, name, err)
		}
		idx := uint32(l.Attrs().Index)
		m.toIfindex[port], m.toPort[idx] = idx, port
	}
	return m, nil
}

// Verify checks that c can be realised on P4TC (translator.Backend): every
// table and action has an introspection record, keys fit P4TC's key blob,
// types are P4TC types, names fit P4TC's sizes.
func (b *Backend) Verify(c *translator.Config) error {
	_, err := buildPlan(b.a, c)
	return err
}

// Commit replaces whatever pipeline this backend runs with c, with no
// entries (translator.Backend): it deletes the previous pipeline and any
// pipeline of c's name (`tc p4template del pipeline/<p>`), then creates the
// template as the p4c `.template` script does and seals it (`update
// pipeline/<p> state ready`).
func (b *Backend) Commit(c *translator.Config) error {
	p, err := buildPlan(b.a, c)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	if b.p != nil && b.p.pname != p.pname {
		if err := b.deletePipeline(b.p.pname); err != nil {
			return err
		}
	}
	b.p, b.state = nil, map[string]*tableState{}
	if err := b.deletePipeline(p.pname); err != nil {
		return err
	}
	for _, m := range b.enc.templateScript(p.tmpl) {
		if _, err := b.c.exchange(m); err != nil {
			err = mapKernelError(fmt.Sprintf("create template of pipeline %s", p.pname), err)
			if derr := b.deletePipeline(p.pname); derr != nil {
				b.log.Warn("p4tc: could not remove the half-created pipeline", "pipeline", p.pname, "err", derr)
			}
			return err
		}
	}
	b.adopt(p, nil)
	return nil
}

// adopt makes p the committed plan, keeping the table state of old for
// tables whose template did not change.
func (b *Backend) adopt(p *plan, old map[string]*tableState) {
	b.p = p
	b.state = map[string]*tableState{}
	for name, tp := range p.byName {
		if s := old[name]; s != nil {
			b.state[name] = s
			continue
		}
		b.state[name] = newTableState(b.a, tp)
	}
}

// deletePipeline removes a pipeline; a missing one is not an error.
func (b *Backend) deletePipeline(name string) error {
	_, err := b.c.exchange(b.enc.pipelineDelete(name))
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	var ke *KernelError
	if errors.As(err, &ke) && ke.Errno == syscall.EINVAL && isNotFoundText(ke.Msg) {
		return nil
	}
	return mapKernelError("delete pipeline "+name, err)
}

// Reconcile replaces the running pipeline with c keeping forwarding
// (translator.Backend). A sealed P4TC pipeline cannot change, so this works
// only when c's template is the running one (a new P4Info naming the same
// P4TC objects): entries stay as they are. Otherwise it fails.
func (b *Backend) Reconcile(c *translator.Config, entries []*translator.Entry) error {
	p, err := buildPlan(b.a, c)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.p.sameTemplate(p) {
		return translator.Errorf(translator.ErrUnsupported, "p4tc datapath: a sealed P4TC pipeline cannot change in place; the new config has a different template (use VERIFY_AND_COMMIT)")
	}
	b.adopt(p, b.state)
	return nil
}

// Close releases the backend's sockets (translator.Backend). The kernel's
// pipeline and entries stay: forwarding goes on.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for s := range b.subs {
		s.close()
	}
	b.c.close()
	return nil
}

// DeletePipeline removes the committed pipeline and its entries from the
// kernel (`tc p4template del pipeline/<p>`), for shutdown without
// --keep-forwarding.
func (b *Backend) DeletePipeline() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil {
		return nil
	}
	if err := b.deletePipeline(b.p.pname); err != nil {
		return err
	}
	b.p = nil
	return nil
}
