// Command p4tcd is a P4Runtime server that turns a Linux host into a
// P4-programmable switch backed by Linux TC.
//
//	p4tcd --grpc-addr 127.0.0.1:9559 --device-id 1 --datapath auto
//
// See the README for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/p4tcd/p4tcd/ebpfdp"
	"github.com/p4tcd/p4tcd/internal/gcfloor"
	"github.com/p4tcd/p4tcd/server"
	"github.com/p4tcd/p4tcd/tcbackend"
	"github.com/p4tcd/p4tcd/translator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "pack" {
		err = runPack(os.Args[2:], os.Stdout, os.Stderr)
	} else {
		err = run(ctx, os.Args[1:], os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "p4tcd:", err)
		os.Exit(1)
	}
}

// config is the daemon's command line.
type config struct {
	grpcAddr           string
	deviceID           uint64
	datapath           string
	p4tcABI            string
	ports              portMap
	logLevel           slog.Level
	deviceIDZero       bool
	missingElectionID0 bool
	keepForwarding     bool
	portNetNS          string
	pinRoot            string
	tls                server.TLSFiles
	metricsAddr        string
	xdpMode            ebpfdp.XDPMode
	cpuPort            uint32
	// gcPercent is --gc-percent; 0 leaves Go's setting ($GOGC, else 100).
	gcPercent int
	// gcMinHeap is --gc-min-heap in bytes; 0: no floor.
	gcMinHeap uint64
}

// defaultCPUPort is P4Runtime's SDN_PORT_CPU (§16.2 "Translation of Port
// Numbers").
const defaultCPUPort = 0xfffffffd

// portMap holds --port N=IFACE flags: P4 port number to interface name.
type portMap map[uint32]string

func (p portMap) String() string {
	var parts []string
	for n, ifc := range p {
		parts = append(parts, fmt.Sprintf("%d=%s", n, ifc))
	}
	return strings.Join(parts, ",")
}

func (p portMap) Set(s string) error {
	num, ifc, ok := strings.Cut(s, "=")
	if !ok || ifc == "" {
		return fmt.Errorf("want N=IFACE, got %q", s)
	}
	n, err := strconv.ParseUint(num, 10, 32)
	if err != nil || n == 0 {
		return fmt.Errorf("port number %q: must be a positive 32-bit number", num)
	}
	if old, dup := p[uint32(n)]; dup {
		return fmt.Errorf("port %d given twice (%s and %s)", n, old, ifc)
	}
	p[uint32(n)] = ifc
	return nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{ports: portMap{}, cpuPort: defaultCPUPort}
	fs := flag.NewFlagSet("p4tcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", "127.0.0.1:9559", "address the P4Runtime gRPC service listens on")
	fs.Uint64Var(&cfg.deviceID, "device-id", 1, "P4Runtime device id of this switch (non-zero)")
	fs.StringVar(&cfg.datapath, "datapath", "auto", "datapath: auto (p4tc where the kernel has P4TC, else ebpf), p4tc (P4TC kernel module), ebpf (BPF maps on a stock kernel), none (control plane only)")
	fs.StringVar(&cfg.p4tcABI, "p4tc-abi", "auto", "P4TC kernel ABI: auto (probe), series1, lk13 or v17")
	fs.Var(cfg.ports, "port", "map P4 port N to interface IFACE, as N=IFACE (repeatable)")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.BoolVar(&cfg.deviceIDZero, "accept-device-id-zero", true, "also answer to device id 0 (BMv2, tutorials and PTF tests use it)")
	fs.BoolVar(&cfg.missingElectionID0, "missing-election-id-as-zero", true, "treat a missing election id as (0,0) while no primary exists (PI behaviour; PTF tests rely on it)")
	fs.BoolVar(&cfg.keepForwarding, "keep-forwarding", false, "on exit, leave the datapath attached so forwarding continues")
	fs.Func("cpu-port", "P4 port number of the CPU port (packet-in/out), a veth pair p4tcd creates when the P4Info has controller headers; 0 for none (default 0xfffffffd, P4Runtime's SDN_PORT_CPU)", func(s string) error {
		n, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			return fmt.Errorf("want a port number, got %q", s)
		}
		cfg.cpuPort = uint32(n)
		return nil
	})
	fs.StringVar(&cfg.portNetNS, "port-netns", "", "network namespace of the --port interfaces: a name from `ip netns` or a path (default: p4tcd's own)")
	fs.StringVar(&cfg.pinRoot, "bpffs", "", "bpffs directory for the eBPF datapath's pins (default /sys/fs/bpf/p4tcd/<device-id>)")
	fs.StringVar(&cfg.tls.Cert, "tls-cert", "", "PEM certificate chain for TLS on the gRPC listener (needs --tls-key)")
	fs.StringVar(&cfg.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.tls.CA, "tls-ca", "", "PEM CA certificates: clients must present a certificate they signed (mutual TLS; needs --tls-cert)")
	fs.StringVar(&cfg.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://ADDR/metrics; off when empty; a port alone (9100 or :9100) means loopback")
	fs.Func("xdp-mode", "how the eBPF datapath's XDP tier attaches when the device config has an XDP object: auto (native where the driver supports XDP, else generic), native or generic", func(s string) (err error) {
		cfg.xdpMode, err = ebpfdp.ParseXDPMode(s)
		return err
	})
	fs.Func("gc-percent", "Go GC target: heap growth over live data, in percent, before a collection (default: $GOGC, else 100); higher trades memory for write throughput (README, Performance)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a positive percentage, got %q", s)
		}
		cfg.gcPercent = n
		return nil
	})
	cfg.gcMinHeap = gcfloor.DefaultMin
	fs.Func("gc-min-heap", fmt.Sprintf("heap size below which the Go GC does not collect (bytes, or with a KiB/MiB/GiB suffix; 0: none); spares a small heap a collection every few Writes (README, Performance) (default %dMiB)", gcfloor.DefaultMin>>20), func(s string) (err error) {
		cfg.gcMinHeap, err = parseSize(s)
		return err
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.deviceID == 0 {
		return nil, errors.New("--device-id must be non-zero (P4Runtime v1.5 §5.2)")
	}
	switch t := cfg.tls; {
	case t.Cert != "" && t.Key == "":
		return nil, errors.New("--tls-cert needs --tls-key")
	case t.Key != "" && t.Cert == "":
		return nil, errors.New("--tls-key needs --tls-cert")
	case t.CA != "" && t.Cert == "":
		return nil, errors.New("--tls-ca needs --tls-cert and --tls-key: mutual TLS is TLS first")
	}
	addr, err := metricsListenAddr(cfg.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	cfg.metricsAddr = addr
	return cfg, nil
}

func newBackend(cfg *config, log *slog.Logger) (translator.Backend, error) {
	switch cfg.datapath {
	case "none":
		if len(cfg.ports) > 0 {
			return nil, errors.New("--port needs a datapath: --datapath none forwards nothing")
		}
		return translator.NewNoneBackend(), nil
	case "p4tc":
		opts, err := p4tcOptions(cfg, log)
		if err != nil {
			return nil, err
		}
		b, err := tcbackend.New(opts)
		if errors.Is(err, tcbackend.ErrNotSupported) {
			return nil, fmt.Errorf("--datapath p4tc: this kernel has no P4TC (use --datapath auto or ebpf): %w", err)
		}
		if err != nil {
			return nil, fmt.Errorf("--datapath p4tc: %w", err)
		}
		log.Info("P4TC datapath", "abi", b.ABI())
		return b, nil
	case "auto":
		opts, err := p4tcOptions(cfg, log)
		if err != nil {
			return nil, err
		}
		err = tcbackend.Probe(opts)
		if errors.Is(err, tcbackend.ErrNotSupported) {
			return autoFallback(cfg, log, err)
		}
		if err != nil {
			return nil, fmt.Errorf("--datapath auto: %w", err)
		}
		b, err := tcbackend.New(opts)
		if err != nil {
			return nil, fmt.Errorf("--datapath auto: %w", err)
		}
		log.Info("datapath auto: the kernel has P4TC", "abi", b.ABI())
		return b, nil
	case "ebpf":
		return newEBPF(cfg, log)
	}
	return nil, fmt.Errorf("--datapath %q: want auto, p4tc, ebpf or none", cfg.datapath)
}

// p4tcOptions are the P4TC backend's options from the command line.
func p4tcOptions(cfg *config, log *slog.Logger) (tcbackend.Options, error) {
	abi, err := tcbackend.ParseABI(cfg.p4tcABI)
	if err != nil {
		return tcbackend.Options{}, fmt.Errorf("--p4tc-abi: %w", err)
	}
	o := tcbackend.Options{ABI: abi, Logger: log}
	if len(cfg.ports) > 0 {
		o.Ports = cfg.ports
	}
	return o, nil
}

// autoFallback is the datapath --datapath auto takes when the kernel has no
// P4TC: the eBPF datapath, which needs nothing beyond a stock kernel.
func autoFallback(cfg *config, log *slog.Logger, why error) (translator.Backend, error) {
	log.Info("datapath auto: no P4TC in this kernel; using the eBPF datapath", "probe", why)
	return newEBPF(cfg, log)
}

// netnsPath turns an `ip netns` name into its path; paths pass unchanged.
func netnsPath(ns string) string {
	if ns == "" || strings.ContainsRune(ns, '/') {
		return ns
	}
	return "/var/run/netns/" + ns
}

// newEBPF builds the stock-kernel eBPF datapath.
func newEBPF(cfg *config, log *slog.Logger) (translator.Backend, error) {
	b, err := ebpfdp.New(ebpfdp.Options{
		DeviceID: cfg.deviceID, Ports: cfg.ports, KeepForwarding: cfg.keepForwarding, Logger: log,
		NetNSPath: netnsPath(cfg.portNetNS), PinRoot: cfg.pinRoot, XDPMode: cfg.xdpMode, CPUPort: cfg.cpuPort,
		// IdleTimeoutNotifications go out on the stream; the log keeps a
		// trace.
		OnIdle: func(evs []translator.IdleEntry) {
			for _, ev := range evs {
				log.Debug("idle entry", "table", ev.Entry.Table.Name, "idle", ev.Idle, "removed", ev.Removed)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("--datapath ebpf: %w", err)
	}
	return b, nil
}

// parseSize parses a byte count: digits, then optionally B, KiB, MiB or
// GiB (K, M and G mean the same).
func parseSize(s string) (uint64, error) {
	num := strings.TrimRight(s, "BKMGikb")
	mult := map[string]uint64{"": 1, "B": 1, "K": 1 << 10, "KiB": 1 << 10, "M": 1 << 20, "MiB": 1 << 20, "G": 1 << 30, "GiB": 1 << 30}[s[len(num):]]
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || mult == 0 || n > math.MaxUint64/mult {
		return 0, fmt.Errorf("want a size such as 64MiB, got %q", s)
	}
	return n * mult, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if cfg.gcPercent > 0 {
		// The write path is bound by the garbage decoding and staging
		// leave; a higher target means fewer collections per Write.
		debug.SetGCPercent(cfg.gcPercent)
	}
	defer gcfloor.Start(cfg.gcMinHeap, gcfloor.CurrentPercent()).Stop()
	backend, err := newBackend(cfg, log)
	if err != nil {
		return err
	}
	defer backend.Close()

	gopts := server.GRPCOptions()
	if cfg.tls.Cert != "" {
		tc, err := cfg.tls.Config()
		if err != nil {
			return err
		}
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(tc)))
	}
	lis, err := net.Listen("tcp", cfg.grpcAddr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	switch {
	case cfg.tls.CA != "":
		log.Info("gRPC with mutual TLS: clients need a certificate the CA signed", "ca", cfg.tls.CA)
	case cfg.tls.Cert != "":
		log.Info("gRPC with TLS; clients are not authenticated (add --tls-ca for mutual TLS)")
	case !isLoopback(lis.Addr()):
		log.Warn("gRPC listens beyond loopback without TLS: anyone who reaches the port can program the switch (use --tls-cert, --tls-key and --tls-ca)", "addr", lis.Addr().String())
	}
	dev := translator.NewDevice(backend)
	// A datapath a previous p4tcd left running (--keep-forwarding) is
	// adopted before any client connects.
	if restored, err := dev.Restore(); err != nil {
		return fmt.Errorf("restore datapath: %w", err)
	} else if restored {
		log.Info("datapath restored", "tables", len(dev.Config().TableOrder))
	}
	sopts := []server.Option{
		server.WithLogger(log),
		server.WithDeviceIDZero(cfg.deviceIDZero),
		server.WithMissingElectionIDAsZero(cfg.missingElectionID0),
	}
	if cfg.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
		stopMetrics, err := serveMetrics(cfg.metricsAddr, reg, log)
		if err != nil {
			lis.Close()
			return err
		}
		defer stopMetrics()
		sopts = append(sopts, server.WithMetrics(reg))
	}
	srv := server.New(cfg.deviceID, dev, sopts...)
	g := grpc.NewServer(gopts...)
	srv.Register(g)

	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	log.Info("p4tcd serving", "addr", lis.Addr().String(), "device_id", cfg.deviceID, "datapath", cfg.datapath)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// Unary RPCs in flight finish; StreamChannels never end by themselves,
	// so after a grace period the rest are cut.
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		g.Stop()
	}
	return nil
}

// isLoopback reports whether a listener's address is a loopback address
// (an unspecified address such as 0.0.0.0 listens on every interface).
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// metricsListenAddr completes a --metrics-addr: a port alone ("9100" or
// ":9100") listens on loopback only; to listen beyond it, name the address
// ("0.0.0.0:9100").
func metricsListenAddr(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		s = ":" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// serveMetrics serves reg at http://addr/metrics until the returned stop
// is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics served", "url", "http://"+lis.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
