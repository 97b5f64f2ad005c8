// Command quickstart is a minimal P4Runtime controller for p4tcd: it becomes
// primary, pushes a pipeline (PI's simple_router P4Info), installs a few
// routes, reads them back and shows the spec's error reporting on a
// duplicate. It needs only a running p4tcd (any --datapath).
//
//	p4tcd --datapath none &
//	go run ./examples/quickstart --addr 127.0.0.1:9559
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9559", "p4tcd address")
	deviceID := flag.Uint64("device-id", 1, "P4Runtime device id")
	p4infoPath := flag.String("p4info", "examples/quickstart/simple_router.p4info.txt", "P4Info text file")
	flag.Parse()
	if err := run(*addr, *deviceID, *p4infoPath); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, deviceID uint64, p4infoPath string) error {
	b, err := os.ReadFile(p4infoPath)
	if err != nil {
		return err
	}
	var info p4configv1.P4Info
	if err := prototext.Unmarshal(b, &info); err != nil {
		return fmt.Errorf("parse %s: %w", p4infoPath, err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := p4v1.NewP4RuntimeClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	caps, err := c.Capabilities(ctx, &p4v1.CapabilitiesRequest{})
	if err != nil {
		return fmt.Errorf("capabilities: %w", err)
	}
	fmt.Println("p4tcd speaks P4Runtime", caps.GetP4RuntimeApiVersion())

	// Become primary: open the stream and send an arbitration update.
	stream, err := c.StreamChannel(ctx)
	if err != nil {
		return err
	}
	election := &p4v1.Uint128{Low: 1}
	if err := stream.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{
		Arbitration: &p4v1.MasterArbitrationUpdate{DeviceId: deviceID, ElectionId: election}}}); err != nil {
		return err
	}
	resp, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("arbitration: %w", err)
	}
	fmt.Println("arbitration:", resp.GetArbitration().GetStatus().GetMessage())

	if _, err := c.SetForwardingPipelineConfig(ctx, &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: deviceID, ElectionId: election, Action: p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT,
		Config: &p4v1.ForwardingPipelineConfig{P4Info: &info, Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: 1}},
	}); err != nil {
		return fmt.Errorf("set pipeline: %w", err)
	}
	fmt.Println("pipeline pushed:", len(info.GetTables()), "tables")

	ids := map[string]uint32{}
	for _, t := range info.GetTables() {
		ids[t.GetPreamble().GetName()] = t.GetPreamble().GetId()
	}
	for _, a := range info.GetActions() {
		ids[a.GetPreamble().GetName()] = a.GetPreamble().GetId()
	}
	route := func(a, b, c2 byte, plen int32, port byte) *p4v1.Update {
		return &p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: ids["ipv4_lpm"],
			Match: []*p4v1.FieldMatch{{FieldId: 1, FieldMatchType: &p4v1.FieldMatch_Lpm{Lpm: &p4v1.FieldMatch_LPM{
				Value: []byte{a, b, c2, 0}, PrefixLen: plen}}}},
			Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: ids["set_nhop"],
				Params: []*p4v1.Action_Param{{ParamId: 1, Value: []byte{a, b, c2, 1}}, {ParamId: 2, Value: []byte{port}}}}}},
		}}}}
	}
	w := &p4v1.WriteRequest{DeviceId: deviceID, ElectionId: election,
		Updates: []*p4v1.Update{route(10, 0, 1, 24, 1), route(10, 0, 2, 24, 2), route(10, 1, 0, 16, 3)}}
	if _, err := c.Write(ctx, w); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Println("installed", len(w.Updates), "routes")

	// Writing the same batch again fails per update: UNKNOWN at the top,
	// one p4.v1.Error per update in the details (P4Runtime §12.5).
	_, err = c.Write(ctx, w)
	for i, d := range status.Convert(err).Details() {
		if pe, ok := d.(*p4v1.Error); ok {
			fmt.Printf("  again, update %d: %s\n", i, pe.GetMessage())
		}
	}

	rc, err := c.Read(ctx, &p4v1.ReadRequest{DeviceId: deviceID, Entities: []*p4v1.Entity{
		{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: ids["ipv4_lpm"]}}}}})
	if err != nil {
		return err
	}
	for {
		r, err := rc.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for _, e := range r.GetEntities() {
			m := e.GetTableEntry().GetMatch()[0].GetLpm()
			fmt.Printf("  route %d.%d.%d.%d/%d\n", m.GetValue()[0], m.GetValue()[1], m.GetValue()[2], m.GetValue()[3], m.GetPrefixLen())
		}
	}
	return nil
}
