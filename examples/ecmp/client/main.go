// Command client is the control plane of examples/ecmp: it programs an
// ECMP router over P4Runtime and then polls its statistics, as ONOS does
// (direct counters read with the table entries). Run it against a p4tcd
// that runs ecmp on the eBPF datapath:
//
//	p4tcd pack -o examples/ecmp/ecmp.devcfg examples/ecmp
//	client --addr 127.0.0.1:9559 --pipeline examples/ecmp \
//	    --route 10.0.2.0/24 --nexthop 2=02:00:00:00:02:01 --nexthop 3=02:00:00:00:03:01 \
//	    --flood 1,2,3,4 --mirror 4 --mirror-dport 5001 --police 1=1000
//
// Each --nexthop PORT=MAC becomes an action profile member forward(PORT,
// MAC, --router-mac); the route's group holds them all, weight 1, each
// watching its port, so a port whose link goes down leaves the group
// until it comes back. --flood ports form multicast group 1 (broadcasts);
// --mirror makes clone session 1, taking the UDP/TCP destination ports of
// --mirror-dport (the parser value set); --police PORT=RATE limits what
// enters PORT to RATE packets per second (burst: a tenth of a second).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
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

// P4Info ids of examples/ecmp/ecmp.p4info.txt.
const (
	tblRoute    = 33554433
	actForward  = 16777217
	profECMP    = 285212673
	ctrPorts    = 301989889
	mtrPolicer  = 335544321
	regPortPkts = 369098753
	vsMirror    = 50331649
	floodGroup  = 1
	mirrorID    = 1
	routeGroup  = 1
)

type nexthop struct {
	port uint32
	mac  net.HardwareAddr
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9559", "p4tcd address")
	deviceID := flag.Uint64("device-id", 1, "P4Runtime device id")
	dir := flag.String("pipeline", "examples/ecmp", "folder with ecmp.p4info.txt and ecmp.devcfg (p4tcd pack)")
	route := flag.String("route", "0.0.0.0/0", "the prefix routed over the next hops")
	routerMAC := flag.String("router-mac", "02:00:00:00:00:fe", "source MAC of routed packets")
	var hops []nexthop
	flag.Func("nexthop", "PORT=MAC of a next hop (repeat)", func(s string) error {
		p, m, ok := strings.Cut(s, "=")
		port, err := strconv.ParseUint(p, 10, 32)
		if !ok || err != nil {
			return fmt.Errorf("want PORT=MAC, got %q", s)
		}
		mac, err := net.ParseMAC(m)
		if err != nil {
			return err
		}
		hops = append(hops, nexthop{uint32(port), mac})
		return nil
	})
	flood := flag.String("flood", "", "ports of the broadcast multicast group, comma separated")
	mirror := flag.Uint("mirror", 0, "port that receives mirrored packets (0: none)")
	dports := flag.String("mirror-dport", "", "L4 destination ports to mirror, comma separated")
	police := flag.String("police", "", "PORT=RATE: packets per second allowed in on PORT")
	every := flag.Duration("poll", 5*time.Second, "statistics poll interval")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c, err := connect(ctx, *addr, *deviceID)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.push(ctx, filepath.Join(*dir, "ecmp.p4info.txt"), filepath.Join(*dir, "ecmp.devcfg")); err != nil {
		log.Fatal(err)
	}
	rmac, err := net.ParseMAC(*routerMAC)
	if err != nil {
		log.Fatalf("--router-mac: %v", err)
	}
	pfx, err := netip.ParsePrefix(*route)
	if err != nil {
		log.Fatalf("--route: %v", err)
	}
	if err := c.program(ctx, pfx, hops, rmac, ports(*flood), uint32(*mirror), ports(*dports), *police); err != nil {
		log.Fatal(err)
	}
	log.Printf("programmed: %s over %d next hops", pfx, len(hops))
	c.poll(ctx, *every)
}

func ports(s string) []uint32 {
	var out []uint32
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			log.Fatalf("port list %q: %v", s, err)
		}
		out = append(out, uint32(n))
	}
	return out
}

type controller struct {
	c        p4v1.P4RuntimeClient
	stream   p4v1.P4Runtime_StreamChannelClient
	deviceID uint64
	election *p4v1.Uint128
}

// connect opens the stream and becomes primary.
func connect(ctx context.Context, addr string, deviceID uint64) (*controller, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c := &controller{c: p4v1.NewP4RuntimeClient(conn), deviceID: deviceID, election: &p4v1.Uint128{Low: 1}}
	if c.stream, err = c.c.StreamChannel(ctx); err != nil {
		return nil, err
	}
	if err := c.stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: &p4v1.MasterArbitrationUpdate{
		DeviceId: deviceID, ElectionId: c.election}}}); err != nil {
		return nil, err
	}
	m, err := c.stream.Recv()
	if err != nil {
		return nil, fmt.Errorf("arbitration: %w", err)
	}
	if m.GetArbitration().GetStatus().GetCode() != 0 {
		return nil, fmt.Errorf("not primary: %v", m.GetArbitration().GetStatus())
	}
	return c, nil
}

// push installs the ecmp pipeline.
func (c *controller) push(ctx context.Context, p4infoPath, devcfgPath string) error {
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
		return fmt.Errorf("%w (build it with p4tcd pack)", err)
	}
	_, err = c.c.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: c.deviceID, ElectionId: c.election, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: &info, P4DeviceConfig: dc},
	})
	if err != nil {
		return fmt.Errorf("push ecmp: %w", err)
	}
	return nil
}

func (c *controller) write(ctx context.Context, t p4v1.Update_Type, es ...*p4v1.Entity) error {
	req := &p4v1.WriteRequest{DeviceId: c.deviceID, ElectionId: c.election}
	for _, e := range es {
		req.Updates = append(req.Updates, &p4v1.Update{Type: t, Entity: e})
	}
	_, err := c.c.Write(ctx, req)
	return err
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u16(v uint32) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }

func replicas(ports []uint32) []*p4v1.Replica {
	var out []*p4v1.Replica
	for _, p := range ports {
		out = append(out, &p4v1.Replica{PortKind: &p4v1.Replica_Port{Port: u32(p)}})
	}
	return out
}

func pre(e any) *p4v1.Entity {
	pe := &p4v1.PacketReplicationEngineEntry{}
	switch x := e.(type) {
	case *p4v1.MulticastGroupEntry:
		pe.Type = &p4v1.PacketReplicationEngineEntry_MulticastGroupEntry{MulticastGroupEntry: x}
	case *p4v1.CloneSessionEntry:
		pe.Type = &p4v1.PacketReplicationEngineEntry_CloneSessionEntry{CloneSessionEntry: x}
	}
	return &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: pe}}
}

// program installs the members, the group, the route and the extras.
func (c *controller) program(ctx context.Context, pfx netip.Prefix, hops []nexthop, rmac net.HardwareAddr,
	flood []uint32, mirror uint32, dports []uint32, police string) error {
	var members []*p4v1.Entity
	group := &p4v1.ActionProfileGroup{ActionProfileId: profECMP, GroupId: routeGroup}
	for i, h := range hops {
		id := uint32(i + 1)
		members = append(members, &p4v1.Entity{Entity: &p4v1.Entity_ActionProfileMember{ActionProfileMember: &p4v1.ActionProfileMember{
			ActionProfileId: profECMP, MemberId: id, Action: &p4v1.Action{ActionId: actForward, Params: []*p4v1.Action_Param{
				{ParamId: 1, Value: u32(h.port)}, {ParamId: 2, Value: h.mac}, {ParamId: 3, Value: rmac}}}}}})
		group.Members = append(group.Members, &p4v1.ActionProfileGroup_Member{MemberId: id, Weight: 1,
			WatchKind: &p4v1.ActionProfileGroup_Member_WatchPort{WatchPort: u32(h.port)}})
	}
	if err := c.write(ctx, p4v1.Update_INSERT, members...); err != nil {
		return fmt.Errorf("members: %w", err)
	}
	a := pfx.Addr().As4()
	route := &p4v1.TableEntry{TableId: tblRoute, Action: &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileGroupId{ActionProfileGroupId: routeGroup}}}
	if pfx.Bits() > 0 {
		route.Match = []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{Value: a[:], PrefixLen: int32(pfx.Bits())}}}}
	}
	ents := []*p4v1.Entity{
		{Entity: &p4v1.Entity_ActionProfileGroup{ActionProfileGroup: group}},
		{Entity: &p4v1.Entity_TableEntry{TableEntry: route}},
	}
	if len(flood) > 0 {
		ents = append(ents, pre(&p4v1.MulticastGroupEntry{MulticastGroupId: floodGroup, Replicas: replicas(flood)}))
	}
	if mirror != 0 {
		ents = append(ents, pre(&p4v1.CloneSessionEntry{SessionId: mirrorID, Replicas: replicas([]uint32{mirror})}))
	}
	if err := c.write(ctx, p4v1.Update_INSERT, ents...); err != nil {
		return fmt.Errorf("group, route, PRE: %w", err)
	}
	var mods []*p4v1.Entity
	if len(dports) > 0 {
		vs := &p4v1.ValueSetEntry{ValueSetId: vsMirror}
		for _, p := range dports {
			vs.Members = append(vs.Members, &p4v1.ValueSetMember{Match: []*p4v1.FieldMatch{{FieldId: 1,
				FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: u16(p)}}}}})
		}
		mods = append(mods, &p4v1.Entity{Entity: &p4v1.Entity_ValueSetEntry{ValueSetEntry: vs}})
	}
	if police != "" {
		p, r, ok := strings.Cut(police, "=")
		port, err1 := strconv.ParseInt(p, 10, 64)
		rate, err2 := strconv.ParseInt(r, 10, 64)
		if !ok || err1 != nil || err2 != nil || rate <= 0 {
			return fmt.Errorf("--police: want PORT=RATE, got %q", police)
		}
		burst := max(1, rate/10)
		mods = append(mods, &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{MeterId: mtrPolicer,
			Index: &p4v1.Index{Index: port}, Config: &p4v1.MeterConfig{Cir: rate, Cburst: burst, Pir: rate, Pburst: burst}}}})
	}
	if len(mods) > 0 {
		if err := c.write(ctx, p4v1.Update_MODIFY, mods...); err != nil {
			return fmt.Errorf("value set, policer: %w", err)
		}
	}
	return nil
}

// poll prints, every interval, each route's direct counter (read with the
// table entries, as ONOS polls flows) and the per-port counters and
// register.
func (c *controller) poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stream, err := c.c.Read(ctx, &p4v1.ReadRequest{DeviceId: c.deviceID, Entities: []*p4v1.Entity{
			{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tblRoute, CounterData: &p4v1.CounterData{}}}},
			{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: ctrPorts}}},
			{Entity: &p4v1.Entity_RegisterEntry{RegisterEntry: &p4v1.RegisterEntry{RegisterId: regPortPkts}}},
		}})
		if err != nil {
			log.Printf("read: %v", err)
			continue
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				break
			}
			for _, e := range resp.GetEntities() {
				switch {
				case e.GetTableEntry() != nil:
					te := e.GetTableEntry()
					d := te.GetCounterData()
					log.Printf("route %v: %d packets, %d bytes", te.GetMatch(), d.GetPacketCount(), d.GetByteCount())
				case e.GetCounterEntry() != nil:
					ce := e.GetCounterEntry()
					if d := ce.GetData(); d.GetPacketCount() > 0 {
						log.Printf("port %d: %d packets, %d bytes in", ce.GetIndex().GetIndex(), d.GetPacketCount(), d.GetByteCount())
					}
				case e.GetRegisterEntry() != nil:
					re := e.GetRegisterEntry()
					if v := re.GetData().GetBitstring(); len(v) > 1 || (len(v) == 1 && v[0] != 0) {
						log.Printf("port %d: port_pkts %x", re.GetIndex().GetIndex(), v)
					}
				}
			}
		}
	}
}
