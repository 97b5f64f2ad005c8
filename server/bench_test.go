package server

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/p4tcd/p4tcd/translator"
)

// benchRequests builds a 1,000-entry INSERT and the matching DELETE batch
// for the table of the given kind.
func benchRequests(e *testEnv, kind string) (ins, del *p4v1.WriteRequest) {
	ins = &p4v1.WriteRequest{DeviceId: testDevice, ElectionId: eid(1)}
	del = &p4v1.WriteRequest{DeviceId: testDevice, ElectionId: eid(1)}
	for i := range 1000 {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], uint32(0x0a000000+i)<<4)
		te := &p4v1.TableEntry{Action: act(actionID(e, "actionA"), []byte{2, 0, 0, 0, 0, byte(i)})}
		switch kind {
		case "exact":
			te.TableId = tableID(e, "ExactOne")
			te.Match = []*p4v1.FieldMatch{exact(1, v[:])}
		case "lpm":
			te.TableId = tableID(e, "LpmOne")
			te.Match = []*p4v1.FieldMatch{lpm(1, v[:], 28)}
		case "ternary":
			te.TableId = tableID(e, "TernaryOne")
			te.Priority = int32(i + 1)
			te.Match = []*p4v1.FieldMatch{ternary(1, v[:], []byte{0xff, 0xff, 0xff, 0xf0})}
		}
		ins.Updates = append(ins.Updates, insert(te))
		del.Updates = append(del.Updates, upd(p4v1.Update_DELETE, proto.Clone(te).(*p4v1.TableEntry)))
	}
	return ins, del
}

// BenchmarkWritePath measures the whole write path: a gRPC client on
// loopback TCP → server → translator → shadow store (control-plane-only
// backend), 1,000-entry batches, INSERT then DELETE. ratio_to_device
// compares it with the same batches handed straight to the Device in the
// same run: the share gRPC and protobuf decoding take. Metrics are on, as
// with --metrics-addr.
func BenchmarkWritePath(b *testing.B) {
	for _, kind := range []string{"exact", "lpm", "ternary"} {
		b.Run(kind, func(b *testing.B) {
			e := newTestEnv(b, WithMetrics(prometheus.NewRegistry()))
			for _, t := range e.info.Tables {
				t.Size = 0
			}
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			g := grpc.NewServer(GRPCOptions()...)
			e.srv.Register(g)
			go g.Serve(lis)
			b.Cleanup(g.Stop)
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { conn.Close() })
			client := p4v1.NewP4RuntimeClient(conn)
			e.primary(b, 1)
			e.setPipeline(b, 1)
			ins, del := benchRequests(e, kind)
			direct := deviceRate(b, e.info, ins, del)

			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if _, err := client.Write(ctx, ins); err != nil {
					b.Fatal(err)
				}
				if _, err := client.Write(ctx, del); err != nil {
					b.Fatal(err)
				}
			}
			rate := float64(2*len(ins.Updates)*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(rate, "entries/s")
			b.ReportMetric(rate/direct, "ratio_to_device")
		})
	}
}

// deviceRate measures the same batches applied straight to a Device (no
// gRPC), in entries per second, best of three rounds.
func deviceRate(b *testing.B, info *p4configv1.P4Info, ins, del *p4v1.WriteRequest) float64 {
	d := translator.NewDevice(translator.NewNoneBackend())
	if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
		b.Fatal(err)
	}
	best := 0.0
	for range 3 {
		const rounds = 50
		start := time.Now()
		for range rounds {
			if errs, err := d.Write(ins.Updates, 0, nil); err != nil || errs != nil {
				b.Fatal(err, errs)
			}
			if errs, err := d.Write(del.Updates, 0, nil); err != nil || errs != nil {
				b.Fatal(err, errs)
			}
		}
		best = max(best, float64(2*len(ins.Updates)*rounds)/time.Since(start).Seconds())
	}
	return best
}
