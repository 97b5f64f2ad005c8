package integration

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hostRoutes returns a function that makes an update of the /32 route
// 10.0.0.0+n in simple_router's ipv4_lpm, with next hop nhop.
func hostRoutes(t testing.TB) func(typ p4v1.Update_Type, n, nhop uint32) *p4v1.Update {
	info := simpleRouter(t)
	table, action := idOf(t, info, "ipv4_lpm"), idOf(t, info, "set_nhop")
	return func(typ p4v1.Update_Type, n, nhop uint32) *p4v1.Update {
		var dst, nh [4]byte
		binary.BigEndian.PutUint32(dst[:], 10<<24|n)
		binary.BigEndian.PutUint32(nh[:], nhop)
		return &p4v1.Update{Type: typ, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: table,
			Match: []*p4v1.FieldMatch{{FieldId: 1,
				FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: dst[:], PrefixLen: 32}}}},
			Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: action,
				Params: []*p4v1.Action_Param{{ParamId: 1, Value: nh[:]}, {ParamId: 2, Value: []byte{1}}}}}},
		}}}}
	}
}

// TestFailover takes the primary role from a controller that is writing,
// twice: a controller with a higher election id takes over while the
// primary is alive, and then, after that primary dies, a backup takes
// over. Each time the new primary's writes are accepted and the stale
// primary's are refused; what was written stays. The failover time is
// reported (test log and p4tcd_failover_seconds), not asserted.
func TestFailover(t *testing.T) {
	metricsAddr := freeAddr(t)
	d := startDaemon(t, "--datapath", "none", "--device-id", "1", "--metrics-addr", metricsAddr)
	ctx := within(t, 60*time.Second)
	hostRoute := hostRoutes(t)
	a := openSession(t, d, "")
	a.arbitrate(10, nil, code.Code_OK)
	if err := a.setPipeline(ctx, simpleRouter(t)); err != nil {
		t.Fatal(err)
	}

	// A rewrites its route until its writes are refused, which must happen
	// from B's election on, and never before.
	if err := a.write(ctx, hostRoute(p4v1.Update_INSERT, 0, 0)); err != nil {
		t.Fatal(err)
	}
	var writes atomic.Uint32
	refused := make(chan error, 1)
	go func() {
		for i := uint32(1); i <= 1e6; i++ {
			if err := a.write(ctx, hostRoute(p4v1.Update_MODIFY, 0, i)); err != nil {
				refused <- err
				return
			}
			writes.Store(i)
		}
		refused <- nil
	}()
	for writes.Load() < 50 {
		select {
		case err := <-refused:
			t.Fatalf("the primary's write: %v", err)
		case <-time.After(time.Millisecond):
		}
	}

	// Takeover: B arbitrates with a higher id while A is alive.
	b := openSession(t, d, "")
	b.arbitrate(20, nil, code.Code_OK)
	a.wantStatus(code.Code_ALREADY_EXISTS)
	select {
	case err := <-refused:
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("the old primary's write after the takeover: %v, want PERMISSION_DENIED", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the old primary's writes were still accepted 20 s after the takeover")
	}
	if err := a.write(ctx, hostRoute(p4v1.Update_INSERT, 1, 1)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stale primary write: %v, want PERMISSION_DENIED", err)
	}
	if err := b.write(ctx, hostRoute(p4v1.Update_INSERT, 1, 1)); err != nil {
		t.Fatalf("new primary write: %v", err)
	}
	// A re-arbitrating below the new primary stays a backup.
	a.arbitrate(15, nil, code.Code_ALREADY_EXISTS)

	// Crash: B dies; A hears there is no primary and takes over with an id
	// above the highest ever seen.
	start := time.Now()
	b.cancel()
	a.wantStatus(code.Code_NOT_FOUND)
	a.arbitrate(21, nil, code.Code_OK)
	failover := time.Since(start)
	if err := a.write(ctx, hostRoute(p4v1.Update_INSERT, 2, 2)); err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	stale := d.dial(t) // B's election id on another connection
	if _, err := stale.Write(ctx, &p4v1.WriteRequest{DeviceId: deviceID, ElectionId: &p4v1.Uint128{Low: 20}, Updates: []*p4v1.Update{hostRoute(p4v1.Update_INSERT, 3, 3)}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("write with the dead primary's election id: %v, want PERMISSION_DENIED", err)
	}

	// Nothing written was lost: A's route with the next hop of its last
	// accepted rewrite, and one route from each new primary.
	entries, err := readTable(ctx, a.c, idOf(t, simpleRouter(t), "ipv4_lpm"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("%d routes after the failovers, want 3", len(entries))
	}
	for _, e := range entries {
		if binary.BigEndian.Uint32(pad4(e.GetMatch()[0].GetLpm().GetValue())) != 10<<24 {
			continue
		}
		if got, want := binary.BigEndian.Uint32(pad4(e.GetAction().GetAction().GetParams()[0].GetValue())), writes.Load(); got != want {
			t.Errorf("the old primary's route has next hop %d, want %d (its last accepted rewrite)", got, want)
		}
	}
	m := scrape(t, metricsAddr)
	t.Logf("failover after the primary died: %v seen by the controller, %.3f ms in the daemon (p4tcd_failover_seconds)",
		failover.Round(time.Microsecond), 1000*m["p4tcd_failover_seconds_sum"])
	if got := m["p4tcd_failover_seconds_count"]; got != 1 {
		t.Errorf("p4tcd_failover_seconds_count = %v, want 1", got)
	}
	if got := m[`p4tcd_arbitration_changes_total{event="primary_elected"}`]; got != 3 {
		t.Errorf("primary elections counted: %v, want 3", got)
	}
}

// pad4 left-pads a canonical bytestring of at most 4 bytes to 4.
func pad4(b []byte) []byte {
	return append(make([]byte, 4-len(b), 4), b...)
}
