package integration

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/ebpfdp"
	"github.com/p4tcd/p4tcd/internal/gcfloor"
	"github.com/p4tcd/p4tcd/internal/testutil"
	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/server"
	"github.com/p4tcd/p4tcd/translator"
)

// l3router ids (examples/l3router/l3router.p4info.txt) and P4TC table ids.
const (
	tblACL, tblLPM, tblNexthop   = 0x02000001, 0x02000002, 0x02000003
	actSetNhop, actForward       = 0x01000002, 0x01000003
	actDeny                      = 0x01000005
	p4tcACL, p4tcLPM, p4tcNexhop = 1, 2, 3
)

// l3routerConfig is the ForwardingPipelineConfig of examples/l3router with
// its tables sized for benchmarks.
func l3routerConfig(tb testing.TB, size int64) *p4v1.ForwardingPipelineConfig {
	dir := filepath.Join("..", "examples", "l3router")
	read := func(n string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(read("l3router.p4info.txt"), &info); err != nil {
		tb.Fatal(err)
	}
	for _, t := range info.Tables {
		t.Size = size
	}
	dc, err := proto.Marshal(&p4tcdv1.DeviceConfig{Format: translator.DeviceConfigFormat, PipelineName: "l3router",
		IntrospectionJson: read("l3router.json"), TcObject: read("l3router.o")})
	if err != nil {
		tb.Fatal(err)
	}
	return &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc}
}

// benchBatch builds the 1,000-entry INSERT batch of a table kind and its
// DELETE twin.
func benchBatch(kind string) (ins, del []*p4v1.Update) {
	for i := range 1000 {
		te := &p4v1.TableEntry{}
		a := &p4v1.Action{}
		switch kind {
		case "exact":
			te.TableId = tblNexthop
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{byte(i >> 8), byte(i)}}}}}
			a.ActionId = actForward
			a.Params = []*p4v1.Action_Param{{ParamId: 1, Value: []byte{2, 0, 0, 0, 0, 1}}, {ParamId: 2, Value: []byte{2, 0, 0, 0, 0, 2}}, {ParamId: 3, Value: []byte{1}}}
		case "lpm":
			te.TableId = tblLPM
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], 10<<24|uint32(i)<<8)
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v[:], PrefixLen: 24}}}}
			a.ActionId = actSetNhop
			a.Params = []*p4v1.Action_Param{{ParamId: 1, Value: []byte{byte(i)}}}
		case "ternary":
			te.TableId = tblACL
			te.Priority = int32(i + 1)
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], 10<<24|uint32(i))
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v[:], Mask: []byte{255, 255, 255, 255}}}}}
			a.ActionId = actDeny
		}
		te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
		ins = append(ins, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}})
		d := proto.Clone(te).(*p4v1.TableEntry)
		del = append(del, &p4v1.Update{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: d}}})
	}
	return ins, del
}

// BenchmarkPrivilegedWritePath measures the whole write path to the kernel:
// a gRPC client on loopback TCP → server → translator → eBPF maps of
// l3router, 1,000-entry batches (INSERT, then DELETE to start over), exact,
// LPM and ternary tables. The baseline, measured in the same run, is raw
// cilium/ebpf BatchUpdate of the same keys and values into a map of the same
// type and shape; of-raw = entries/s through p4tcd ÷ raw entries/s. The
// "x2" runs keep two Writes in flight (two client goroutines, one batch
// each) so that decoding one overlaps applying the other. The client sends
// requests it encoded once, up front: the benchmark measures p4tcd (gRPC
// transport, decoding, translation, maps), not the client's encoder, which
// would otherwise share these two cores with it. cpu-ns/entry is the CPU
// time the whole process (client included) spent per entry: steadier than
// the rate on a shared machine.
func BenchmarkPrivilegedWritePath(b *testing.B) {
	testutil.Privileged(b)
	lab := newBenchLab(b)
	for _, kind := range []string{"exact", "lpm", "ternary"} {
		for _, inflight := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/x%d", kind, inflight), func(b *testing.B) {
				client, root := lab.switchFor(b, fmt.Sprintf("%s-%d", kind, inflight), 8192)
				eid := &p4v1.Uint128{Low: 1}
				ctx := context.Background()
				// inflight disjoint key sets, so concurrent batches never
				// collide.
				type pair struct{ ins, del []byte }
				var work []pair
				var first [2]*p4v1.WriteRequest
				for w := range inflight {
					ins, del := benchBatch(kind)
					shift(ins, del, w)
					wi := &p4v1.WriteRequest{DeviceId: 1, ElectionId: eid, Updates: ins}
					wd := &p4v1.WriteRequest{DeviceId: 1, ElectionId: eid, Updates: del}
					if w == 0 {
						first = [2]*p4v1.WriteRequest{wi, wd}
					}
					work = append(work, pair{mustMarshal(b, wi), mustMarshal(b, wd)})
				}
				if kind == "ternary" {
					// An entry that stays keeps the batches' mask listed: a
					// batch that brings a new mask or removes the last user
					// of one republishes the mask list, which waits for an
					// RCU grace period (docs/ebpf-datapath.md), and a
					// steady table rarely does.
					keep := &p4v1.TableEntry{TableId: tblACL, Priority: 1 << 20,
						Match:  []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: []byte{11, 0, 0, 0}, Mask: []byte{255, 255, 255, 255}}}}},
						Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: actDeny}}}}
					if _, err := client.Write(ctx, &p4v1.WriteRequest{DeviceId: 1, ElectionId: eid, Updates: []*p4v1.Update{{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: keep}}}}}); err != nil {
						b.Fatal(err)
					}
				}
				raw := rawRate(b, root, kind, client.P4RuntimeClient, first[0], first[1])

				b.ResetTimer()
				cpu0 := cpuTime(b)
				var wg sync.WaitGroup
				for _, p := range work {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range b.N {
							if err := client.writeEncoded(ctx, p.ins); err != nil {
								b.Error(err)
								return
							}
							if err := client.writeEncoded(ctx, p.del); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				entries := float64(2 * 1000 * inflight * b.N)
				rate := entries / b.Elapsed().Seconds()
				b.ReportMetric(rate, "entries/s")
				b.ReportMetric(float64(cpuTime(b)-cpu0)/entries, "cpu-ns/entry")
				b.ReportMetric(raw, "raw-entries/s")
				b.ReportMetric(rate/raw, "of-raw")
			})
		}
	}
}

// cpuTime is the CPU time the process has used, user and system, in ns:
// client and server share the process, so per entry it says what the
// write path costs whatever else runs on a shared machine, which the
// wall-clock rate does not.
func cpuTime(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchMinHeap is the heap floor the benchmarks' in-process server runs
// with; 0 measures Go's default pacing alone.
var benchMinHeap = flag.Uint64("bench.gc-min-heap", gcfloor.DefaultMin, "heap floor (bytes) of the benchmarks' in-process p4tcd, as the daemon's --gc-min-heap; 0: none")

// benchLab is a namespace with a veth pair for the ports of benchmark
// switches, and a bpffs for their pins.
type benchLab struct {
	ns    *testutil.NetNS
	bpffs string
}

func newBenchLab(b *testing.B) *benchLab {
	// The server runs in this process: give it the daemon's GC setting,
	// a heap floor (cmd/p4tcd --gc-min-heap), unless told otherwise.
	f := gcfloor.Start(*benchMinHeap, gcfloor.CurrentPercent())
	b.Cleanup(f.Stop)
	ns := testutil.NewNetNS(b)
	h, err := netlink.NewHandleAt(ns.Handle())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wp0"}, PeerName: "wp1"}); err != nil {
		b.Fatal(err)
	}
	return &benchLab{ns: ns, bpffs: testutil.BPFFS(b)}
}

// switchFor starts a p4tcd server on the eBPF datapath with l3router
// (tables of size entries) committed, and returns a primary client and the
// pin root.
func (l *benchLab) switchFor(b *testing.B, name string, size int64) (benchClient, string) {
	root := filepath.Join(l.bpffs, name)
	be, err := ebpfdp.New(ebpfdp.Options{DeviceID: 1, Ports: map[uint32]string{1: "wp0", 2: "wp1"},
		PinRoot: root, NetNSPath: "/var/run/netns/" + l.ns.Name})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close() })
	client := serve(b, be)
	if _, err := client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 1},
		Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, Config: l3routerConfig(b, size)}); err != nil {
		b.Fatal(err)
	}
	return client, root
}

// BenchmarkPrivilegedReadPath measures a wildcard Read of 20,000 exact
// entries through gRPC on loopback (the shadow store, streamed in chunks)
// against a raw cilium/ebpf BatchLookup of the same map in the same run:
// of-raw = entries/s read through p4tcd ÷ entries/s read from the map.
func BenchmarkPrivilegedReadPath(b *testing.B) {
	testutil.Privileged(b)
	lab := newBenchLab(b)
	client, root := lab.switchFor(b, "read", 32768)
	ctx := context.Background()
	const n = 20000
	var ups []*p4v1.Update
	for i := range n {
		ups = append(ups, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: tblNexthop, Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: []byte{byte(i >> 8), byte(i)}}}}},
			Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: actForward,
				Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{2, 0, 0, 0, 0, 1}}, {ParamId: 2, Value: []byte{2, 0, 0, 0, 0, 2}}, {ParamId: 3, Value: []byte{1}}}}}},
		}}}})
	}
	if _, err := client.Write(ctx, &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 1}, Updates: ups}); err != nil {
		b.Fatal(err)
	}
	pins, err := filepath.Glob(filepath.Join(root, "g*", "maps", fmt.Sprintf("p4tc_t%d", p4tcNexhop)))
	if err != nil || len(pins) != 1 {
		b.Fatalf("pinned nexthop map: %v %v", pins, err)
	}
	m, err := ebpf.LoadPinnedMap(pins[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	raw := 0.0
	keys := make([]byte, 4096*int(m.KeySize()))
	vals := make([]byte, 4096*int(m.ValueSize()))
	for range 5 {
		t0 := time.Now()
		var cursor ebpf.MapBatchCursor
		got := 0
		for {
			k, err := m.BatchLookup(&cursor, rows(keys, int(m.KeySize())), rows(vals, int(m.ValueSize())), nil)
			got += k
			if err != nil {
				break
			}
		}
		if got != n {
			b.Fatalf("raw BatchLookup read %d entries, want %d", got, n)
		}
		raw = max(raw, float64(n)/time.Since(t0).Seconds())
	}

	b.ResetTimer()
	for range b.N {
		rc, err := client.Read(ctx, &p4v1.ReadRequest{DeviceId: 1, Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tblNexthop}}}}})
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			r, err := rc.Recv()
			if err != nil {
				break
			}
			got += len(r.GetEntities())
		}
		if got != n {
			b.Fatalf("read %d entries, want %d", got, n)
		}
	}
	rate := float64(n*b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "entries/s")
	b.ReportMetric(raw, "raw-entries/s")
	b.ReportMetric(rate/raw, "of-raw")
}

// shift moves a batch's keys to a disjoint range (worker w).
func shift(ins, del []*p4v1.Update, w int) {
	if w == 0 {
		return
	}
	for _, us := range [][]*p4v1.Update{ins, del} {
		for _, u := range us {
			m := u.GetEntity().GetTableEntry().GetMatch()[0]
			switch x := m.GetFieldMatchType().(type) {
			case *p4v1.FieldMatch_Exact_:
				var v uint16
				for _, c := range x.Exact.Value {
					v = v<<8 | uint16(c)
				}
				v += 0x4000 * uint16(w)
				x.Exact.Value = []byte{byte(v >> 8), byte(v)}
			case *p4v1.FieldMatch_Lpm:
				x.Lpm.Value[0] += byte(w)
			case *p4v1.FieldMatch_Ternary_:
				x.Ternary.Value[0] += byte(w)
			}
		}
	}
}

// benchClient is a P4Runtime client that can also send pre-encoded Writes.
type benchClient struct {
	p4v1.P4RuntimeClient
	conn *grpc.ClientConn
}

// preEncoded is a gRPC codec that sends []byte messages as they are and
// decodes responses as protobuf.
type preEncoded struct{}

func (preEncoded) Name() string { return "proto" }
func (preEncoded) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}
func (preEncoded) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(proto.Message))
}

// writeEncoded sends an encoded WriteRequest.
func (c benchClient) writeEncoded(ctx context.Context, req []byte) error {
	var resp p4v1.WriteResponse
	return c.conn.Invoke(ctx, "/p4.v1.P4Runtime/Write", req, &resp, grpc.ForceCodec(preEncoded{}))
}

func mustMarshal(b *testing.B, m proto.Message) []byte {
	out, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

// serve runs a p4tcd server over be on loopback TCP and returns a client
// that is primary.
func serve(b *testing.B, be translator.Backend) benchClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(1, translator.NewDevice(be), server.WithLogger(slog.New(slog.DiscardHandler)))
	g := grpc.NewServer(server.GRPCOptions()...)
	srv.Register(g)
	go g.Serve(lis)
	b.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(server.MaxMessageSize)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := p4v1.NewP4RuntimeClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	st, err := c.StreamChannel(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
		Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 1}}}}); err != nil {
		b.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		b.Fatal(err)
	}
	return benchClient{c, conn}
}

// rawRate writes the batch once through p4tcd, copies the keys and values
// it produced, and times cilium/ebpf BatchUpdate of them into a fresh map of
// the same type and shape: the kernel's own cost, in entries/s (best of 5).
func rawRate(b *testing.B, root, kind string, c p4v1.P4RuntimeClient, ins, del *p4v1.WriteRequest) float64 {
	ctx := context.Background()
	if _, err := c.Write(ctx, ins); err != nil {
		b.Fatal(err)
	}
	id := map[string]int{"exact": p4tcNexhop, "lpm": p4tcLPM, "ternary": p4tcACL}[kind]
	pins, err := filepath.Glob(filepath.Join(root, "g*", "maps", fmt.Sprintf("p4tc_t%d", id)))
	if err != nil || len(pins) != 1 {
		b.Fatalf("pinned map of table %d: %v %v", id, pins, err)
	}
	m, err := ebpf.LoadPinnedMap(pins[0], nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		b.Fatal(err)
	}
	ks, vs := int(m.KeySize()), int(m.ValueSize())
	var kb, vb []byte
	k, v := make([]byte, ks), make([]byte, vs)
	for it := m.Iterate(); it.Next(&k, &v); {
		kb, vb = append(kb, k...), append(vb, v...)
	}
	n := len(kb) / ks
	keys, vals := rows(kb, ks), rows(vb, vs)
	if _, err := c.Write(ctx, del); err != nil {
		b.Fatal(err)
	}
	if n < 1000 {
		b.Fatalf("%d keys in %s, want 1000", n, pins[0])
	}
	fresh, err := ebpf.NewMap(&ebpf.MapSpec{Type: info.Type, KeySize: uint32(ks), ValueSize: uint32(vs),
		MaxEntries: m.MaxEntries(), Flags: info.Flags})
	if err != nil {
		b.Fatal(err)
	}
	defer fresh.Close()
	best := 0.0
	for range 5 {
		t0 := time.Now()
		if _, err := fresh.BatchUpdate(keys, vals, nil); err != nil {
			b.Fatal(err)
		}
		best = max(best, float64(n)/time.Since(t0).Seconds())
		if _, err := fresh.BatchDelete(keys, nil); err != nil {
			b.Fatal(err)
		}
	}
	return best
}

// rows views a buffer of n fixed-size records as a []([size]byte), the
// shape cilium/ebpf's batch operations take, without copying.
func rows(buf []byte, size int) any {
	row := reflect.ArrayOf(size, reflect.TypeFor[byte]())
	n := len(buf) / size
	return reflect.NewAt(reflect.ArrayOf(n, row), unsafe.Pointer(unsafe.SliceData(buf))).Elem().Slice(0, n).Interface()
}
