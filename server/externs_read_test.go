package server

import (
	"context"
	"fmt"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// mustWrite writes updates in one CONTINUE_ON_ERROR batch and fails on any
// error.
func (e *testEnv) mustWrite(t testing.TB, ups ...*p4v1.Update) {
	t.Helper()
	for i := range ups {
		ups[i] = proto.Clone(ups[i]).(*p4v1.Update)
	}
	if err := e.write(1, 0, ups...); err != nil {
		st, _ := status.FromError(err)
		t.Fatalf("write: %v %v", err, st.Details())
	}
}

// read reads with one filter and fails on an error.
func (e *testEnv) read(t testing.TB, filter proto.Message) []*p4v1.Entity {
	t.Helper()
	ents, _, err := e.readAll(t, ent(filter))
	if err != nil {
		t.Fatalf("read %v: %v", prototext.Format(filter), err)
	}
	return ents
}

// readCode reads with one filter and returns the request's code.
func (e *testEnv) readCode(t testing.TB, filter proto.Message) codes.Code {
	t.Helper()
	_, _, err := e.readAll(t, ent(filter))
	if err == nil {
		return codes.OK
	}
	st, _ := status.FromError(err)
	if st.Code() != codes.Unknown || len(st.Details()) != 1 {
		t.Fatalf("read error %v", err)
	}
	return codes.Code(st.Details()[0].(*p4v1.Error).GetCanonicalCode())
}

// sameEntities compares read entities with the wanted messages as sets.
func sameEntities(t testing.TB, what string, got []*p4v1.Entity, want ...proto.Message) {
	t.Helper()
	render := func(m proto.Message) string { return prototext.MarshalOptions{}.Format(m) }
	g := make([]string, len(got))
	for i, x := range got {
		g[i] = render(x)
	}
	w := make([]string, len(want))
	for i, x := range want {
		w[i] = render(ent(x))
	}
	sortStrings(g)
	sortStrings(w)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Errorf("%s: read\n%s\nwant\n%s", what, g, w)
	}
}

// Read-write symmetry (§8.4): every extern reads back as written, in
// canonical form; one-shot entries read back un-desugared.
func TestExternReadBack(t *testing.T) {
	e := newExternEnv(t, nil)
	port := func(p uint64) *p4v1.Action { return e.action("set_port", canon(p)) }

	t.Run("members and groups", func(t *testing.T) {
		e.mustWrite(t,
			ins(e.member("sel", 1, e.action("set_port", []byte{0, 0, 1}))), // padded: reads back canonical
			ins(e.member("sel", 2, e.action("set_nhop", canon(2), canon(0xaabbcc)))),
			ins(e.group("sel", 10, 6, gmPort(1, 2, []byte{0, 0, 0, 7}), gmWatch(2, 3, 5))),
			ins(e.group("sel", 11, 0)),
			ins(e.member("prof", 1, port(9))),
		)
		m1 := e.member("sel", 1, port(1))
		m2 := e.member("sel", 2, e.action("set_nhop", canon(2), canon(0xaabbcc)))
		g10 := e.group("sel", 10, 6, gmPort(1, 2, []byte{7}), gmWatch(2, 3, 5))
		g11 := e.group("sel", 11, 0)
		sameEntities(t, "all members", e.read(t, &p4v1.ActionProfileMember{}), m1, m2, e.member("prof", 1, port(9)))
		sameEntities(t, "members of sel", e.read(t, &p4v1.ActionProfileMember{ActionProfileId: e.id("sel")}), m1, m2)
		sameEntities(t, "member 2", e.read(t, &p4v1.ActionProfileMember{ActionProfileId: e.id("sel"), MemberId: 2}), m2)
		sameEntities(t, "absent member", e.read(t, &p4v1.ActionProfileMember{ActionProfileId: e.id("sel"), MemberId: 3}))
		sameEntities(t, "all groups", e.read(t, &p4v1.ActionProfileGroup{}), g10, g11)
		sameEntities(t, "group 10", e.read(t, &p4v1.ActionProfileGroup{ActionProfileId: e.id("sel"), GroupId: 10}), g10)
		if c := e.readCode(t, &p4v1.ActionProfileGroup{ActionProfileId: e.id("prof")}); c != codes.InvalidArgument {
			t.Errorf("groups of a profile without selector: %v, want INVALID_ARGUMENT", c)
		}
		e.mustWrite(t, ins(e.te("t_sel", lpm(1, canon(0x0a000000), 8), groupRef(10))), ins(e.te("t_sel", lpm(1, canon(0x0b000000), 8), memberRef(2))))
		sameEntities(t, "entries by group", e.read(t, &p4v1.TableEntry{TableId: e.id("t_sel"), Action: groupRef(10)}), e.te("t_sel", lpm(1, canon(0x0a000000), 8), groupRef(10)))
	})

	t.Run("one-shot", func(t *testing.T) {
		set := oneShot(
			&p4v1.ActionProfileAction{Action: port(1), Weight: 1, WatchKind: &p4v1.ActionProfileAction_WatchPort{WatchPort: []byte{7}}},
			&p4v1.ActionProfileAction{Action: port(1), Weight: 1, WatchKind: &p4v1.ActionProfileAction_WatchPort{WatchPort: []byte{7}}}, // not coalesced
			&p4v1.ActionProfileAction{Action: port(2), Weight: 2, WatchKind: &p4v1.ActionProfileAction_Watch{Watch: 3}},
		)
		written := e.te("t_sel_m", exact(1, canon(1)), set)
		e.mustWrite(t, ins(written))
		sameEntities(t, "one-shot entry", e.read(t, &p4v1.TableEntry{TableId: e.id("t_sel_m")}), written)
		sameEntities(t, "hidden members", e.read(t, &p4v1.ActionProfileMember{ActionProfileId: e.id("sel_m")}))
		sameEntities(t, "hidden groups", e.read(t, &p4v1.ActionProfileGroup{ActionProfileId: e.id("sel_m")}))
		next := e.te("t_sel_m", exact(1, canon(1)), oneShot(osa(port(3), 4)))
		e.mustWrite(t, mod(next))
		sameEntities(t, "modified one-shot entry", e.read(t, &p4v1.TableEntry{TableId: e.id("t_sel_m")}), next)
		// MODIFY without action keeps the set.
		e.mustWrite(t, mod(e.te("t_sel_m", exact(1, canon(1)), nil)))
		sameEntities(t, "kept one-shot entry", e.read(t, &p4v1.TableEntry{TableId: e.id("t_sel_m")}), next)
		// The selector's room came back: 3 + 3 one-shot actions fit its 6.
		e.mustWrite(t, ins(e.te("t_sel_m", exact(1, canon(2)), oneShot(osa(port(1), 1), osa(port(1), 1), osa(port(1), 1)))),
			ins(e.te("t_sel_m", exact(1, canon(3)), oneShot(osa(port(1), 1), osa(port(1), 1)))))
		e.mustWrite(t, rm(e.te("t_sel_m", exact(1, canon(1)), nil)), rm(e.te("t_sel_m", exact(1, canon(2)), nil)), rm(e.te("t_sel_m", exact(1, canon(3)), nil)))
		e.mustWrite(t, ins(e.member("sel_m", 1, port(1)))) // no one-shot left: members allowed
	})

	t.Run("direct counter and meter", func(t *testing.T) {
		key := exact(1, canon(1))
		w := e.te("t_direct", key, direct(port(1)))
		w.CounterData, w.MeterConfig = cdata(500, 5), mcfg(1, 2, 3, 4, 0)
		e.mustWrite(t, insert(w))
		plain := e.te("t_direct", key, direct(port(1)))
		sameEntities(t, "entry without direct resources requested", e.read(t, &p4v1.TableEntry{TableId: e.id("t_direct")}), plain)
		sameEntities(t, "entry with both requested", e.read(t, &p4v1.TableEntry{TableId: e.id("t_direct"), CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}), w)
		// §9.1.6: MODIFY without counter_data keeps the counter, without
		// meter_config resets the meter (which then reads back unset).
		e.mustWrite(t, modify(e.te("t_direct", key, direct(port(2)))))
		want := e.te("t_direct", key, direct(port(2)))
		want.CounterData = cdata(500, 5)
		sameEntities(t, "after modify", e.read(t, &p4v1.TableEntry{TableId: e.id("t_direct"), CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}), want)
		keyOnly := &p4v1.TableEntry{TableId: e.id("t_direct"), Match: []*p4v1.FieldMatch{key}}
		sameEntities(t, "direct counter entry", e.read(t, &p4v1.DirectCounterEntry{TableEntry: keyOnly}), &p4v1.DirectCounterEntry{TableEntry: keyOnly, Data: cdata(500, 5)})
		sameEntities(t, "direct meter entry", e.read(t, &p4v1.DirectMeterEntry{TableEntry: keyOnly}), &p4v1.DirectMeterEntry{TableEntry: keyOnly})
		e.mustWrite(t, mod(&p4v1.DirectMeterEntry{TableEntry: keyOnly, Config: mcfg(10, 20, 30, 40, 0)}), mod(&p4v1.DirectCounterEntry{TableEntry: keyOnly, Data: cdata(0, 0)}))
		want.CounterData, want.MeterConfig = cdata(0, 0), mcfg(10, 20, 30, 40, 0)
		sameEntities(t, "after direct writes", e.read(t, &p4v1.TableEntry{TableId: e.id("t_direct"), CounterData: &p4v1.CounterData{}, MeterConfig: &p4v1.MeterConfig{}}), want)
		e.mustWrite(t, mod(&p4v1.DirectCounterEntry{TableEntry: keyOnly})) // no data: no change
		// The default entry has its cells too.
		dk := &p4v1.TableEntry{TableId: e.id("t_direct"), IsDefaultAction: true}
		e.mustWrite(t, mod(&p4v1.DirectCounterEntry{TableEntry: dk, Data: cdata(1, 1)}))
		sameEntities(t, "default entry counter", e.read(t, &p4v1.DirectCounterEntry{TableEntry: dk}), &p4v1.DirectCounterEntry{TableEntry: dk, Data: cdata(1, 1)})
		// ONOS's poll: table_id 0 with counter_data; only tables with a
		// direct counter carry it.
		e.mustWrite(t, insert(e.te("t_srtcm", exact(1, canon(1)), direct(port(1)))))
		for _, x := range e.read(t, &p4v1.TableEntry{CounterData: &p4v1.CounterData{}}) {
			te := x.GetTableEntry()
			if (te.GetCounterData() != nil) != (te.GetTableId() == e.id("t_direct")) {
				t.Errorf("table %#x entry: counter_data %v", te.GetTableId(), te.GetCounterData())
			}
		}
		// Wildcards of DirectCounterEntry: by table, all tables, missing.
		e.mustWrite(t, insert(e.te("t_direct", exact(1, canon(2)), direct(port(1)))))
		if n := len(e.read(t, &p4v1.DirectCounterEntry{TableEntry: &p4v1.TableEntry{TableId: e.id("t_direct")}})); n != 2 {
			t.Errorf("direct counters of t_direct: %d, want 2", n)
		}
		if n := len(e.read(t, &p4v1.DirectCounterEntry{})); n != 2 {
			t.Errorf("direct counters of every table: %d, want 2", n)
		}
		if n := len(e.read(t, &p4v1.DirectMeterEntry{TableEntry: &p4v1.TableEntry{}})); n != 3 {
			t.Errorf("direct meters of every table: %d, want 3", n)
		}
		missing := &p4v1.TableEntry{TableId: e.id("t_direct"), Match: []*p4v1.FieldMatch{exact(1, canon(9))}}
		if c := e.readCode(t, &p4v1.DirectCounterEntry{TableEntry: missing}); c != codes.NotFound {
			t.Errorf("direct counter of a missing entry: %v, want NOT_FOUND", c)
		}
		if c := e.readCode(t, &p4v1.DirectCounterEntry{TableEntry: &p4v1.TableEntry{TableId: e.id("t_srtcm")}}); c != codes.InvalidArgument {
			t.Errorf("direct counters of a table without: %v, want INVALID_ARGUMENT", c)
		}
		if c := e.readCode(t, &p4v1.TableEntry{MeterCounterData: &p4v1.MeterCounterData{}}); c != codes.Unimplemented {
			t.Errorf("meter_counter_data read: %v, want UNIMPLEMENTED", c)
		}
	})

	t.Run("counters", func(t *testing.T) {
		e.mustWrite(t, mod(e.counter("c_pkts", nil, cdata(0, 7))), mod(e.counter("c_pkts", ix(3), cdata(0, 9))),
			mod(e.counter("c_bytes", ix(0), cdata(1500, 0))), mod(e.counter("c_both", ix(1), cdata(64, 1))))
		var want []proto.Message
		for i := range int64(8) {
			v := cdata(0, 7)
			if i == 3 {
				v = cdata(0, 9)
			}
			want = append(want, e.counter("c_pkts", ix(i), v))
		}
		sameEntities(t, "c_pkts", e.read(t, e.counter("c_pkts", nil, nil)), want...)
		sameEntities(t, "c_pkts[3]", e.read(t, e.counter("c_pkts", ix(3), nil)), e.counter("c_pkts", ix(3), cdata(0, 9)))
		sameEntities(t, "c_bytes[0]", e.read(t, e.counter("c_bytes", ix(0), nil)), e.counter("c_bytes", ix(0), cdata(1500, 0)))
		sameEntities(t, "c_both[1]", e.read(t, e.counter("c_both", ix(1), nil)), e.counter("c_both", ix(1), cdata(64, 1)))
		if n := len(e.read(t, &p4v1.CounterEntry{})); n != 16 {
			t.Errorf("every counter cell: %d, want 16", n)
		}
		if c := e.readCode(t, e.counter("c_pkts", ix(8), nil)); c != codes.OutOfRange {
			t.Errorf("read beyond the array: %v, want OUT_OF_RANGE", c)
		}
		if c := e.readCode(t, &p4v1.CounterEntry{Index: ix(1)}); c != codes.InvalidArgument {
			t.Errorf("counter_id 0 with index: %v, want INVALID_ARGUMENT", c)
		}
	})

	t.Run("meters", func(t *testing.T) {
		e.mustWrite(t, mod(e.meter("m_tr", nil, mcfg(1, 1, 2, 2, 0))), mod(e.meter("m_tr", ix(1), mcfg(100, 10, 200, 20, 0))),
			mod(e.meter("m_tr", ix(2), nil)), mod(e.meter("m_sr", ix(0), mcfg(5, 6, 5, 6, 7))))
		sameEntities(t, "m_tr", e.read(t, e.meter("m_tr", nil, nil)),
			e.meter("m_tr", ix(0), mcfg(1, 1, 2, 2, 0)), e.meter("m_tr", ix(1), mcfg(100, 10, 200, 20, 0)),
			e.meter("m_tr", ix(2), nil), e.meter("m_tr", ix(3), mcfg(1, 1, 2, 2, 0)))
		sameEntities(t, "m_sr[0]", e.read(t, e.meter("m_sr", ix(0), nil)), e.meter("m_sr", ix(0), mcfg(5, 6, 5, 6, 7)))
		sameEntities(t, "m_sr[1] default", e.read(t, e.meter("m_sr", ix(1), nil)), e.meter("m_sr", ix(1), nil))
		if n := len(e.read(t, &p4v1.MeterEntry{})); n != 8 {
			t.Errorf("every meter cell: %d, want 8", n)
		}
		if c := e.readCode(t, &p4v1.MeterEntry{MeterId: e.id("m_tr"), CounterData: &p4v1.MeterCounterData{}}); c != codes.Unimplemented {
			t.Errorf("meter counter_data read: %v, want UNIMPLEMENTED", c)
		}
	})

	t.Run("registers", func(t *testing.T) {
		wide := append([]byte{0x0f}, make([]byte, 12)...)
		wide[12] = 1
		e.mustWrite(t, mod(e.reg("r_bit", nil, bitsData(canon(7)))), mod(e.reg("r_bit", ix(2), bitsData([]byte{0, 0, 0x0f, 0xff}))),
			mod(e.reg("r_wide", ix(1), bitsData(wide))), mod(e.reg("r_int", ix(0), bitsData([]byte{0xff, 0xff, 0x80}))),
			mod(e.reg("r_int", ix(1), bitsData([]byte{0xff}))), mod(e.reg("r_bool", ix(1), boolData(true))))
		sameEntities(t, "r_bit", e.read(t, e.reg("r_bit", nil, nil)),
			e.reg("r_bit", ix(0), bitsData([]byte{7})), e.reg("r_bit", ix(1), bitsData([]byte{7})),
			e.reg("r_bit", ix(2), bitsData([]byte{0x0f, 0xff})), e.reg("r_bit", ix(3), bitsData([]byte{7})))
		sameEntities(t, "r_wide", e.read(t, e.reg("r_wide", nil, nil)), e.reg("r_wide", ix(0), bitsData([]byte{0})), e.reg("r_wide", ix(1), bitsData(wide)))
		sameEntities(t, "r_int", e.read(t, e.reg("r_int", nil, nil)), e.reg("r_int", ix(0), bitsData([]byte{0x80})), e.reg("r_int", ix(1), bitsData([]byte{0xff})))
		sameEntities(t, "r_bool", e.read(t, e.reg("r_bool", nil, nil)), e.reg("r_bool", ix(0), boolData(false)), e.reg("r_bool", ix(1), boolData(true)))
		if n := len(e.read(t, &p4v1.RegisterEntry{})); n != 10 {
			t.Errorf("every register cell (struct register skipped): %d, want 10", n)
		}
		if c := e.readCode(t, e.reg("r_struct", nil, nil)); c != codes.Unimplemented {
			t.Errorf("struct register read: %v, want UNIMPLEMENTED", c)
		}
	})

	t.Run("packet replication", func(t *testing.T) {
		g := &p4v1.MulticastGroupEntry{MulticastGroupId: 7, Metadata: []byte("\xffopaque"), Replicas: []*p4v1.Replica{
			repE(1, 1), repP([]byte{0, 0, 2}, 1, backup([]byte{0, 9}, 3), backup([]byte{8}, 3)), repE(2, 2)}}
		c := cloneS(100, 2, 4096, repP([]byte{0xff, 0xff, 0xff, 0xfd}, 1))
		e.mustWrite(t, ins(g), ins(mcast(8, repE(3, 0))), ins(c))
		wantG := &p4v1.MulticastGroupEntry{MulticastGroupId: 7, Metadata: []byte("\xffopaque"), Replicas: []*p4v1.Replica{
			repE(1, 1), repP([]byte{2}, 1, backup([]byte{9}, 3), backup([]byte{8}, 3)), repE(2, 2)}}
		sameEntities(t, "group 7", e.read(t, mcast(7)), wantG)
		got := e.read(t, mcast(7))[0].GetPacketReplicationEngineEntry().GetMulticastGroupEntry()
		if b := got.GetReplicas()[1].GetBackupReplicas(); len(b) != 2 || b[0].GetPort()[0] != 9 {
			t.Errorf("backup replicas out of order: %v", b)
		}
		sameEntities(t, "all groups", e.read(t, mcast(0)), wantG, mcast(8, repE(3, 0)))
		sameEntities(t, "clone 100", e.read(t, cloneS(100, 0, 0)), c)
		sameEntities(t, "all clones", e.read(t, cloneS(0, 0, 0)), c)
		e.mustWrite(t, mod(mcast(8, repP([]byte{4}, 1))), rm(mcast(7)))
		sameEntities(t, "after modify and delete", e.read(t, mcast(0)), mcast(8, repP([]byte{4}, 1)))
	})

	t.Run("value sets", func(t *testing.T) {
		e.mustWrite(t, mod(e.vset("vs_eth", vsm(exact(1, canon(0x893b))), vsm(exact(1, []byte{0, 0x22, 0xf3})))))
		want := e.vset("vs_eth", vsm(exact(1, canon(0x893b))), vsm(exact(1, canon(0x22f3))))
		sameEntities(t, "vs_eth", e.read(t, e.vset("vs_eth")), want)
		sameEntities(t, "every value set", e.read(t, &p4v1.ValueSetEntry{}), want, e.vset("vs_tern"))
		if c := e.readCode(t, e.vset("vs_eth", vsm(exact(1, canon(1))))); c != codes.InvalidArgument {
			t.Errorf("value set read with members: %v, want INVALID_ARGUMENT", c)
		}
		e.mustWrite(t, mod(e.vset("vs_eth")))
		sameEntities(t, "cleared vs_eth", e.read(t, e.vset("vs_eth")), e.vset("vs_eth"))
	})

	t.Run("digests", func(t *testing.T) {
		sameEntities(t, "no digest enabled", e.read(t, &p4v1.DigestEntry{}))
		e.mustWrite(t, ins(e.digest("learn_t", dcfg(1e6, 16, 2e9))))
		sameEntities(t, "enabled", e.read(t, &p4v1.DigestEntry{}), e.digest("learn_t", dcfg(1e6, 16, 2e9)))
		e.mustWrite(t, mod(e.digest("learn_t", dcfg(0, 1, 0))))
		sameEntities(t, "modified", e.read(t, e.digest("learn_t", nil)), e.digest("learn_t", dcfg(0, 1, 0)))
		if c, ok := e.srv.Device().Digest(e.id("learn_t")); !ok || c.MaxListSize != 1 {
			t.Errorf("Device.Digest = %+v, %v", c, ok)
		}
		e.mustWrite(t, rm(e.digest("learn_t", nil)))
		sameEntities(t, "disabled", e.read(t, &p4v1.DigestEntry{}))
	})
}

// externBatch touches every kind of entity; its last update fails.
func externBatch(e *testEnv) []*p4v1.Update {
	port := func(p uint64) *p4v1.Action { return e.action("set_port", canon(p)) }
	return []*p4v1.Update{
		ins(e.member("sel", 1, port(1))),
		ins(e.member("sel", 2, port(2))),
		ins(e.group("sel", 1, 0, gm(1, 1), gm(2, 1))),
		ins(e.te("t_sel", lpm(1, canon(0x0a000000), 8), groupRef(1))),
		ins(e.te("t_sel_m", exact(1, canon(1)), oneShot(osa(port(1), 1), osa(port(2), 1)))),
		mod(e.member("prof", 1, port(5))), // modifies the setup member
		rm(e.te("t_prof", exact(1, canon(1)), nil)),
		mod(&p4v1.DirectCounterEntry{TableEntry: e.te("t_direct", exact(1, canon(1)), nil), Data: cdata(9, 9)}),
		mod(&p4v1.DirectMeterEntry{TableEntry: e.te("t_direct", exact(1, canon(1)), nil), Config: mcfg(1, 1, 1, 1, 0)}),
		mod(e.counter("c_pkts", nil, cdata(0, 3))),
		mod(e.counter("c_both", ix(2), cdata(3, 3))),
		mod(e.meter("m_tr", ix(1), mcfg(5, 5, 6, 6, 0))),
		mod(e.reg("r_bit", nil, bitsData(canon(3)))),
		mod(e.reg("r_bool", ix(0), boolData(true))),
		ins(mcast(1, repE(1, 1))),
		mod(mcast(2, repE(3, 1))),
		ins(cloneS(1, 0, 0, repE(1, 1))),
		mod(e.vset("vs_eth", vsm(exact(1, canon(0x88cc))))),
		ins(e.digest("learn_t", dcfg(1, 1, 1))),
		ins(e.member("sel_m", 9, port(1))), // mixing into one-shots: fails
	}
}

func externSetup(e *testEnv) []*p4v1.Update {
	port := func(p uint64) *p4v1.Action { return e.action("set_port", canon(p)) }
	return []*p4v1.Update{
		ins(e.member("prof", 1, port(1))),
		ins(e.te("t_prof", exact(1, canon(1)), memberRef(1))),
		insert(e.te("t_direct", exact(1, canon(1)), direct(port(1)))),
		ins(mcast(2, repE(2, 1))),
		mod(e.counter("c_pkts", ix(1), cdata(0, 1))),
	}
}

// ROLLBACK_ON_ERROR and DATAPLANE_ATOMIC undo every kind of change when a
// later update fails, and apply them all when none does.
func TestExternRollbackAcrossKinds(t *testing.T) {
	for _, at := range []p4v1.WriteRequest_Atomicity{p4v1.WriteRequest_ROLLBACK_ON_ERROR, p4v1.WriteRequest_DATAPLANE_ATOMIC} {
		t.Run(at.String(), func(t *testing.T) {
			e := newExternEnv(t, nil)
			e.mustWrite(t, externSetup(e)...)
			before := allState(t, e)
			batch := externBatch(e)
			err := e.write(1, at, batch...)
			ds := details(t, err)
			for i, d := range ds {
				want := codes.Aborted
				if i == len(batch)-1 {
					want = codes.InvalidArgument
				}
				if got := codes.Code(d.GetCanonicalCode()); got != want {
					t.Errorf("update %d: %v (%s), want %v", i, got, d.GetMessage(), want)
				}
			}
			if after := allState(t, e); after != before {
				t.Fatalf("the failed batch left a trace:\nbefore %s\nafter  %s", before, after)
			}
			// References were restored too: the setup entry still uses
			// member 1, and the undone one-shot entry left no mark on
			// sel_m.
			if ds := details(t, e.write(1, 0, rm(e.member("prof", 1, nil)))); codes.Code(ds[0].GetCanonicalCode()) != codes.FailedPrecondition {
				t.Errorf("delete of a member in use after the rollback: %v", ds[0])
			}
			e.mustWrite(t, ins(e.member("sel_m", 9, e.action("set_port", canon(1)))))
			e.mustWrite(t, rm(e.member("sel_m", 9, nil)))
			batch = externBatch(e)
			if err := e.write(1, at, batch[:len(batch)-1]...); err != nil {
				t.Fatalf("the batch without its bad update: %v", err)
			}
			if allState(t, e) == before {
				t.Fatal("the good batch changed nothing")
			}
		})
	}
}

// plainBackend is a datapath without extern support: the Backend methods
// only.
type plainBackend struct{ translator.Backend }

// A backend without externs makes extern writes and reads UNIMPLEMENTED per
// update; table entries of tables with direct counters still read (without
// counter_data), and digest configs, which are control-plane state, work.
func TestExternUnsupportedBackend(t *testing.T) {
	e := newExternEnv(t, plainBackend{translator.NewNoneBackend()})
	port := e.action("set_port", canon(1))
	unimpl := []*p4v1.Update{
		ins(e.member("prof", 1, port)),
		ins(e.group("sel", 1, 0)),
		ins(e.te("t_prof", exact(1, canon(1)), memberRef(1))),
		ins(e.te("t_sel", lpm(1, canon(0x0a000000), 8), oneShot(osa(port, 1)))),
		mod(e.counter("c_pkts", ix(1), cdata(0, 1))),
		mod(e.meter("m_tr", ix(1), nil)),
		mod(e.reg("r_bit", ix(1), bitsData(canon(1)))),
		ins(mcast(1, repE(1, 1))),
		ins(cloneS(1, 0, 0, repE(1, 1))),
		mod(e.vset("vs_eth")),
		insert(with2(e.te("t_direct", exact(1, canon(1)), direct(port)), func(te *p4v1.TableEntry) { te.CounterData = cdata(1, 1) })),
		insert(with2(e.te("t_direct", exact(1, canon(1)), direct(port)), func(te *p4v1.TableEntry) { te.MeterConfig = mcfg(1, 1, 1, 1, 0) })),
	}
	for i, u := range unimpl {
		ds := details(t, e.write(1, 0, u))
		if got := codes.Code(ds[0].GetCanonicalCode()); got != codes.Unimplemented {
			t.Errorf("update %d: %v (%s), want UNIMPLEMENTED", i, got, ds[0].GetMessage())
		}
	}
	e.mustWrite(t, insert(e.te("t_direct", exact(1, canon(1)), direct(port))), ins(e.digest("learn_t", dcfg(0, 1, 0))))
	for _, x := range e.read(t, &p4v1.TableEntry{CounterData: &p4v1.CounterData{}}) {
		if x.GetTableEntry().GetCounterData() != nil {
			t.Errorf("counter_data from a datapath that does not count: %v", x)
		}
	}
	for _, f := range []proto.Message{&p4v1.CounterEntry{}, &p4v1.DirectCounterEntry{}, &p4v1.ActionProfileMember{}, &p4v1.RegisterEntry{}, mcast(0)} {
		if c := e.readCode(t, f); c != codes.Unimplemented {
			t.Errorf("read %T: %v, want UNIMPLEMENTED", f, c)
		}
	}
	if n := len(e.read(t, &p4v1.DigestEntry{})); n != 1 {
		t.Errorf("digest configs: %d, want 1", n)
	}
}

// A role restricted to listed P4 objects writes and reads only those
// externs, and not the packet replication engine.
func TestExternRoleScope(t *testing.T) {
	e := newExternEnv(t, nil)
	r := e.openStream(t)
	cfg := &p4tcdv1.RoleConfig{ExclusiveP4Ids: []uint32{e.id("prof"), e.id("c_pkts")}}
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: testDevice, ElectionId: eid(1), Role: &p4v1.Role{Name: "app", Config: mustAny(t, cfg)}}
	if err := r.s.Send(&p4v1.StreamMessageRequest{Update: &p4v1.StreamMessageRequest_Arbitration{Arbitration: upd}}); err != nil {
		t.Fatal(err)
	}
	r.next()
	e.mustWrite(t, ins(e.member("sel", 1, e.action("set_port", canon(1)))), mod(e.counter("c_both", ix(0), cdata(1, 1))))
	appWrite := func(u *p4v1.Update) codes.Code {
		_, err := e.client.Write(context.Background(), &p4v1.WriteRequest{DeviceId: testDevice, Role: "app", ElectionId: eid(1), Updates: []*p4v1.Update{u}})
		if err == nil {
			return codes.OK
		}
		return codes.Code(details(t, err)[0].GetCanonicalCode())
	}
	port := e.action("set_port", canon(1))
	for _, tc := range []struct {
		u    *p4v1.Update
		want codes.Code
	}{
		{ins(e.member("prof", 1, port)), codes.OK},
		{mod(e.counter("c_pkts", ix(1), cdata(0, 1))), codes.OK},
		{ins(e.member("sel", 2, port)), codes.PermissionDenied},
		{mod(e.counter("c_both", ix(1), cdata(0, 1))), codes.PermissionDenied},
		{ins(mcast(1, repE(1, 1))), codes.PermissionDenied},
		{ins(e.digest("learn_t", dcfg(0, 1, 0))), codes.PermissionDenied},
	} {
		if got := appWrite(tc.u); got != tc.want {
			t.Errorf("role app %v: %v, want %v", prototext.Format(tc.u.GetEntity()), got, tc.want)
		}
	}
	appRead := func(f proto.Message) int {
		rc, err := e.client.Read(context.Background(), &p4v1.ReadRequest{DeviceId: testDevice, Role: "app", Entities: []*p4v1.Entity{ent(f)}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			resp, err := rc.Recv()
			if err != nil {
				return n
			}
			n += len(resp.GetEntities())
		}
	}
	if n := appRead(&p4v1.ActionProfileMember{}); n != 1 {
		t.Errorf("role app sees %d members, want 1 (its profile's)", n)
	}
	if n := appRead(&p4v1.CounterEntry{}); n != 8 {
		t.Errorf("role app sees %d counter cells, want c_pkts's 8", n)
	}
}
