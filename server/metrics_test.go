package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/p4tcd/p4tcd/translator"
)

// counterValue is the value of the series of name with the given labels
// (name=value pairs), or -1 when reg has no such series.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnv(t, WithMetrics(reg))
	primary := e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	// One update fails (duplicate), one is not supported.
	err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1)),
		&p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: 1}}}},
		insert(exactEntry(e, "ExactOne", 3, "actionA", 1)))
	if status.Code(err) != codes.Unknown {
		t.Fatal(err)
	}
	// A stale election id is refused before any update.
	if err := e.write(7, 0, insert(exactEntry(e, "ExactOne", 4, "actionA", 1))); status.Code(err) != codes.PermissionDenied {
		t.Fatal(err)
	}
	if n := countEntries(t, e); n != 3 {
		t.Fatalf("%d entries", n)
	}
	// A new primary takes over after the old one left.
	backup := e.openStream(t)
	backup.arbitrate("", eid(0))
	backup.wantStatus(code.Code_ALREADY_EXISTS, 1)
	primary.cancel()
	backup.wantStatus(code.Code_NOT_FOUND, 1)
	backup.arbitrate("", eid(2))
	backup.wantStatus(code.Code_OK, 2)
	if err := backup.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Packet{Packet: &p4v1.PacketOut{Payload: []byte{1}}}}); err != nil {
		t.Fatal(err)
	}
	for m := range backup.in { // the StreamError answering the PacketOut
		if m.GetError() != nil {
			break
		}
	}

	// The old primary's handler ends a little after the server saw it go.
	for deadline := time.Now().Add(2 * time.Second); counterValue(t, reg, "p4tcd_streams_open") != 1 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"p4tcd_write_requests_total", []string{"code", "OK"}, 1},
		{"p4tcd_write_requests_total", []string{"code", "Unknown"}, 1},
		{"p4tcd_write_requests_total", []string{"code", "PermissionDenied"}, 1},
		{"p4tcd_write_updates_total", []string{"entity", "table_entry", "code", "OK"}, 3},
		{"p4tcd_write_updates_total", []string{"entity", "table_entry", "code", "AlreadyExists"}, 1},
		{"p4tcd_write_updates_total", []string{"entity", "counter_entry", "code", "InvalidArgument"}, 1}, // counters take MODIFY only
		{"p4tcd_write_duration_seconds", nil, 3},
		{"p4tcd_read_requests_total", []string{"code", "OK"}, 1},
		{"p4tcd_read_entities_total", nil, 3},
		{"p4tcd_read_duration_seconds", nil, 1},
		{"p4tcd_table_entries", []string{"table", "ExactOne"}, 3},
		{"p4tcd_table_entries", []string{"table", "LpmOne"}, 0},
		{"p4tcd_pipeline_config_changes_total", []string{"action", "VERIFY_AND_COMMIT"}, 1},
		{"p4tcd_arbitration_changes_total", []string{"event", "primary_elected"}, 2},
		{"p4tcd_arbitration_changes_total", []string{"event", "primary_lost"}, 1},
		{"p4tcd_failover_seconds", nil, 1},
		{"p4tcd_streams_open", nil, 1},
		// The control-plane-only backend has no CPU port.
		{"p4tcd_packet_outs_total", []string{"result", "Unimplemented"}, 1},
		// Fed by datapath events, which this backend has none of.
		{"p4tcd_packet_ins_total", nil, 0},
		{"p4tcd_packet_ins_dropped_total", nil, 0},
		{"p4tcd_digest_lists_total", nil, 0},
	}
	for _, tc := range tests {
		if got := counterValue(t, reg, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%q = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if err := promtest.GatherAndCompare(reg, strings.NewReader(""), "p4tcd_table_tier_entries"); err != nil {
		t.Errorf("tier entries without a stats backend: %v", err)
	}
}

// statsBackend is a control-plane backend that reports datapath stats.
type statsBackend struct{ translator.AtomicBackend }

func (statsBackend) TableStats() []translator.TableStats {
	return []translator.TableStats{
		{Table: "ExactOne", SW: 5, HW: 2, PoolFree: 90, PoolSize: 100, Created: 12},
		{Table: "LpmOne", SW: 1},
	}
}

func TestMetricsFromStatsBackend(t *testing.T) {
	reg := prometheus.NewRegistry()
	newTestEnvWith(t, statsBackend{translator.NewNoneBackend()}, WithMetrics(reg))
	want := `
# HELP p4tcd_datapath_created_entries_total Entries the datapath created itself (add-on-miss) since the pipeline was committed. From a backend that reports table stats (the eBPF datapath).
# TYPE p4tcd_datapath_created_entries_total counter
p4tcd_datapath_created_entries_total{table="ExactOne"} 12
# HELP p4tcd_table_pool_free_slots Free slots of a table's pool for datapath-created entries. From a backend that reports table stats (the eBPF datapath).
# TYPE p4tcd_table_pool_free_slots gauge
p4tcd_table_pool_free_slots{table="ExactOne"} 90
# HELP p4tcd_table_tier_entries Controller entries per table and datapath tier (sw, hw). From a backend that reports table stats (the eBPF datapath).
# TYPE p4tcd_table_tier_entries gauge
p4tcd_table_tier_entries{table="ExactOne",tier="hw"} 2
p4tcd_table_tier_entries{table="ExactOne",tier="sw"} 5
p4tcd_table_tier_entries{table="LpmOne",tier="hw"} 0
p4tcd_table_tier_entries{table="LpmOne",tier="sw"} 1
`
	if err := promtest.GatherAndCompare(reg, strings.NewReader(want),
		"p4tcd_datapath_created_entries_total", "p4tcd_table_pool_free_slots", "p4tcd_table_tier_entries"); err != nil {
		t.Error(err)
	}
}

// Every RPC ends with one debug line with the same keys.
func TestRequestLogging(t *testing.T) {
	var buf syncBuffer
	e := newTestEnv(t, WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	e.primary(t, 1)
	e.setPipeline(t, 1)
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1)), insert(exactEntry(e, "ExactOne", 2, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: "ghost", ElectionId: eid(1)})
	if status.Code(err) != codes.NotFound {
		t.Fatal(err)
	}
	countEntries(t, e)
	if _, err := e.client.Capabilities(context.Background(), &p4v1.CapabilitiesRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"msg=rpc method=SetForwardingPipelineConfig device=1 role=\"\" code=OK duration=",
		"msg=rpc method=Write device=1 role=\"\" updates=2 code=OK duration=",
		"msg=rpc method=Write device=1 role=ghost updates=0 code=NotFound duration=",
		"msg=rpc method=Read device=1 role=\"\" entities=1 code=OK duration=",
		"msg=rpc method=Capabilities device=0 role=\"\" code=OK duration=",
	} {
		deadline := time.Now().Add(2 * time.Second)
		for !strings.Contains(buf.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("no log line %q in\n%s", want, buf.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// BenchmarkMetricsWrite measures what metrics add to a 1,000-update Write
// that succeeded: the server's whole per-RPC metrics work.
func BenchmarkMetricsWrite(b *testing.B) {
	e := newTestEnv(b)
	ins, _ := benchRequests(e, "exact")
	m := newMetrics(prometheus.NewRegistry(), e.srv.Device())
	b.ReportAllocs()
	for b.Loop() {
		m.write(ins, nil, nil, nil, time.Millisecond)
	}
}
