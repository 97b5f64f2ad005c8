package server

import (
	"context"
	"log/slog"
	"math"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/p4tcd/p4tcd/translator"
)

// APIVersion is the P4Runtime version p4tcd implements.
const APIVersion = "1.5.0"

// MaxMessageSize is the largest request p4tcd accepts: big enough for a
// pipeline with its BPF objects and for million-entry Write batches (PI and
// ONOS use 256 MiB; P4Runtime §"gRPC Server Maximum Receive Message Size").
const MaxMessageSize = 256 << 20

// GRPCOptions are the grpc.ServerOptions a P4Runtime server needs. They
// include the server's codec, which decodes Write requests into memory
// that Server.Write gives back: an interceptor added to them must call the
// handler of every Write it lets decode (or refuse it before decoding), or
// that memory stays taken (see held in codec.go).
func GRPCOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.ForceServerCodecV2(newCodec()),
	}
}

// Server implements p4.v1.P4Runtime for one device.
type Server struct {
	p4v1.UnimplementedP4RuntimeServer

	deviceID uint64
	dev      *translator.Device
	arb      *arbiter
	digests  *digestEngine
	m        *metrics // nil without WithMetrics
	opts     options
}

type options struct {
	log                 *slog.Logger
	acceptDeviceIDZero  bool
	missingElectionZero bool
	maxControllers      int
	readChunkEntities   int
	readChunkBytes      int
	streamQueue         int
	digestConfig        func(uint32) *p4v1.DigestEntry_Config
	registry            prometheus.Registerer
}

// Option configures a Server.
type Option func(*options)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithDeviceIDZero makes the server also answer to device id 0, which BMv2,
// p4lang/tutorials and PTF tests use by default although P4Runtime v1.5
// requires a non-zero id.
func WithDeviceIDZero(ok bool) Option { return func(o *options) { o.acceptDeviceIDZero = ok } }

// WithMissingElectionIDAsZero treats a missing election id as (0,0) while
// no primary exists, as PI does: PTF's base test arbitrates and writes
// without one.
func WithMissingElectionIDAsZero(ok bool) Option {
	return func(o *options) { o.missingElectionZero = ok }
}

// WithMaxControllers bounds the live streams per role (default 16).
func WithMaxControllers(n int) Option { return func(o *options) { o.maxControllers = n } }

// WithReadChunk bounds each ReadResponse (default 2500 entities or 1 MiB,
// whichever comes first).
func WithReadChunk(entities, bytes int) Option {
	return func(o *options) { o.readChunkEntities, o.readChunkBytes = entities, bytes }
}

// WithMetrics registers the server's Prometheus metrics on reg (default:
// none are kept). Each Server needs a registry of its own: New panics if
// reg already holds p4tcd's metrics. The metric names and which of them
// are fed are listed in the README ("Operating p4tcd").
func WithMetrics(reg prometheus.Registerer) Option { return func(o *options) { o.registry = reg } }

// New returns a Server for device deviceID backed by dev.
func New(deviceID uint64, dev *translator.Device, opts ...Option) *Server {
	o := options{
		log: slog.Default(), maxControllers: 16,
		readChunkEntities: 2500, readChunkBytes: 1 << 20, streamQueue: 1024,
	}
	for _, f := range opts {
		f(&o)
	}
	m := newMetrics(o.registry, dev)
	s := &Server{deviceID: deviceID, dev: dev, arb: newArbiter(deviceID, o.maxControllers, o.log, m), m: m, opts: o}
	s.digests = newDigestEngine(s.digestConfig, s.sendDigestList)
	dev.Subscribe(s.notify)
	return s
}

// digestConfig is the DigestEntry config the controller set for a digest,
// nil while it is not enabled.
func (s *Server) digestConfig(id uint32) *p4v1.DigestEntry_Config {
	if s.opts.digestConfig != nil {
		return s.opts.digestConfig(id)
	}
	c, ok := s.dev.Digest(id)
	if !ok {
		return nil
	}
	return &p4v1.DigestEntry_Config{MaxTimeoutNs: c.MaxTimeoutNs, MaxListSize: c.MaxListSize, AckTimeoutNs: c.AckTimeoutNs}
}

// Close stops the server's background work (digest timers). The gRPC
// server is the caller's to stop.
func (s *Server) Close() { s.digests.close() }

// Register registers the service on g.
func (s *Server) Register(g *grpc.Server) { p4v1.RegisterP4RuntimeServer(g, s) }

// Device returns the device the server serves.
func (s *Server) Device() *translator.Device { return s.dev }

// checkDevice answers NOT_FOUND for a device id p4tcd does not serve.
func (s *Server) checkDevice(id uint64) error {
	if id == s.deviceID || (id == 0 && s.opts.acceptDeviceIDZero) {
		return nil
	}
	return status.Errorf(codes.NotFound, "unknown device id %d (this is device %d)", id, s.deviceID)
}

// Capabilities answers the P4Runtime version (§16).
func (s *Server) Capabilities(ctx context.Context, req *p4v1.CapabilitiesRequest) (*p4v1.CapabilitiesResponse, error) {
	start := time.Now()
	var err error
	if id := req.GetDeviceId(); id != 0 {
		err = s.checkDevice(id)
	}
	s.logRPC(ctx, "Capabilities", req.GetDeviceId(), "", "", 0, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return &p4v1.CapabilitiesResponse{P4RuntimeApiVersion: APIVersion}, nil
}

// SetForwardingPipelineConfig installs a pipeline (§15).
func (s *Server) SetForwardingPipelineConfig(ctx context.Context, req *p4v1.SetForwardingPipelineConfigRequest) (*p4v1.SetForwardingPipelineConfigResponse, error) {
	start := time.Now()
	err := s.setPipeline(req)
	s.logRPC(ctx, "SetForwardingPipelineConfig", req.GetDeviceId(), req.GetRole(), "", 0, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	s.m.pipelineChanged(req.GetAction())
	return &p4v1.SetForwardingPipelineConfigResponse{}, nil
}

func (s *Server) setPipeline(req *p4v1.SetForwardingPipelineConfigRequest) error {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return err
	}
	_, rc, err := s.arb.authorize(req.GetRole(), req.GetElectionId(), s.opts.missingElectionZero)
	if err != nil {
		return err
	}
	if rc != nil && !rc.GetCanPushPipeline() {
		return status.Errorf(codes.PermissionDenied, "role %q may not push pipelines (its role config has can_push_pipeline false)", req.GetRole())
	}
	if err := s.dev.SetPipeline(req.GetAction(), req.GetConfig()); err != nil {
		s.opts.log.Warn("set pipeline failed", "action", req.GetAction(), "err", err)
		return toStatus(err)
	}
	s.opts.log.Info("pipeline set", "action", req.GetAction(), "cookie", req.GetConfig().GetCookie().GetCookie())
	return nil
}

// GetForwardingPipelineConfig returns the pipeline as it was set (§15.2).
func (s *Server) GetForwardingPipelineConfig(ctx context.Context, req *p4v1.GetForwardingPipelineConfigRequest) (*p4v1.GetForwardingPipelineConfigResponse, error) {
	start := time.Now()
	resp, err := s.getPipeline(req)
	s.logRPC(ctx, "GetForwardingPipelineConfig", req.GetDeviceId(), "", "", 0, err, time.Since(start))
	return resp, err
}

func (s *Server) getPipeline(req *p4v1.GetForwardingPipelineConfigRequest) (*p4v1.GetForwardingPipelineConfigResponse, error) {
	if err := s.checkDevice(req.GetDeviceId()); err != nil {
		return nil, err
	}
	c := s.dev.Config()
	if c == nil {
		return &p4v1.GetForwardingPipelineConfigResponse{}, nil
	}
	raw := c.Raw
	out := &p4v1.ForwardingPipelineConfig{Cookie: raw.GetCookie()}
	switch req.GetResponseType() {
	case p4v1.GetForwardingPipelineConfigRequest_ALL:
		out.P4Info, out.P4DeviceConfig = raw.GetP4Info(), raw.GetP4DeviceConfig()
	case p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY:
	case p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE:
		out.P4Info = raw.GetP4Info()
	case p4v1.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE:
		out.P4DeviceConfig = raw.GetP4DeviceConfig()
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown response_type %d", req.GetResponseType())
	}
	return &p4v1.GetForwardingPipelineConfigResponse{Config: out}, nil
}

// withDigestConfig sets where digest configs come from (tests; the Device's
// DigestEntry store otherwise).
func withDigestConfig(f func(uint32) *p4v1.DigestEntry_Config) Option {
	return func(o *options) { o.digestConfig = f }
}
