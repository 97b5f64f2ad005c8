package ebpfdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/translator"
)

// The stream maps of p4tc_stream.h: a datapath that does packet I/O or
// digests declares them; p4tcd fills and reads them when they are there.
const (
	portsMapName     = "p4tc_ports"
	portIfindexName  = "p4tc_port_ifindex"
	cpuMapName       = "p4tc_cpu"
	digestRingName   = "p4tc_digests"
	digestHeaderSize = 8 // {u32 digest id; u32 size}
)

// cpuPort is p4tcd's CPU port: a veth pair in the ports' namespace. The
// datapath end (p4cpu<N>, N the device id) is a port of the pipeline like
// any --port; p4tcd reads packet-ins from, and writes packet-outs into, the
// host end (p4cpu<N>h) with an AF_PACKET socket. Like
// `ip link add p4cpu1 type veth peer name p4cpu1h`.
type cpuPort struct {
	port     uint32
	dp, host string
	fd       int
	log      *slog.Logger
	// emit receives the packet-ins (set before the reader starts).
	emit func(translator.Event)
	// stop tells the reader to return; done is closed when it has.
	stop atomic.Bool
	done chan struct{}
}

// cpuPortNames are the veth names of a device's CPU port.
func cpuPortNames(deviceID uint64) (dp, host string) {
	dp = fmt.Sprintf("p4cpu%d", deviceID)
	return dp, dp + "h"
}

// openCPUPort creates the CPU veth pair in the namespace of r (or adopts
// the one a previous p4tcd left), brings it up quiet (no IPv6, no ARP: only
// the datapath speaks on it) and opens the AF_PACKET socket on the host end.
func openCPUPort(r netnsRunner, port uint32, deviceID uint64, log *slog.Logger) (*cpuPort, error) {
	c := &cpuPort{port: port, fd: -1, log: log, done: make(chan struct{})}
	c.dp, c.host = cpuPortNames(deviceID)
	err := r.do(func(h *netlink.Handle) error {
		if _, err := h.LinkByName(c.dp); err != nil {
			veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: c.dp, MTU: 9500}, PeerName: c.host}
			if err := h.LinkAdd(veth); err != nil {
				return fmt.Errorf("create CPU port veth %s: %w", c.dp, err)
			}
		}
		for _, name := range []string{c.dp, c.host} {
			// Only packet-ins and packet-outs cross the CPU port.
			_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", name, "disable_ipv6"), []byte("1"), 0o644)
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if err := h.LinkSetARPOff(l); err != nil {
				return err
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
		}
		l, err := h.LinkByName(c.host)
		if err != nil {
			return err
		}
		// The socket belongs to this namespace for its whole life.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("open CPU port socket: %w", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Attrs().Index}); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind CPU port socket: %w", err)
		}
		// Frames p4tcd itself sends out are not packet-ins.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("CPU port socket: %w", err)
		}
		// Room for bursts of packet-ins (SO_RCVBUFFORCE: p4tcd runs as
		// root; the sysctl cap would make SO_RCVBUF a few hundred KB).
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		}
		// Closing a socket does not wake a thread blocked reading it:
		// the reader wakes up regularly to see whether it should stop.
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(fd)
			return fmt.Errorf("CPU port socket: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// start starts delivering packet-ins to emit.
func (c *cpuPort) start(emit func(translator.Event)) {
	c.emit = emit
	go c.read()
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read delivers every frame that arrives on the host end as a packet-in.
func (c *cpuPort) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return // closed
		}
		if c.emit != nil && n > 0 {
			c.emit(translator.Event{Kind: translator.EventPacketIn, Frame: append([]byte(nil), buf[:n]...)})
		}
	}
}

// send writes a packet-out frame into the CPU port.
func (c *cpuPort) send(frame []byte) error {
	if _, err := unix.Write(c.fd, frame); err != nil {
		return fmt.Errorf("write CPU port: %w", err)
	}
	return nil
}

// close stops the reader and closes the socket; remove also deletes the
// veth pair (`ip link del p4cpuN`).
func (c *cpuPort) close(r netnsRunner, remove bool) {
	c.stop.Store(true)
	if c.emit != nil {
		<-c.done // the reader started: wait for it to see stop
	}
	unix.Close(c.fd)
	if remove {
		err := r.do(func(h *netlink.Handle) error {
			l, err := h.LinkByName(c.dp)
			if err != nil {
				return nil
			}
			return h.LinkDel(l)
		})
		if err != nil {
			c.log.Warn("CPU port not removed", "veth", c.dp, "err", err)
		}
	}
}

// streamMaps are a pipeline's stream maps, when its object has them.
type streamMaps struct {
	ports, portIfindex, cpu, digests *ebpf.Map
	// reader reads digests; nil without a digest ring.
	reader *ringbuf.Reader
	done   chan struct{}
}

// detachStreamMaps takes the stream maps out of a loaded collection; nil
// when the object has none.
func detachStreamMaps(coll *ebpf.Collection) *streamMaps {
	s := &streamMaps{ports: coll.DetachMap(portsMapName), portIfindex: coll.DetachMap(portIfindexName),
		cpu: coll.DetachMap(cpuMapName), digests: coll.DetachMap(digestRingName)}
	if len(s.maps()) == 0 {
		return nil
	}
	return s
}

// openStreamMaps opens the stream maps pinned in dir; nil when there are
// none.
func openStreamMaps(dir string) *streamMaps {
	open := func(name string) *ebpf.Map {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			return nil
		}
		return m
	}
	s := &streamMaps{ports: open(portsMapName), portIfindex: open(portIfindexName), cpu: open(cpuMapName), digests: open(digestRingName)}
	if len(s.maps()) == 0 {
		return nil
	}
	return s
}

// needsCPU reports whether a pipeline does packet I/O: its P4Info has a
// packet_in or packet_out controller header (P4Runtime §16.1's
// convention), so the CPU port is one of its ports.
func needsCPU(c *translator.Config) bool {
	return c.PacketIn != nil || c.PacketOut != nil
}

// allPorts is the P4 port → interface map of the switch: the --ports, and
// the CPU port's datapath end once it is open. The Backend's lock guards
// it.
func (b *Backend) allPorts() map[uint32]string {
	if b.cpu == nil {
		return b.opts.Ports
	}
	out := make(map[uint32]string, len(b.opts.Ports)+1)
	for n, ifc := range b.opts.Ports {
		out[n] = ifc
	}
	out[b.cpu.port] = b.cpu.dp
	return out
}

// openCPU opens the CPU port, if the Backend has one and it is not open.
func (b *Backend) openCPU() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openCPULocked()
}

func (b *Backend) openCPULocked() error {
	if b.opts.CPUPort == 0 || b.cpu != nil {
		return nil
	}
	c, err := openCPUPort(b.ns, b.opts.CPUPort, b.opts.DeviceID, b.log)
	if err != nil {
		return translator.Errorf(translator.ErrInternal, "open the CPU port: %v", err)
	}
	c.start(b.emitEvent)
	b.cpu = c
	return nil
}

// startStream fills a pipeline's port maps and starts reading its digests.
func (b *Backend) startStream(p *pipeline, ifindex map[uint32]uint32) error {
	st := p.tier.stream
	if st == nil {
		return nil
	}
	if err := st.fill(ifindex, b.opts.CPUPort); err != nil {
		return err
	}
	return st.startDigests(b.emitEvent, b.log)
}

// emitEvent hands an event to the handler SetEventHandler installed.
func (b *Backend) emitEvent(ev translator.Event) {
	if fn := b.emit.Load(); fn != nil {
		(*fn)(ev)
	}
}

// SetEventHandler installs the receiver of packet-ins, digests and idle
// entries (translator.EventSource).
func (b *Backend) SetEventHandler(fn func(translator.Event)) {
	b.emit.Store(&fn)
}

// SendPacket injects a packet-out frame (packet_out header, then the
// packet) into the CPU port (translator.PacketSender).
func (b *Backend) SendPacket(frame []byte) error {
	if err := b.openCPU(); err != nil {
		return err
	}
	b.mu.Lock()
	cpu := b.cpu
	b.mu.Unlock()
	if cpu == nil {
		return translator.Errorf(translator.ErrUnsupported, "packet-out: p4tcd has no CPU port (--cpu-port)")
	}
	return cpu.send(frame)
}

// fill writes the port numbers and the CPU port into the maps: ifindex →
// port, port → ifindex, and {CPU ifindex, CPU port}.
func (s *streamMaps) fill(ifindex map[uint32]uint32, cpuPort uint32) error {
	for port, idx := range ifindex {
		if s.ports != nil {
			if err := s.ports.Put(idx, port); err != nil {
				return fmt.Errorf("write %s: %w", portsMapName, err)
			}
		}
		if s.portIfindex != nil {
			if err := s.portIfindex.Put(port, idx); err != nil {
				return fmt.Errorf("write %s: %w", portIfindexName, err)
			}
		}
	}
	if s.cpu != nil && cpuPort != 0 {
		v := make([]byte, 8)
		binary.NativeEndian.PutUint32(v[0:], ifindex[cpuPort])
		binary.NativeEndian.PutUint32(v[4:], cpuPort)
		if err := s.cpu.Put(uint32(0), v); err != nil {
			return fmt.Errorf("write %s: %w", cpuMapName, err)
		}
	}
	return nil
}

// startDigests reads the digest ring and hands each record to emit.
func (s *streamMaps) startDigests(emit func(translator.Event), log *slog.Logger) error {
	if s.digests == nil {
		return nil
	}
	rd, err := ringbuf.NewReader(s.digests)
	if err != nil {
		return fmt.Errorf("read %s: %w", digestRingName, err)
	}
	s.reader, s.done = rd, make(chan struct{})
	go func() {
		defer close(s.done)
		var rec ringbuf.Record
		for {
			if err := rd.ReadInto(&rec); err != nil {
				if errors.Is(err, ringbuf.ErrClosed) {
					return
				}
				log.Warn("digest ring", "err", err)
				continue
			}
			raw := rec.RawSample
			if len(raw) < digestHeaderSize {
				continue
			}
			id := binary.NativeEndian.Uint32(raw[0:])
			size := int(binary.NativeEndian.Uint32(raw[4:]))
			if size > len(raw)-digestHeaderSize {
				continue
			}
			emit(translator.Event{Kind: translator.EventDigest, DigestID: id, Data: append([]byte(nil), raw[digestHeaderSize:digestHeaderSize+size]...)})
		}
	}()
	return nil
}

// close stops the digest reader and closes the maps.
func (s *streamMaps) close() {
	if s.reader != nil {
		s.reader.Close()
		<-s.done
	}
	for _, m := range []*ebpf.Map{s.ports, s.portIfindex, s.cpu, s.digests} {
		if m != nil {
			m.Close()
		}
	}
}

// maps lists the stream maps by name, for pinning.
func (s *streamMaps) maps() map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	for n, m := range map[string]*ebpf.Map{portsMapName: s.ports, portIfindexName: s.portIfindex, cpuMapName: s.cpu, digestRingName: s.digests} {
		if m != nil {
			out[n] = m
		}
	}
	return out
}
