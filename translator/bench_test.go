package translator

import (
	"encoding/binary"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"
)

// benchBatch is the batch size of the write benchmarks.
const benchBatch = 1000

// benchUpdates builds n INSERT (or DELETE) updates of the given kind on
// p4runtime-shell's unittest tables, with distinct keys from base.
func benchUpdates(info *p4configv1.P4Info, kind string, base, n int, typ p4v1.Update_Type) []*p4v1.Update {
	tid := map[string]uint32{}
	for _, t := range info.GetTables() {
		tid[t.GetPreamble().GetName()] = t.GetPreamble().GetId()
	}
	ups := make([]*p4v1.Update, n)
	for i := range n {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], uint32(0x0a000000+base+i)<<4)
		te := &p4v1.TableEntry{Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{
			ActionId: 16783703, Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{0x02, 0, 0, 0, 0, byte(i)}}}}}}}
		switch kind {
		case "exact":
			te.TableId = tid["ExactOne"]
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v[:]}}}}
		case "lpm":
			te.TableId = tid["LpmOne"]
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: v[:], PrefixLen: 28}}}}
		case "ternary":
			te.TableId = tid["TernaryOne"]
			te.Priority = int32(i + 1)
			te.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v[:], Mask: []byte{0xff, 0xff, 0xff, 0xf0}}}}}
		}
		ups[i] = &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}
	}
	return ups
}

// unlimited lifts the P4Info table sizes so benchmarks never fill a table.
func unlimited(info *p4configv1.P4Info) *p4configv1.P4Info {
	info = proto.Clone(info).(*p4configv1.P4Info)
	for _, t := range info.Tables {
		t.Size = 0
	}
	return info
}

// BenchmarkDeviceWrite measures the translator and shadow store alone:
// 1,000-entry INSERT batches then DELETE batches of the same keys, decoded
// requests in hand (no gRPC, no proto decoding, no kernel). The baseline
// is a Go map insert and delete of the same number of string keys — the
// store's own floor — measured in the same run; ratio_to_map says how much
// of that floor validation and canonicalisation cost.
func BenchmarkDeviceWrite(b *testing.B) {
	info := unlimited(loadP4Info(b, "p4runtime-shell-unittest.p4info.pb.txt"))
	floor := mapFloor(b)
	for _, kind := range []string{"exact", "lpm", "ternary"} {
		b.Run(kind, func(b *testing.B) {
			d := NewDevice(NewNoneBackend())
			if err := d.SetPipeline(p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: info}); err != nil {
				b.Fatal(err)
			}
			ins := benchUpdates(info, kind, 0, benchBatch, p4v1.Update_INSERT)
			del := benchUpdates(info, kind, 0, benchBatch, p4v1.Update_DELETE)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if errs, err := d.Write(ins, 0, nil); err != nil || errs != nil {
					b.Fatal(err, errs)
				}
				if errs, err := d.Write(del, 0, nil); err != nil || errs != nil {
					b.Fatal(err, errs)
				}
			}
			perSec := float64(2*benchBatch*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "entries/s")
			b.ReportMetric(floor/perSec, "ratio_to_map")
		})
	}
}

// mapFloor measures Go map insert+delete of 1,000 16-byte string keys, in
// operations per second.
func mapFloor(b *testing.B) float64 {
	keys := make([][]byte, benchBatch)
	for i := range keys {
		keys[i] = make([]byte, 16)
		binary.BigEndian.PutUint64(keys[i], uint64(i))
	}
	// testing.Benchmark cannot nest inside a benchmark: time rounds
	// directly, best of five.
	m := map[string]*Entry{}
	e := &Entry{}
	best := 0.0
	for range 5 {
		start := time.Now()
		const rounds = 200
		for range rounds {
			for _, k := range keys {
				m[string(k)] = e
			}
			for _, k := range keys {
				delete(m, string(k))
			}
		}
		best = max(best, float64(2*benchBatch*rounds)/time.Since(start).Seconds())
	}
	return best
}
