package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/types/known/anypb"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
)

// deviceID is the device id the daemons of these tests serve.
const deviceID = 1

// simpleRouter is PI's simple_router P4Info; its ipv4_lpm table holds 1,024
// routes (set_nhop: a 32-bit next hop and a 9-bit port).
func simpleRouter(t testing.TB) *p4configv1.P4Info {
	t.Helper()
	b, err := os.ReadFile("testdata/pi-simple_router.p4info.txt")
	if err != nil {
		t.Fatal(err)
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return &info
}

// idOf returns the id of a table or action of info by name.
func idOf(t testing.TB, info *p4configv1.P4Info, name string) uint32 {
	t.Helper()
	for _, tb := range info.GetTables() {
		if tb.GetPreamble().GetName() == name {
			return tb.GetPreamble().GetId()
		}
	}
	for _, a := range info.GetActions() {
		if a.GetPreamble().GetName() == name {
			return a.GetPreamble().GetId()
		}
	}
	t.Fatalf("no table or action %s", name)
	return 0
}

// session is one controller: a gRPC connection and its StreamChannel.
type session struct {
	t      testing.TB
	c      p4v1.P4RuntimeClient
	s      p4v1.P4Runtime_StreamChannelClient
	role   string
	id     *p4v1.Uint128
	cancel context.CancelFunc
	// arb receives the arbitration notifications; it is closed when the
	// stream ends.
	arb chan *p4v1.MasterArbitrationUpdate
}

// openSession opens a StreamChannel on its own connection to d.
func openSession(t testing.TB, d *daemon, role string) *session {
	t.Helper()
	c := d.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.StreamChannel(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	se := &session{t: t, c: c, s: s, role: role, cancel: cancel, arb: make(chan *p4v1.MasterArbitrationUpdate, 16)}
	go func() {
		defer close(se.arb)
		for {
			m, err := s.Recv()
			if err != nil {
				return
			}
			if a := m.GetArbitration(); a != nil {
				se.arb <- a
			}
		}
	}()
	t.Cleanup(cancel)
	return se
}

// arbitrate sends a MasterArbitrationUpdate with election id low (and
// role config rc, if any) and waits for the answer, which must have status
// want.
func (se *session) arbitrate(low uint64, rc *p4tcdv1.RoleConfig, want code.Code) {
	se.t.Helper()
	se.id = &p4v1.Uint128{Low: low}
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: deviceID, ElectionId: se.id}
	if se.role != "" {
		upd.Role = &p4v1.Role{Name: se.role}
		if rc != nil {
			a, err := anypb.New(rc)
			if err != nil {
				se.t.Fatal(err)
			}
			upd.Role.Config = a
		}
	}
	if err := se.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		se.t.Fatal(err)
	}
	se.wantStatus(want)
}

// wantStatus waits for the next arbitration notification and checks its
// status.
func (se *session) wantStatus(want code.Code) {
	se.t.Helper()
	select {
	case a, ok := <-se.arb:
		if !ok {
			se.t.Fatal("stream closed before an arbitration answer")
		}
		if got := code.Code(a.GetStatus().GetCode()); got != want {
			se.t.Fatalf("role %q: arbitration status %v, want %v", se.role, got, want)
		}
	case <-time.After(5 * time.Second):
		se.t.Fatalf("role %q: no arbitration answer within 5s", se.role)
	}
}

// write sends one Write with the session's role and election id.
func (se *session) write(ctx context.Context, ups ...*p4v1.Update) error {
	_, err := se.c.Write(ctx, &p4v1.WriteRequest{DeviceId: deviceID, Role: se.role, ElectionId: se.id, Updates: ups})
	return err
}

// setPipeline pushes info as the session's primary.
func (se *session) setPipeline(ctx context.Context, info *p4configv1.P4Info) error {
	_, err := se.c.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: deviceID, Role: se.role, ElectionId: se.id, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: info, Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: 1}},
	})
	return err
}

// readTable reads every entry of a table.
func readTable(ctx context.Context, c p4v1.P4RuntimeClient, table uint32) ([]*p4v1.TableEntry, error) {
	rc, err := c.Read(ctx, &p4v1.ReadRequest{DeviceId: deviceID,
		Entities: []*p4v1.Entity{{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: table}}}}})
	if err != nil {
		return nil, err
	}
	var out []*p4v1.TableEntry
	for {
		r, err := rc.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		for _, e := range r.GetEntities() {
			out = append(out, e.GetTableEntry())
		}
	}
}

// rssKiB is the resident set size of process pid, from /proc.
func rssKiB(t testing.TB, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// scrape fetches a Prometheus text exposition and returns each sample by
// its series (name and labels as exposed, e.g. `x_total{code="OK"}`).
func scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		out[l[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
