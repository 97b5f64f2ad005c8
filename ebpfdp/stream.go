package ebpfdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

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

	// mu guards emit.
	mu   sync.Mutex
	emit func(translator.Event)
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
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	go c.read()
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// read delivers every frame that arrives on the host end as a packet-in.
func (c *cpuPort) read() {
	defer close(c.done)
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			return // closed
		}
		c.mu.Lock()
		emit := c.emit
		c.mu.Unlock()
		if emit != nil && n > 0 {
			emit(translator.Event{Kind: translator.EventPacketIn, Frame: append([]byte(nil), buf[:n]...)})
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
	unix.Shutdown(c.fd, unix.SHUT_RDWR)
	unix.Close(c.fd)
	<-c.done
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

// takeStreamMaps picks the stream maps out of a loaded collection (which
// keeps the rest).
func takeStreamMaps(maps map[string]*ebpf.Map) *streamMaps {
	s := &streamMaps{ports: maps[portsMapName], portIfindex: maps[portIfindexName], cpu: maps[cpuMapName], digests: maps[digestRingName]}
	for _, n := range []string{portsMapName, portIfindexName, cpuMapName, digestRingName} {
		delete(maps, n)
	}
	return s
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
