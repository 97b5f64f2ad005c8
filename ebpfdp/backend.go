package ebpfdp

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/p4tcd/p4tcd/translator"
)

// Options configures a Backend: which interfaces are the switch's ports
// (`tc ... dev IFACE`) and where the datapath is pinned.
type Options struct {
	// DeviceID is the P4Runtime device id; it names the pin root.
	DeviceID uint64
	// Ports maps P4 port numbers to interface names (`--port N=IFACE`).
	// The datapath runs at the ingress of each, and action parameters of
	// P4TC type dev name them by P4 port.
	Ports map[uint32]string
	// PinRoot is the bpffs directory that holds the pinned datapath;
	// default /sys/fs/bpf/p4tcd/<DeviceID>.
	PinRoot string
	// KeepForwarding leaves the datapath attached and pinned on Close, for
	// the next p4tcd to adopt (Restore).
	KeepForwarding bool
	// Logger receives what the backend cannot report as an error.
	Logger *slog.Logger
	// NetNSPath is the network namespace the ports live in (a path like
	// /var/run/netns/NAME); "" is the daemon's own.
	NetNSPath string
	// XDPMode is how the XDP tier attaches to the ports when the device
	// config has an XDP object (`ip link set dev IFACE xdpdrv|xdpgeneric
	// obj ...`): XDPAuto (native where the driver supports it, generic
	// elsewhere), XDPNative or XDPGeneric.
	XDPMode XDPMode
	// SweepInterval is how often idle timeouts and the aging of
	// datapath-created entries are checked; default 1s.
	SweepInterval time.Duration
	// CPUPort is the P4 port number of p4tcd's CPU port (packet-in and
	// packet-out), 0 for none. The Backend creates the CPU veth pair in the
	// ports' namespace (cpuPortNames) and makes its datapath end that port.
	CPUPort uint32
	// OnIdle receives what each aging sweep finds: controller entries idle
	// for their idle timeout, and datapath-created entries it deleted
	// (Removed). It is called from the sweep's goroutine, without the
	// Backend's lock held, and should return quickly.
	OnIdle func([]translator.IdleEntry)
}

// Backend is the ebpf datapath: the P4 pipeline runs as a BPF program at tc
// ingress of every port, its tables live in BPF maps that the program reads
// through p4tc_runtime.h. It implements translator.Backend,
// translator.Restorer and translator.BatchJournal; it does not implement
// translator.AtomicBackend (see the package documentation).
//
// Everything is pinned under the pin root:
//
//	<root>/links/<ifname>   tcx link of each port (kept across pipelines)
//	<root>/g<N>/prog        the attached program of pipeline generation N
//	<root>/g<N>/maps/...    its table maps (p4tc_t<id>, _masks, _dflt, _stat)
//	<root>/g<N>/p4tcd_side  side records (what maps cannot hold)
//	<root>/g<N>/p4tcd_config the committed ForwardingPipelineConfig
//	<root>/g<N>/journal/<i> the batch journal's segments (journal.go)
type Backend struct {
	opts Options
	root string
	ns   netnsRunner
	log  *slog.Logger

	// mu guards every field below. The Device calls one method at a time,
	// but Counters, the Reads of datapath-created entries and the aging
	// sweep may come from anywhere.
	mu     sync.Mutex
	cur    *pipeline              // the running pipeline; nil before Commit or Restore
	ports  *portMap               // resolved at Commit or Restore
	atts   map[string]*attachment // tc hooks by interface name
	xatts  map[string]*attachment // XDP hooks by interface name
	closed bool
	// sweepStop stops the aging sweep (closed by stopSweeper); sweepDone
	// is closed when it has stopped. nil while no sweep runs.
	sweepStop, sweepDone chan struct{}
	// cpu is the CPU port, opened on first use; nil without one.
	cpu *cpuPort
	// links follows the ports' link states for watch ports (started by
	// the first pipeline with selectors); linkDown is the latest state
	// of each port.
	links    *linkWatch
	linkDown map[uint32]bool
	// emit receives datapath events (SetEventHandler). It is read by the
	// readers without the lock: they must never wait for a Close that is
	// waiting for them.
	emit atomic.Pointer[func(translator.Event)]
}

var (
	_ translator.Backend         = (*Backend)(nil)
	_ translator.Restorer        = (*Backend)(nil)
	_ translator.HitTracker      = (*Backend)(nil)
	_ translator.DatapathCreator = (*Backend)(nil)
	_ translator.EventSource     = (*Backend)(nil)
	_ translator.PacketSender    = (*Backend)(nil)
	_ translator.ExternBackend   = (*Backend)(nil)
	_ translator.BatchJournal    = (*Backend)(nil)
	_ translator.StatsBackend    = (*Backend)(nil)
)

// DefaultPinRoot is where a device's datapath is pinned unless
// Options.PinRoot says otherwise (like iproute2's /sys/fs/bpf/tc/globals
// for `tc ... bpf obj ... pinning`).
func DefaultPinRoot(deviceID uint64) string {
	return filepath.Join("/sys/fs/bpf/p4tcd", strconv.FormatUint(deviceID, 10))
}

// New returns a Backend. It touches nothing in the kernel: Commit loads and
// attaches (`tc filter add dev IFACE ingress bpf da obj ...`), Restore
// adopts a datapath a previous p4tcd left running.
func New(opts Options) (*Backend, error) {
	if opts.PinRoot == "" {
		opts.PinRoot = DefaultPinRoot(opts.DeviceID)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	for p, ifc := range opts.Ports {
		if ifc == "" || strings.ContainsRune(ifc, '/') {
			return nil, fmt.Errorf("new ebpf backend: port %d: bad interface name %q", p, ifc)
		}
	}
	if ifc, dup := opts.Ports[opts.CPUPort]; opts.CPUPort != 0 && dup {
		return nil, fmt.Errorf("new ebpf backend: CPU port %d is also --port %d=%s", opts.CPUPort, opts.CPUPort, ifc)
	}
	return &Backend{
		opts: opts, root: opts.PinRoot, ns: netnsRunner{path: opts.NetNSPath},
		log: opts.Logger.With("backend", "ebpf"), atts: map[string]*attachment{}, xatts: map[string]*attachment{},
	}, nil
}

// prepare plans the tables of c and checks its datapath objects against
// them: the tc object, and the XDP object if there is one (xb nil
// otherwise).
func prepare(c *translator.Config) (plans []*tablePlan, tb, xb *binding, err error) {
	plans, err = plan(c)
	if err != nil {
		return nil, nil, nil, err
	}
	x, err := planExterns(c, plans)
	if err != nil {
		return nil, nil, nil, err
	}
	if tb, err = parseObject(c.Program.TCObject, plans, tierTC); err != nil {
		return nil, nil, nil, err
	}
	if err := tb.bindExterns(x, plans); err != nil {
		return nil, nil, nil, err
	}
	if len(c.Program.XDPObject) > 0 {
		if xb, err = parseObject(c.Program.XDPObject, plans, tierXDP); err != nil {
			return nil, nil, nil, err
		}
		if err := xb.bindExterns(x, plans); err != nil {
			return nil, nil, nil, err
		}
	} else {
		for _, p := range plans {
			if p.settings.Placement == translator.PlaceHW {
				return nil, nil, nil, translator.Errorf(translator.ErrInvalid, "table %s is placed hw, but the device config has no xdp_object: the ebpf datapath's hardware tier is XDP", p.table.Name)
			}
		}
	}
	return plans, tb, xb, nil
}

// Verify checks that c can run: its tables fit the runtime, its objects'
// maps match the P4Info, the kernel verifier accepts its programs (loaded
// with one-entry maps and released, like `bpftool prog loadall` without
// attaching), and every port exists (`ip link show IFACE`). It changes
// nothing.
func (b *Backend) Verify(c *translator.Config) error {
	_, tb, xb, err := prepare(c)
	if err != nil {
		return err
	}
	for _, bind := range []*binding{tb, xb} {
		if bind == nil {
			continue
		}
		spec := bind.spec.Copy()
		for _, ms := range spec.Maps {
			if _, ok := tableMapID(ms.Name); ok && (ms.Type == ebpf.Hash || ms.Type == ebpf.LPMTrie) {
				ms.MaxEntries = 1
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{})
		if err != nil {
			return loadError(err)
		}
		coll.Close()
	}
	if needsCPU(c) {
		if err := b.openCPU(); err != nil {
			return err
		}
	}
	b.mu.Lock()
	ports := b.allPorts()
	b.mu.Unlock()
	return b.ns.do(func(h *netlink.Handle) error {
		_, err := resolvePorts(h, ports)
		return err
	})
}

// Commit loads c's datapath with empty tables and makes it what every port
// runs, then unpins the previous pipeline: like `tc filter replace dev
// IFACE ingress bpf da obj OBJ` on each port.
func (b *Backend) Commit(c *translator.Config) error {
	return b.replace(c, nil)
}

// Reconcile loads c's datapath, fills it with entries (already translated
// to c), and only then swaps it in: forwarding goes on with the old tables
// until the new ones are complete (RECONCILE_AND_COMMIT).
func (b *Backend) Reconcile(c *translator.Config, entries []*translator.Entry) error {
	ops := make([]translator.Op, len(entries))
	for i, e := range entries {
		ops[i] = translator.Op{Kind: translator.OpInsert, Entry: e}
		if e.IsDefault {
			ops[i].Kind = translator.OpSetDefault
		}
	}
	return b.replace(c, ops)
}

func (b *Backend) replace(c *translator.Config, ops []translator.Op) error {
	plans, tb, xb, err := prepare(c)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return translator.Errorf(translator.ErrPrecondition, "ebpf backend is closed")
	}
	if needsCPU(c) {
		if err := b.openCPULocked(); err != nil {
			return err
		}
	}
	var ifindex map[uint32]uint32
	if err := b.ns.do(func(h *netlink.Handle) (err error) {
		ifindex, err = resolvePorts(h, b.allPorts())
		return err
	}); err != nil {
		return err
	}
	gen, err := b.nextGen()
	if err != nil {
		return err
	}
	ports := newPortMap(ifindex)
	p, err := newPipeline(c, plans, tb, xb, ports, b.genDir(gen), gen, b.log)
	if err != nil {
		return err
	}
	if n, err := p.apply(ops); err != nil {
		p.destroy()
		return fmt.Errorf("carry entry %d over: %w", n, err)
	}
	if err := b.startStream(p, ifindex); err != nil {
		p.destroy()
		return err
	}
	b.followLinks(p)
	if err := b.attachAll(p, ifindex); err != nil {
		p.destroy()
		return err
	}
	if err := b.attachXDPAll(p, ifindex); err != nil {
		b.restoreTC(ifindex)
		p.destroy()
		return err
	}
	// The old program stops running here: its maps, and with them the
	// entries its datapath created, go when the pins are removed.
	old := b.cur
	b.cur, b.ports = p, ports
	if old != nil {
		old.close()
	}
	b.removeStale()
	b.startSweeper()
	b.log.Info("pipeline running", "pipeline", c.Program.Name, "generation", gen, "ports", len(ifindex), "xdp", p.xdp != nil)
	return nil
}

// restoreTC puts every port back on the running program after a failed
// switch (or detaches them on a first commit).
func (b *Backend) restoreTC(ifindex map[uint32]uint32) {
	err := b.ns.do(func(h *netlink.Handle) error {
		var all []*attachment
		for _, port := range sortedPorts(b.allPorts()) {
			if a := b.atts[b.allPorts()[port]]; a != nil {
				all = append(all, a)
			}
		}
		b.undoAttach(h, all)
		return nil
	})
	if err != nil {
		b.log.Error("ports not restored", "err", err)
	}
}

// attachAll points every port at p's program. If a port fails, the ports
// already switched go back to the program that ran before, or, on a first
// commit, lose the new one.
func (b *Backend) attachAll(p *pipeline, ifindex map[uint32]uint32) error {
	return b.ns.do(func(h *netlink.Handle) error {
		var switched []*attachment
		for _, port := range sortedPorts(b.allPorts()) {
			name := b.allPorts()[port]
			a := b.atts[name]
			if a != nil && a.ifindex != int(ifindex[port]) {
				// The interface was recreated: its old link is dead.
				if err := detach(h, a, b.linkPin(name)); err != nil {
					b.log.Warn("stale link not removed", "port", name, "err", err)
				}
				a = nil
			}
			if a == nil {
				a = &attachment{ifname: name, ifindex: int(ifindex[port])}
			}
			if err := attach(h, a, p.prog, b.linkPin(name)); err != nil {
				b.undoAttach(h, switched)
				return translator.Errorf(translator.ErrInternal, "port %d: %v", port, err)
			}
			b.atts[name] = a
			switched = append(switched, a)
		}
		return nil
	})
}

// undoAttach puts switched ports back on the running program, or detaches
// them when nothing ran before.
func (b *Backend) undoAttach(h *netlink.Handle, switched []*attachment) {
	for _, s := range switched {
		var err error
		if b.cur != nil {
			err = attach(h, s, b.cur.prog, b.linkPin(s.ifname))
		} else {
			err = detach(h, s, b.linkPin(s.ifname))
			delete(b.atts, s.ifname)
		}
		if err != nil {
			b.log.Error("port left on the new program", "port", s.ifname, "err", err)
		}
	}
}

// Apply performs ops in order on the running pipeline's maps, as `tc
// p4ctrl create|update|delete` does on a P4TC kernel; see
// translator.Backend for what n and err mean. An entry goes to the tiers
// its placement names (sw: tc, hw: XDP, both: each the pipeline has);
// entries the datapath created live in the tc tier.
func (b *Backend) Apply(ops []translator.Op) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		if len(ops) == 0 {
			return 0, nil
		}
		return 0, translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	return b.cur.apply(ops)
}

// Tier names the tiers of the datapath, for TierCounters: the program at
// tc ingress (`tc filter ... ingress bpf`) or at XDP (`ip link set dev
// IFACE xdp ...`).
type Tier = tierKind

const (
	// TierTC is the software tier: the program at tc ingress.
	TierTC = tierTC
	// TierXDP is the XDP tier in front of it.
	TierXDP = tierXDP
)

// Counters are a table's counts in one tier, summed over CPUs (the
// statistics `tc -s` shows for a P4TC table).
type Counters struct {
	// Hits and Misses count lookups that found an entry and that did not.
	Hits, Misses uint64
	// Created counts entries the datapath created (add-on-miss);
	// CreateFailed the creates it refused: pool empty, key present, bad
	// arguments or permissions.
	Created, CreateFailed uint64
}

// Counters reads the counters of a table by P4Info id in the tc tier,
// like `tc -s p4ctrl get` shows them on P4TC.
func (b *Backend) Counters(tableID uint32) (Counters, error) {
	return b.TierCounters(TierTC, tableID)
}

// TierCounters reads the counters of a table in one tier, like `tc -s
// p4ctrl get` for tc and `bpftool map dump pinned .../xdp/maps/
// p4tc_t<id>_stat` for XDP: how many packets hit and missed it there (a
// packet the XDP tier handles never reaches the tc tier's counters).
func (b *Backend) TierCounters(tier Tier, tableID uint32) (Counters, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return Counters{}, translator.Errorf(translator.ErrPrecondition, "ebpf datapath: no pipeline committed")
	}
	t := &b.cur.tier
	if tier == TierXDP {
		if t = b.cur.xdp; t == nil {
			return Counters{}, translator.Errorf(translator.ErrNotFound, "the pipeline has no XDP tier")
		}
	}
	ts := t.byID[tableID]
	if ts == nil {
		return Counters{}, translator.Errorf(translator.ErrNotFound, "table id %#x is not in the pipeline", tableID)
	}
	return ts.counters()
}

// Close releases the backend. Unless KeepForwarding is set, it detaches
// the datapath from every port and removes the pin root, like `tc filter
// del dev IFACE ingress` and `rm -r /sys/fs/bpf/p4tcd/<id>`; with it,
// everything stays for the next p4tcd. A backend that never ran a
// pipeline (no Commit, no successful Restore) leaves the pin root alone.
func (b *Backend) Close() error {
	b.stopSweeper()
	b.stopLinkWatch()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.cpu != nil {
		b.cpu.close(b.ns, !b.opts.KeepForwarding)
		b.cpu = nil
	}
	var errs []error
	if b.opts.KeepForwarding {
		for _, as := range []map[string]*attachment{b.atts, b.xatts} {
			for _, a := range as {
				if a.tcx != nil {
					a.tcx.Close()
				}
			}
		}
		if b.cur != nil {
			b.cur.close()
		}
		return nil
	}
	// Without the program, the entries its datapath created go with its
	// maps; controller entries too (the next p4tcd starts empty).
	err := b.ns.do(func(h *netlink.Handle) error {
		for _, a := range b.xatts {
			if err := detachXDP(a, b.xdpLinkPin(a.ifname)); err != nil {
				errs = append(errs, err)
			}
		}
		for _, a := range b.atts {
			if err := detach(h, a, b.linkPin(a.ifname)); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	errs = append(errs, err)
	if b.cur != nil {
		b.cur.close()
		if err := os.RemoveAll(b.root); err != nil {
			errs = append(errs, fmt.Errorf("remove pin root: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Pin layout.

func (b *Backend) genDir(gen uint64) string { return filepath.Join(b.root, fmt.Sprintf("g%d", gen)) }
func (b *Backend) linkPin(ifname string) string {
	return filepath.Join(b.root, "links", ifname)
}
func (b *Backend) xdpLinkPin(ifname string) string {
	return filepath.Join(b.root, "xdplinks", ifname)
}

// gens lists the pipeline generations pinned under the root, oldest first.
func (b *Backend) gens() ([]uint64, error) {
	ents, err := os.ReadDir(b.root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read pin root: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		if n, err := strconv.ParseUint(strings.TrimPrefix(e.Name(), "g"), 10, 64); err == nil && strings.HasPrefix(e.Name(), "g") {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func (b *Backend) nextGen() (uint64, error) {
	if err := os.MkdirAll(filepath.Join(b.root, "links"), 0o700); err != nil {
		return 0, fmt.Errorf("create pin root: %w", err)
	}
	gs, err := b.gens()
	if err != nil {
		return 0, err
	}
	if len(gs) == 0 {
		return 1, nil
	}
	return gs[len(gs)-1] + 1, nil
}

// removeStale unpins every generation but the running one.
func (b *Backend) removeStale() {
	gs, err := b.gens()
	if err != nil {
		b.log.Warn("stale pipelines not removed", "err", err)
		return
	}
	for _, g := range gs {
		if b.cur != nil && g == b.cur.gen {
			continue
		}
		if err := os.RemoveAll(b.genDir(g)); err != nil {
			b.log.Warn("stale pipeline not removed", "generation", g, "err", err)
		}
	}
}

// TableStats reports, for metrics, each table's controller entries per
// tier, its pool of datapath-created entries and how many entries the
// datapath created (translator.StatsBackend); `tc -s p4ctrl get` shows
// the same on P4TC. A table whose counters cannot be read reports
// Created 0.
func (b *Backend) TableStats() []translator.TableStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil
	}
	out := make([]translator.TableStats, 0, len(b.cur.tables))
	for _, ts := range b.cur.tables {
		st := translator.TableStats{Table: ts.plan.table.Name, SW: ts.ctl}
		if b.cur.xdp != nil {
			if x := b.cur.xdp.byID[ts.plan.table.ID]; x != nil {
				st.HW = x.ctl
			}
		}
		if capacity, used := ts.poolUsage(); capacity > 0 {
			st.PoolSize, st.PoolFree = int(capacity), int(capacity)-min(int(used), int(capacity))
			if c, err := ts.counters(); err == nil {
				st.Created = c.Created
			}
		}
		out = append(out, st)
	}
	return out
}
