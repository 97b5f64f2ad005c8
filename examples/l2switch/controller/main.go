// Command controller is the control plane of examples/l2switch: a learning
// switch over P4Runtime. Run it against a p4tcd that runs l2switch:
//
//	controller --addr 127.0.0.1:9559 --ports 1,2,3 --pipeline examples/l2switch
//
// It enables the learn_t digest and, for every source MAC the datapath
// reports, installs smac (known) and dmac (forward to the port) entries, the
// dmac one with an idle timeout. It floods the packets the datapath sends it
// (unknown destination) out of every other port with packet-outs. It deletes
// both entries of a MAC when the switch reports its dmac entry idle
// (IdleTimeoutNotification).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/prototext"
)

// P4Info ids of examples/l2switch/l2switch.p4info.txt.
const (
	tblSmac    = 33554433
	tblDmac    = 33554434
	actKnown   = 16777217
	actForward = 16777219
	digestID   = 385875969
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9559", "p4tcd address")
	deviceID := flag.Uint64("device-id", 1, "P4Runtime device id")
	portsFlag := flag.String("ports", "1,2", "the switch's P4 ports, comma separated")
	dir := flag.String("pipeline", "examples/l2switch", "folder with l2switch.p4info.txt and l2switch.devcfg (p4tcd pack)")
	idle := flag.Duration("idle", 10*time.Second, "idle timeout of learnt entries")
	flag.Parse()
	var ports []uint32
	for _, s := range strings.Split(*portsFlag, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
		if err != nil {
			log.Fatalf("--ports: %v", err)
		}
		ports = append(ports, uint32(n))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *addr, *deviceID, ports, *dir, *idle); err != nil {
		log.Fatal(err)
	}
}

// Controller is a learning-switch control plane on one P4Runtime stream.
type Controller struct {
	c        p4v1.P4RuntimeClient
	stream   p4v1.P4Runtime_StreamChannelClient
	deviceID uint64
	election *p4v1.Uint128
	ports    []uint32
	idle     time.Duration
	// Log receives what the controller does.
	Log func(format string, args ...any)
}

func run(ctx context.Context, addr string, deviceID uint64, ports []uint32, dir string, idle time.Duration) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctl, err := Connect(ctx, p4v1.NewP4RuntimeClient(conn), deviceID, ports, idle)
	if err != nil {
		return err
	}
	if err := ctl.Push(ctx, filepath.Join(dir, "l2switch.p4info.txt"), filepath.Join(dir, "l2switch.devcfg")); err != nil {
		return err
	}
	ctl.Log = log.Printf
	return ctl.Serve(ctx)
}

// Connect opens the stream and becomes primary.
func Connect(ctx context.Context, c p4v1.P4RuntimeClient, deviceID uint64, ports []uint32, idle time.Duration) (*Controller, error) {
	s, err := c.StreamChannel(ctx)
	if err != nil {
		return nil, err
	}
	ctl := &Controller{c: c, stream: s, deviceID: deviceID, election: &p4v1.Uint128{Low: 1}, ports: ports, idle: idle,
		Log: func(string, ...any) {}}
	if err := s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: &p4v1.MasterArbitrationUpdate{
		DeviceId: deviceID, ElectionId: ctl.election}}}); err != nil {
		return nil, err
	}
	m, err := s.Recv()
	if err != nil {
		return nil, fmt.Errorf("arbitration: %w", err)
	}
	if m.GetArbitration().GetStatus().GetCode() != 0 {
		return nil, fmt.Errorf("not primary: %v", m.GetArbitration().GetStatus())
	}
	return ctl, nil
}

// Push installs l2switch and enables its digest.
func (ctl *Controller) Push(ctx context.Context, p4infoPath, devcfgPath string) error {
	text, err := os.ReadFile(p4infoPath)
	if err != nil {
		return err
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(text, &info); err != nil {
		return err
	}
	dc, err := os.ReadFile(devcfgPath)
	if err != nil {
		return err
	}
	if _, err := ctl.c.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: ctl.deviceID, ElectionId: ctl.election, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc},
	}); err != nil {
		return fmt.Errorf("push l2switch: %w", err)
	}
	return ctl.write(ctx, &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_DigestEntry{DigestEntry: &p4v1.DigestEntry{
		DigestId: digestID, Config: &p4v1.DigestEntry_Config{MaxTimeoutNs: int64(10 * time.Millisecond), MaxListSize: 16, AckTimeoutNs: int64(time.Second)},
	}}}})
}

func (ctl *Controller) write(ctx context.Context, ups ...*p4v1.Update) error {
	_, err := ctl.c.Write(ctx, &p4v1.WriteRequest{DeviceId: ctl.deviceID, ElectionId: ctl.election, Updates: ups})
	return err
}

// Serve handles digests, packet-ins and idle notifications until ctx ends
// or the stream breaks.
func (ctl *Controller) Serve(ctx context.Context) error {
	for {
		m, err := ctl.stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch {
		case m.GetDigest() != nil:
			ctl.learn(ctx, m.GetDigest())
		case m.GetPacket() != nil:
			ctl.flood(m.GetPacket())
		case m.GetIdleTimeoutNotification() != nil:
			ctl.age(ctx, m.GetIdleTimeoutNotification())
		case m.GetError() != nil:
			ctl.Log("stream error: %v", m.GetError().GetMessage())
		}
	}
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func macEntry(table uint32, mac []byte) *p4v1.TableEntry {
	return &p4v1.TableEntry{TableId: table, Match: []*p4v1.FieldMatch{{FieldId: 1,
		FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: mac}}}}}
}

// learn installs the MACs of a digest list and acknowledges it.
func (ctl *Controller) learn(ctx context.Context, l *p4v1.DigestList) {
	for _, d := range l.GetData() {
		ms := d.GetStruct().GetMembers()
		if len(ms) != 2 {
			continue
		}
		mac, port := ms[0].GetBitstring(), ms[1].GetBitstring()
		smac := macEntry(tblSmac, mac)
		smac.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: actKnown}}}
		dmac := macEntry(tblDmac, mac)
		dmac.IdleTimeoutNs = int64(ctl.idle)
		dmac.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: actForward,
			Params: []*p4v1.Action_Param{{ParamId: 1, Value: port}}}}}
		err := ctl.write(ctx,
			&p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: smac}}},
			&p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: dmac}}})
		ctl.Log("learnt %x on port %x (%v)", mac, port, err)
	}
	_ = ctl.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_DigestAck{DigestAck: &p4v1.DigestListAck{
		DigestId: l.GetDigestId(), ListId: l.GetListId()}}})
}

// flood sends a packet-in out of every port but the one it came from.
func (ctl *Controller) flood(p *p4v1.PacketIn) {
	var in uint32
	for _, md := range p.GetMetadata() {
		if md.GetMetadataId() == 1 {
			for _, b := range md.GetValue() {
				in = in<<8 | uint32(b)
			}
		}
	}
	for _, port := range ctl.ports {
		if port == in {
			continue
		}
		_ = ctl.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Packet{Packet: &p4v1.PacketOut{
			Payload: p.GetPayload(), Metadata: []*p4v1.PacketMetadata{{MetadataId: 1, Value: u32(port)}}}}})
	}
}

// age forgets the MACs whose dmac entries went idle.
func (ctl *Controller) age(ctx context.Context, n *p4v1.IdleTimeoutNotification) {
	for _, te := range n.GetTableEntry() {
		mac := te.GetMatch()[0].GetExact().GetValue()
		err := ctl.write(ctx,
			&p4v1.Update{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: macEntry(tblDmac, mac)}}},
			&p4v1.Update{Type: p4v1.Update_DELETE, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: macEntry(tblSmac, mac)}}})
		ctl.Log("aged %x out (%v)", mac, err)
	}
}
