package goclient

import (
	"os"
	"testing"
	"time"

	"github.com/antoninbas/p4runtime-go-client/pkg/client"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An independent P4Runtime client (antoninbas/p4runtime-go-client) drives
// the p4tcd binary: arbitration, pipeline push from a P4Info file, insert,
// modify, delete and read.
func TestGoClientDrivesP4tcd(t *testing.T) {
	d := startDaemon(t, "--datapath", "none", "--device-id", "1")
	p4info, err := os.ReadFile("testdata/pi-simple_router.p4info.txt")
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(d.dial(t), 1, &p4v1.Uint128{High: 0, Low: 1})
	arb := make(chan bool, 4)
	msgs := make(chan *p4v1.StreamMessageResponse, 16)
	stop := make(chan struct{})
	go c.Run(stop, arb, msgs)
	t.Cleanup(func() { close(stop) })
	select {
	case primary := <-arb:
		if !primary {
			t.Fatal("go client did not become primary")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no arbitration answer within 2s")
	}

	ctx := within(t, 20*time.Second)
	if _, err := c.SetFwdPipeFromBytes(ctx, []byte("device config"), p4info, 99); err != nil {
		t.Fatalf("set pipeline: %v", err)
	}
	got, err := c.GetFwdPipe(ctx, client.GetFwdPipeCookieOnly)
	if err != nil || got.Cookie != 99 {
		t.Fatalf("get pipeline: %+v %v", got, err)
	}
	if _, err := c.GetFwdPipe(ctx, client.GetFwdPipeAll); err != nil {
		t.Fatal(err)
	}

	route := func(prefix []byte, plen int32, nhop []byte) *p4v1.TableEntry {
		return c.NewTableEntry("ipv4_lpm",
			map[string]client.MatchInterface{"ipv4.dstAddr": &client.LpmMatch{Value: prefix, PLen: plen}},
			c.NewTableActionDirect("set_nhop", [][]byte{nhop, {0, 1}}), nil)
	}
	e1 := route([]byte{10, 0, 1, 0}, 24, []byte{10, 0, 1, 1})
	if err := c.InsertTableEntry(ctx, e1); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := c.InsertTableEntry(ctx, route([]byte{10, 0, 1, 0}, 24, []byte{10, 0, 1, 1})); status.Code(err) != codes.Unknown {
		t.Errorf("duplicate insert: %v, want UNKNOWN with details", err)
	}
	if err := c.InsertTableEntry(ctx, route([]byte{10, 0, 2, 0}, 24, []byte{10, 0, 2, 1})); err != nil {
		t.Fatal(err)
	}
	if err := c.ModifyTableEntry(ctx, route([]byte{10, 0, 1, 0}, 24, []byte{10, 0, 1, 9})); err != nil {
		t.Fatalf("modify: %v", err)
	}
	one, err := c.ReadTableEntry(ctx, "ipv4_lpm", []client.MatchInterface{&client.LpmMatch{Value: []byte{10, 0, 1, 0}, PLen: 24}})
	if err != nil {
		t.Fatalf("read one: %v", err)
	}
	if p := one.GetAction().GetAction().GetParams()[0].GetValue(); string(p) != string([]byte{10, 0, 1, 9}) {
		t.Errorf("modified next hop reads %v", p)
	}
	all, err := c.ReadTableEntryWildcard(ctx, "ipv4_lpm")
	if err != nil || len(all) != 2 {
		t.Fatalf("wildcard read: %d entries, %v", len(all), err)
	}
	if err := c.DeleteTableEntry(ctx, route([]byte{10, 0, 1, 0}, 24, nil)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.ReadTableEntry(ctx, "ipv4_lpm", []client.MatchInterface{&client.LpmMatch{Value: []byte{10, 0, 1, 0}, PLen: 24}}); err == nil {
		t.Error("deleted entry still reads back")
	}
	all, err = c.ReadTableEntryWildcard(ctx, "ipv4_lpm")
	if err != nil || len(all) != 1 {
		t.Fatalf("after delete: %d entries, %v", len(all), err)
	}

	// The daemon stops cleanly on SIGTERM even with a stream open.
	if err := d.stop(15); err != nil {
		t.Errorf("p4tcd exit: %v", err)
	}
}
