package server

import (
	"context"
	"log/slog"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/p4tcd/p4tcd/translator"
)

// metrics are the server's Prometheus collectors, registered on the
// registry given with WithMetrics. A nil *metrics records nothing, so
// every method is safe to call without a registry. The collectors are
// safe for concurrent use; metrics has no other state.
//
// It counts RPCs and their latencies, updates by entity and code, streams,
// arbitration changes and failover time, pipeline changes, PacketOuts,
// PacketIns (sent and dropped) and digest lists; at scrape time it reads
// the entries per table from the Device and, from a backend that is a
// translator.StatsBackend (the eBPF datapath), entries per tier, free pool
// slots and datapath-created entries.
type metrics struct {
	writes        *prometheus.CounterVec // code
	updates       *prometheus.CounterVec // entity, code
	reads         *prometheus.CounterVec // code
	readEntities  prometheus.Counter
	writeSeconds  prometheus.Histogram
	readSeconds   prometheus.Histogram
	arbitration   *prometheus.CounterVec // event
	failover      prometheus.Histogram
	streams       prometheus.Gauge
	pipelines     *prometheus.CounterVec // action
	packetOuts    *prometheus.CounterVec // result
	packetIns     prometheus.Counter     // hook
	packetInDrops prometheus.Counter     // hook
	digestLists   prometheus.Counter     // hook

	// Children of the common case, resolved once: a Write or Read that
	// succeeds, and OK table-entry updates.
	writeOK, readOK prometheus.Counter
	tableUpdateOK   prometheus.Counter
}

// Arbitration events counted by p4tcd_arbitration_changes_total.
const (
	eventElected = "primary_elected"
	eventLost    = "primary_lost"
)

// latencyBuckets span 100 µs to 6.5 s.
var latencyBuckets = prometheus.ExponentialBuckets(100e-6, 4, 9)

func newMetrics(reg prometheus.Registerer, dev *translator.Device) *metrics {
	if reg == nil {
		return nil
	}
	f := promauto.With(reg)
	m := &metrics{
		writes: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_write_requests_total",
			Help: "Write RPCs by gRPC code (Unknown: some update failed)."}, []string{"code"}),
		updates: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_write_updates_total",
			Help: "Updates of Write RPCs that reached the device, by entity kind and per-update gRPC code."}, []string{"entity", "code"}),
		reads: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_read_requests_total",
			Help: "Read RPCs by gRPC code."}, []string{"code"}),
		readEntities: f.NewCounter(prometheus.CounterOpts{Name: "p4tcd_read_entities_total",
			Help: "Entities returned by Read RPCs."}),
		writeSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "p4tcd_write_duration_seconds",
			Help: "Time to serve a Write RPC.", Buckets: latencyBuckets}),
		readSeconds: f.NewHistogram(prometheus.HistogramOpts{Name: "p4tcd_read_duration_seconds",
			Help: "Time to serve a Read RPC, streaming included.", Buckets: latencyBuckets}),
		arbitration: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_arbitration_changes_total",
			Help: "Primary changes over all roles: primary_elected (a controller becomes primary), primary_lost (the primary left or downgraded)."}, []string{"event"}),
		failover: f.NewHistogram(prometheus.HistogramOpts{Name: "p4tcd_failover_seconds",
			Help: "Time a role went without a primary before a new one was elected.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
		streams: f.NewGauge(prometheus.GaugeOpts{Name: "p4tcd_streams_open",
			Help: "Open StreamChannel RPCs."}),
		pipelines: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_pipeline_config_changes_total",
			Help: "SetForwardingPipelineConfig calls that changed the pipeline config, by action."}, []string{"action"}),
		packetOuts: f.NewCounterVec(prometheus.CounterOpts{Name: "p4tcd_packet_outs_total",
			Help: "PacketOut messages received, by result: sent, not_primary, or the gRPC code of the refusal."}, []string{"result"}),
		packetIns: f.NewCounter(prometheus.CounterOpts{Name: "p4tcd_packet_ins_total",
			Help: "PacketIn messages queued to controllers."}),
		packetInDrops: f.NewCounter(prometheus.CounterOpts{Name: "p4tcd_packet_ins_dropped_total",
			Help: "PacketIn messages dropped because a controller's queue was full."}),
		digestLists: f.NewCounter(prometheus.CounterOpts{Name: "p4tcd_digest_lists_total",
			Help: "DigestList messages sent to controllers."}),
	}
	m.writeOK = m.writes.WithLabelValues(codes.OK.String())
	m.readOK = m.reads.WithLabelValues(codes.OK.String())
	m.tableUpdateOK = m.updates.WithLabelValues(entityKind(&p4v1.Entity{Entity: &p4v1.Entity_TableEntry{}}), codes.OK.String())
	reg.MustRegister(&deviceCollector{dev: dev})
	return m
}

// undecodedEntry stands for the entity of an update whose table entry
// the codec left undecoded. Nothing changes it.
var undecodedEntry = &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{}}

// write records a Write RPC. errs are the per-update results (nil: all
// succeeded or the batch was refused) and err the status the RPC returns;
// updates are counted only when the batch reached the device. wires are
// req's (heldParts).
func (m *metrics) write(req *p4v1.WriteRequest, wires [][]byte, errs []error, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.writeSeconds.Observe(d.Seconds())
	switch {
	case errs != nil:
		m.writes.WithLabelValues(codes.Unknown.String()).Inc()
	case err != nil:
		m.writes.WithLabelValues(status.Code(err).String()).Inc()
		return
	default:
		m.writeOK.Inc()
	}
	// Count table entries that succeeded in a local, and everything else
	// one by one: the common batch costs one Add.
	ok := 0
	for i, u := range req.GetUpdates() {
		var uerr error
		if errs != nil {
			uerr = errs[i]
		}
		ent := u.GetEntity()
		if ent == nil && wires != nil && wires[i] != nil {
			ent = undecodedEntry // its wire is all there is (request)
		}
		if _, isTable := ent.GetEntity().(*p4v1.Entity_TableEntry); isTable && uerr == nil {
			ok++
			continue
		}
		m.updates.WithLabelValues(entityKind(ent), codeOf(uerr).String()).Inc()
	}
	if ok > 0 {
		m.tableUpdateOK.Add(float64(ok))
	}
}

// read records a Read RPC that returned n entities and ended with status
// err.
func (m *metrics) read(n int, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.readSeconds.Observe(d.Seconds())
	if err == nil {
		m.readOK.Inc()
	} else {
		m.reads.WithLabelValues(status.Code(err).String()).Inc()
	}
	m.readEntities.Add(float64(n))
}

// pipelineChanged records a SetForwardingPipelineConfig that changed the
// config (VERIFY changes nothing).
func (m *metrics) pipelineChanged(a p4v1.SetForwardingPipelineConfigRequest_Action) {
	if m == nil || a == p4v1.SetForwardingPipelineConfigRequest_VERIFY {
		return
	}
	m.pipelines.WithLabelValues(a.String()).Inc()
}

// arbitrationChange records a primary change; vacant is how long the role
// had no primary before this election (0: none, or not an election).
func (m *metrics) arbitrationChange(event string, vacant time.Duration) {
	if m == nil {
		return
	}
	m.arbitration.WithLabelValues(event).Inc()
	if event == eventElected && vacant > 0 {
		m.failover.Observe(vacant.Seconds())
	}
}

// streamOpened records a StreamChannel start (+1) or end (-1).
func (m *metrics) streamOpened(delta float64) {
	if m != nil {
		m.streams.Add(delta)
	}
}

// packetOut records a PacketOut and what became of it.
func (m *metrics) packetOut(result string) {
	if m != nil {
		m.packetOuts.WithLabelValues(result).Inc()
	}
}

// entityKind names an Entity's oneof for the entity label: the field name
// in p4runtime.proto.
func entityKind(e *p4v1.Entity) string {
	switch e.GetEntity().(type) {
	case *p4v1.Entity_TableEntry:
		return "table_entry"
	case *p4v1.Entity_ExternEntry:
		return "extern_entry"
	case *p4v1.Entity_ActionProfileMember:
		return "action_profile_member"
	case *p4v1.Entity_ActionProfileGroup:
		return "action_profile_group"
	case *p4v1.Entity_MeterEntry:
		return "meter_entry"
	case *p4v1.Entity_DirectMeterEntry:
		return "direct_meter_entry"
	case *p4v1.Entity_CounterEntry:
		return "counter_entry"
	case *p4v1.Entity_DirectCounterEntry:
		return "direct_counter_entry"
	case *p4v1.Entity_PacketReplicationEngineEntry:
		return "packet_replication_engine_entry"
	case *p4v1.Entity_ValueSetEntry:
		return "value_set_entry"
	case *p4v1.Entity_RegisterEntry:
		return "register_entry"
	case *p4v1.Entity_DigestEntry:
		return "digest_entry"
	}
	return "none"
}

// deviceCollector reads state the Device and its backend own at scrape
// time, so the write path pays nothing for it.
type deviceCollector struct{ dev *translator.Device }

var (
	descTableEntries = prometheus.NewDesc("p4tcd_table_entries",
		"Controller entries per table in the shadow store (default entries aside).", []string{"table"}, nil)
	descTierEntries = prometheus.NewDesc("p4tcd_table_tier_entries",
		"Controller entries per table and datapath tier (sw, hw). From a backend that reports table stats (the eBPF datapath).", []string{"table", "tier"}, nil)
	descPoolFree = prometheus.NewDesc("p4tcd_table_pool_free_slots",
		"Free slots of a table's pool for datapath-created entries. From a backend that reports table stats (the eBPF datapath).", []string{"table"}, nil)
	descPoolSize = prometheus.NewDesc("p4tcd_table_pool_slots",
		"Size of a table's pool for datapath-created entries. From a backend that reports table stats (the eBPF datapath).", []string{"table"}, nil)
	descCreated = prometheus.NewDesc("p4tcd_datapath_created_entries_total",
		"Entries the datapath created itself (add-on-miss) since the pipeline was committed. From a backend that reports table stats (the eBPF datapath).", []string{"table"}, nil)
)

func (c *deviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTableEntries, descTierEntries, descPoolFree, descPoolSize, descCreated} {
		ch <- d
	}
}

func (c *deviceCollector) Collect(ch chan<- prometheus.Metric) {
	for _, tc := range c.dev.TableCounts() {
		ch <- prometheus.MustNewConstMetric(descTableEntries, prometheus.GaugeValue, float64(tc.Entries), tc.Table)
	}
	sb, ok := c.dev.Backend().(translator.StatsBackend)
	if !ok {
		return
	}
	for _, ts := range sb.TableStats() {
		ch <- prometheus.MustNewConstMetric(descTierEntries, prometheus.GaugeValue, float64(ts.SW), ts.Table, "sw")
		ch <- prometheus.MustNewConstMetric(descTierEntries, prometheus.GaugeValue, float64(ts.HW), ts.Table, "hw")
		if ts.PoolSize > 0 {
			ch <- prometheus.MustNewConstMetric(descPoolFree, prometheus.GaugeValue, float64(ts.PoolFree), ts.Table)
			ch <- prometheus.MustNewConstMetric(descPoolSize, prometheus.GaugeValue, float64(ts.PoolSize), ts.Table)
			ch <- prometheus.MustNewConstMetric(descCreated, prometheus.CounterValue, float64(ts.Created), ts.Table)
		}
	}
}

// logRPC writes the debug line every RPC ends with, err being the status it
// returns; the same keys for every method: method, device, role, the number
// of updates or entities (countKey; "" for none), code and duration.
func (s *Server) logRPC(ctx context.Context, method string, device uint64, role, countKey string, count int, err error, d time.Duration) {
	if !s.opts.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("method", method), slog.Uint64("device", device), slog.String("role", role))
	if countKey != "" {
		attrs = append(attrs, slog.Int(countKey, count))
	}
	attrs = append(attrs, slog.String("code", status.Code(err).String()), slog.Duration("duration", d))
	if err != nil {
		attrs = append(attrs, slog.String("err", err.Error()))
	}
	s.opts.log.LogAttrs(ctx, slog.LevelDebug, "rpc", attrs...)
}

// packetIn counts a PacketIn pushed to a controller's stream, or dropped
// because the stream's queue was full.
func (m *metrics) packetIn(sent bool) {
	if m == nil {
		return
	}
	if sent {
		m.packetIns.Inc()
	} else {
		m.packetInDrops.Inc()
	}
}

// digestList counts a DigestList sent to a controller.
func (m *metrics) digestList() {
	if m == nil {
		return
	}
	m.digestLists.Inc()
}
