package server

import (
	"context"
	"testing"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func (e *testEnv) setPipelineAction(low uint64, a p4v1.SetForwardingPipelineConfigRequest_Action, cfg *p4v1.ForwardingPipelineConfig) error {
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{
		DeviceId: testDevice, ElectionId: eid(low), Action: a, Config: cfg,
	})
	return err
}

func (e *testEnv) getPipeline(t testing.TB, rt p4v1.GetForwardingPipelineConfigRequest_ResponseType) *p4v1.ForwardingPipelineConfig {
	t.Helper()
	r, err := e.client.GetForwardingPipelineConfig(context.Background(), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: testDevice, ResponseType: rt})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetConfig()
}

// §15 SetForwardingPipelineConfig and GetForwardingPipelineConfig.
func TestPipelineLifecycle(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 1)
	cfg := func(cookie uint64) *p4v1.ForwardingPipelineConfig {
		return &p4v1.ForwardingPipelineConfig{P4Info: e.info, P4DeviceConfig: []byte("opaque bytes"), Cookie: &p4v1.ForwardingPipelineConfig_Cookie{Cookie: cookie}}
	}
	// Get before any Set: OK, no config.
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_ALL); c != nil {
		t.Fatalf("config before Set: %v", c)
	}
	// VERIFY needs a config, checks it and changes nothing.
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY, nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("VERIFY without config: %v", err)
	}
	bad := cfg(1)
	bad.P4Info = proto.Clone(e.info).(*p4configv1.P4Info)
	bad.P4Info.Tables[0].Preamble.Id = bad.P4Info.Actions[0].Preamble.Id
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY, bad); status.Code(err) != codes.InvalidArgument {
		t.Errorf("VERIFY of a broken P4Info: %v", err)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY, cfg(1)); err != nil {
		t.Errorf("VERIFY: %v", err)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_ALL); c != nil {
		t.Fatalf("VERIFY changed the config: %v", c)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_UNSPECIFIED, cfg(1)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("UNSPECIFIED action: %v", err)
	}
	// COMMIT with nothing saved: NOT_FOUND.
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_COMMIT, nil); status.Code(err) != codes.NotFound {
		t.Errorf("COMMIT with nothing saved: %v", err)
	}

	// VERIFY_AND_COMMIT: the cookie round-trips, every response type.
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, cfg(7)); err != nil {
		t.Fatal(err)
	}
	all := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_ALL)
	if all.GetCookie().GetCookie() != 7 || !proto.Equal(all.GetP4Info(), e.info) || string(all.GetP4DeviceConfig()) != "opaque bytes" {
		t.Errorf("ALL: %v", all)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY); c.GetCookie().GetCookie() != 7 || c.GetP4Info() != nil || c.GetP4DeviceConfig() != nil {
		t.Errorf("COOKIE_ONLY: %v", c)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE); c.GetCookie().GetCookie() != 7 || c.GetP4Info() == nil || c.GetP4DeviceConfig() != nil {
		t.Errorf("P4INFO_AND_COOKIE: %v", c)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_DEVICE_CONFIG_AND_COOKIE); c.GetCookie().GetCookie() != 7 || c.GetP4Info() != nil || c.GetP4DeviceConfig() == nil {
		t.Errorf("DEVICE_CONFIG_AND_COOKIE: %v", c)
	}
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1))); err != nil {
		t.Fatal(err)
	}

	// VERIFY_AND_COMMIT again clears forwarding state.
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, cfg(8)); err != nil {
		t.Fatal(err)
	}
	if n := countEntries(t, e); n != 0 {
		t.Errorf("VERIFY_AND_COMMIT kept %d entries", n)
	}

	// VERIFY_AND_SAVE: reads and writes refer to the saved config; COMMIT
	// realises it; COMMIT with a config is refused.
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 1, "actionA", 1))); err != nil {
		t.Fatal(err)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_SAVE, cfg(9)); err != nil {
		t.Fatal(err)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY); c.GetCookie().GetCookie() != 9 {
		t.Errorf("after VERIFY_AND_SAVE, Get answers cookie %d, want the saved 9", c.GetCookie().GetCookie())
	}
	if err := e.write(1, 0, insert(exactEntry(e, "ExactOne", 2, "actionA", 2))); err != nil {
		t.Fatalf("write after VERIFY_AND_SAVE: %v", err)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_COMMIT, cfg(9)); status.Code(err) != codes.InvalidArgument {
		t.Errorf("COMMIT with a config: %v, want INVALID_ARGUMENT", err)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_COMMIT, nil); err != nil {
		t.Fatalf("COMMIT: %v", err)
	}
	if n := countEntries(t, e); n != 1 {
		t.Errorf("after COMMIT: %d entries, want the 1 written since the save", n)
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_COMMIT, nil); status.Code(err) != codes.NotFound {
		t.Errorf("second COMMIT: %v, want NOT_FOUND", err)
	}

	// RECONCILE_AND_COMMIT keeps the entries when the new P4Info can hold
	// them, and refuses (changing nothing) when it cannot.
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, cfg(10)); err != nil {
		t.Fatalf("RECONCILE_AND_COMMIT: %v", err)
	}
	if n := countEntries(t, e); n != 1 {
		t.Errorf("RECONCILE_AND_COMMIT kept %d entries, want 1", n)
	}
	smaller := cfg(11)
	smaller.P4Info = proto.Clone(e.info).(*p4configv1.P4Info)
	for _, tb := range smaller.P4Info.Tables {
		if tb.GetPreamble().GetName() == "ExactOne" {
			tb.MatchFields[0].Bitwidth = 1 // key 2 no longer fits
		}
	}
	if err := e.setPipelineAction(1, p4v1.SetForwardingPipelineConfigRequest_RECONCILE_AND_COMMIT, smaller); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RECONCILE_AND_COMMIT that cannot keep state: %v, want INVALID_ARGUMENT", err)
	}
	if c := e.getPipeline(t, p4v1.GetForwardingPipelineConfigRequest_COOKIE_ONLY); c.GetCookie().GetCookie() != 10 {
		t.Errorf("a refused reconcile changed the config (cookie %d)", c.GetCookie().GetCookie())
	}
}

func TestPipelineNeedsPrimary(t *testing.T) {
	e := newTestEnv(t)
	e.primary(t, 5)
	if err := e.setPipelineAction(4, p4v1.SetForwardingPipelineConfigRequest_VERIFY_AND_COMMIT, &p4v1.ForwardingPipelineConfig{P4Info: e.info}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("non-primary set: %v", err)
	}
	_, err := e.client.SetForwardingPipelineConfig(context.Background(), &p4v1.SetForwardingPipelineConfigRequest{DeviceId: 3, ElectionId: eid(5)})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown device: %v", err)
	}
	_, err = e.client.GetForwardingPipelineConfig(context.Background(), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: 3})
	if status.Code(err) != codes.NotFound {
		t.Errorf("get of unknown device: %v", err)
	}
}
