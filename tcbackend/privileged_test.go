package tcbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
	"github.com/p4tcd/p4tcd/translator/translatortest"
)

// These tests drive the real Backend against the stand-in for a P4TC
// kernel (standin_test.go) over NETLINK_USERSOCK in a network namespace of
// their own. They need root (namespaces), hence TestPrivileged.

// newStandInBackend starts a stand-in for abi and a Backend on it, both
// released at cleanup.
func newStandInBackend(t *testing.T, abi ABI) (*standIn, *Backend, *testutil.NetNS) {
	t.Helper()
	ns := testutil.NewNetNS(t)
	s := newStandIn(t, ns, abi)
	o := s.options(ns)
	o.Timeout = 5 * time.Second
	b, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	if b.ABI() != abi {
		t.Fatalf("probed ABI %v, stand-in speaks %v", b.ABI(), abi)
	}
	return s, b, ns
}

func TestPrivilegedProbe(t *testing.T) {
	testutil.Privileged(t)
	for _, tc := range []struct {
		name  string
		abi   ABI
		stock bool
	}{
		{"stock kernel", ABISeries1, true},
		{"series1", ABISeries1, false},
		{"lk13", ABILK13, false},
		{"v17", ABIV17, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := testutil.NewNetNS(t)
			s := newStandIn(t, ns, tc.abi)
			s.set(func(s *standIn) { s.stock = tc.stock })
			err := Probe(s.options(ns))
			if tc.stock {
				if !errors.Is(err, ErrNotSupported) {
					t.Fatalf("Probe on a stock kernel: %v, want ErrNotSupported", err)
				}
				if _, err := New(s.options(ns)); !errors.Is(err, ErrNotSupported) {
					t.Fatalf("New on a stock kernel: %v, want ErrNotSupported", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			b, err := New(s.options(ns))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			if b.ABI() != tc.abi {
				t.Errorf("detected %v, want %v", b.ABI(), tc.abi)
			}
			// A forced ABI is taken as given.
			o := s.options(ns)
			o.ABI = ABILK13
			b2, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b2.Close() })
			if b2.ABI() != ABILK13 {
				t.Errorf("forced lk13, got %v", b2.ABI())
			}
		})
	}
}

// TestPrivilegedLifecycle commits a pipeline, writes, reads back, modifies,
// dumps, deletes and flushes, for every ABI.
func TestPrivilegedLifecycle(t *testing.T) {
	testutil.Privileged(t)
	for _, abi := range []ABI{ABISeries1, ABILK13, ABIV17} {
		t.Run(abi.String(), func(t *testing.T) {
			s, b, _ := newStandInBackend(t, abi)
			h := translatortest.New(t, sample(t, "router"))
			if err := b.Verify(h.Config); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(h.Config); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			s.set(func(s *standIn) {
				pl := s.pipelines["router"]
				if pl == nil || !pl.sealed || len(pl.tables) != 2 || len(pl.actions) != 4 {
					t.Fatalf("stand-in holds %+v", pl)
				}
				for name, active := range pl.actions {
					if !active {
						t.Errorf("action %s not activated", name)
					}
				}
				if pl.tables["ingress/nh"].defaultAct == nil {
					t.Error("no default miss action on ingress/nh")
				}
			})
			fib := func(v, plen, nh string) string {
				return fmt.Sprintf(`entity { table_entry { table_id: 33554449 match { field_id: 1 lpm { value: %q prefix_len: %s } } action { action { action_id: 16777233 params { param_id: 1 value: %q } } } } }`, v, plen, nh)
			}
			ins := h.Ops(t,
				"type: INSERT "+fib("\x0a\x01\x00\x00", "16", "\x07"),
				"type: INSERT "+fib("\x0a\x00\x00\x00", "8", "\x08"),
				`type: INSERT entity { table_entry { table_id: 33554450 match { field_id: 1 exact { value: "\x07" } } match { field_id: 2 exact { value: "\x64" } } action { action { action_id: 16777235 params { param_id: 1 value: "\x03" } params { param_id: 2 value: "\x02\x00\x00\x00\x00\x01" } } } idle_timeout_ns: 5000000000 } }`,
			)
			if n, err := b.Apply(ins); err != nil || n != 3 {
				t.Fatalf("Apply inserts: %d, %v", n, err)
			}
			if got := len(s.entries("router", "ingress/fib")); got != 2 {
				t.Fatalf("stand-in has %d fib entries, want 2", got)
			}
			nh := s.entries("router", "ingress/nh")
			if len(nh) != 1 || !bytes.Equal(nh[0].key, []byte{7, 0, 100, 0}) || nh[0].aging != 5000 || !nh[0].dynamic {
				t.Fatalf("stand-in nh entry %+v", nh)
			}
			if p := nh[0].act.params; len(p) != 2 || !bytes.Equal(p[1].raw, []byte{2, 0, 0, 0, 0, 1}) || !bytes.Equal(p[0].raw, []byte{3, 0, 0, 0}) {
				t.Fatalf("stand-in nh params %+v", p)
			}

			// Round trip: what is read back is what was written.
			_, saved, err := b.Dump(33554449)
			if err != nil {
				t.Fatalf("Dump: %v", err)
			}
			if len(saved) != 2 {
				t.Fatalf("dumped %d entries", len(saved))
			}
			for _, op := range ins[:2] {
				want := op.Entry.Saved()
				if !containsSaved(saved, want) {
					t.Errorf("dump lacks %+v; got %+v", want, saved)
				}
			}
			got, se, err := b.Get(ins[2].Entry)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if want := ins[2].Entry.Saved(); !sameSaved(se, &want) {
				t.Errorf("Get: %+v, want %+v", se, want)
			}
			if !got.Dynamic || got.AgingMs != 5000 || got.CreatedBy != EntityTC {
				t.Errorf("Get: entry %+v", got)
			}

			mod := h.Ops(t, "type: MODIFY "+fib("\x0a\x01\x00\x00", "16", "\x09"))
			if n, err := b.Apply(mod); err != nil || n != 1 {
				t.Fatalf("Apply modify: %d, %v", n, err)
			}
			_, se, err = b.Get(mod[0].Entry)
			if err != nil || !bytes.Equal(se.Params[0], []byte{9}) {
				t.Fatalf("after modify: %+v, %v", se, err)
			}

			def := h.Ops(t, `type: MODIFY entity { table_entry { table_id: 33554450 is_default_action: true action { action { action_id: 16777236 params { param_id: 1 value: "\x05" } } } } }`)
			if n, err := b.Apply(def); err != nil || n != 1 {
				t.Fatalf("Apply default: %d, %v", n, err)
			}

			del := h.Ops(t, `type: DELETE entity { table_entry { table_id: 33554449 match { field_id: 1 lpm { value: "\x0a\x00\x00\x00" prefix_len: 8 } } } }`)
			if n, err := b.Apply(del); err != nil || n != 1 {
				t.Fatalf("Apply delete: %d, %v", n, err)
			}
			if got := len(s.entries("router", "ingress/fib")); got != 1 {
				t.Fatalf("stand-in has %d fib entries after delete, want 1", got)
			}
			if err := b.Flush(33554449); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := len(s.entries("router", "ingress/fib")); got != 0 {
				t.Fatalf("stand-in has %d fib entries after flush", got)
			}
			// A second Commit replaces the pipeline, without entries.
			if err := b.Commit(h.Config); err != nil {
				t.Fatalf("second Commit: %v", err)
			}
			if got := len(s.entries("router", "ingress/nh")); got != 0 {
				t.Fatalf("stand-in kept %d nh entries across Commit", got)
			}
		})
	}
}

func containsSaved(list []*translator.SavedEntry, want translator.SavedEntry) bool {
	for _, se := range list {
		if sameSaved(se, &want) {
			return true
		}
	}
	return false
}

// sameSaved compares what P4TC can hold of an entry (not its controller
// metadata).
func sameSaved(a, b *translator.SavedEntry) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.ControllerMetadata, y.ControllerMetadata, x.Metadata, y.Metadata = 0, 0, nil, nil
	return reflect.DeepEqual(x, y)
}

// ternaryOps makes n inserts into the acl table, all of priority 10.
func ternaryOps(t *testing.T, h *translatortest.Harness, n int) []translator.Op {
	var us []string
	for i := range n {
		us = append(us, fmt.Sprintf(`type: INSERT entity { table_entry { table_id: 33554465 match { field_id: 1 ternary { value: "\x0a\x00\x%02x" mask: "\xff\xff\xff" } } match { field_id: 3 exact { value: "\x00\x50" } } priority: 10 action { action { action_id: 16777250 } } } }`, i))
	}
	return h.Ops(t, us...)
}

// TestPrivilegedBatching checks that Apply packs 16 entries per message and
// reports, when the kernel stops a batch, exactly how many ops took effect,
// both from P4TC's extended-ack summary and, when the kernel cut it off,
// by reading the entries back.
func TestPrivilegedBatching(t *testing.T) {
	testutil.Privileged(t)
	for _, tc := range []struct {
		name    string
		abi     ABI
		group   uint32 // events on: P4TC's slow path, "(FE n)" summaries
		longMsg bool   // an extended ack too long for the summary to fit
	}{
		{"series1/fast path", ABISeries1, 0, false},
		{"lk13/event path", ABILK13, RTNLGRP_TC, false},
		{"v17/summary cut off", ABIV17, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b, _ := newStandInBackend(t, tc.abi)
			s.set(func(s *standIn) { s.group = tc.group })
			h := translatortest.New(t, sample(t, "acl"))
			if err := b.Commit(h.Config); err != nil {
				t.Fatal(err)
			}
			s.set(func(s *standIn) { s.requests = map[uint16]int{} })
			ops := ternaryOps(t, h, 40)
			if n, err := b.Apply(ops); err != nil || n != 40 {
				t.Fatalf("Apply: %d, %v", n, err)
			}
			s.set(func(s *standIn) {
				if got := s.requests[RTM_P4TC_CREATE]; got != 3 {
					t.Errorf("%d create messages for 40 entries, want 3 (16+16+8)", got)
				}
			})
			// The 40 entries share P4Runtime priority 10: 40 distinct
			// P4TC priorities in its band.
			prios := map[uint32]bool{}
			for _, e := range s.entries("acl", "ingress/acl") {
				if e.prio>>8 != (1<<23-10) || prios[e.prio] {
					t.Errorf("entry prio %d: not a distinct priority of band %d", e.prio, 1<<23-10)
				}
				prios[e.prio] = true
			}

			// Delete them all; the kernel fails the 21st (batch 2, index 4).
			msg := "Unable to find entry"
			if tc.longMsg {
				msg = strings.Repeat("a very long kernel message ", 4)
			}
			s.set(func(s *standIn) {
				count := 0
				s.failEntry = func(verb uint16, idx int, e *siEntry) (syscall.Errno, string) {
					if verb != RTM_P4TC_DEL {
						return 0, ""
					}
					count++
					if count == 21 {
						return syscall.EBUSY, msg
					}
					return 0, ""
				}
			})
			del := make([]translator.Op, len(ops))
			for i, op := range ops {
				del[i] = translator.Op{Kind: translator.OpDelete, Entry: op.Entry}
			}
			s.set(func(s *standIn) { s.requests = map[uint16]int{} })
			n, err := b.Apply(del)
			if n != 20 || !errors.Is(err, translator.ErrPrecondition) {
				t.Fatalf("Apply deletes: %d, %v; want 20 and a failed precondition (EBUSY)", n, err)
			}
			s.set(func(s *standIn) {
				// Without the summary, the batch's entries are read back:
				// the first 4 are gone, the 5th is not.
				want := 0
				if tc.longMsg {
					want = 5
				}
				if got := s.requests[RTM_P4TC_GET]; got != want {
					t.Errorf("%d GET requests to resolve the failed batch, want %d", got, want)
				}
			})
			if got := len(s.entries("acl", "ingress/acl")); got != 20 {
				t.Fatalf("stand-in has %d entries, want 20", got)
			}
			s.set(func(s *standIn) { s.failEntry = nil })
			if n, err := b.Apply(del[20:]); err != nil || n != 20 {
				t.Fatalf("Apply remaining deletes: %d, %v", n, err)
			}
			// The priorities are free again.
			if n, err := b.Apply(ops[:16]); err != nil || n != 16 {
				t.Fatalf("re-insert: %d, %v", n, err)
			}
		})
	}
}

// TestPrivilegedKernelErrors checks the mapping of kernel errors to
// P4Runtime codes, with the kernel's text.
func TestPrivilegedKernelErrors(t *testing.T) {
	testutil.Privileged(t)
	s, b, _ := newStandInBackend(t, ABILK13)
	h := translatortest.New(t, sample(t, "l2fwd"))
	if err := b.Commit(h.Config); err != nil {
		t.Fatal(err)
	}
	ins := h.Ops(t, `type: INSERT entity { table_entry { table_id: 33554433 match { field_id: 1 exact { value: "\x00\x11\x22\x33\x44\x55" } } action { action { action_id: 16777217 params { param_id: 1 value: "\x05" } } } } }`)
	for _, tc := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.EEXIST, translator.ErrExists},
		{syscall.ENOENT, translator.ErrNotFound},
		{syscall.ENOSPC, translator.ErrFull},
		{syscall.E2BIG, translator.ErrFull},
		{syscall.EPERM, translator.ErrPermission},
		{syscall.EACCES, translator.ErrPermission},
		{syscall.EINVAL, translator.ErrInvalid},
		{syscall.EIO, translator.ErrInternal},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			s.set(func(s *standIn) {
				s.failEntry = func(uint16, int, *siEntry) (syscall.Errno, string) { return tc.errno, "injected by the test" }
			})
			n, err := b.Apply(ins)
			if n != 0 || !errors.Is(err, tc.want) {
				t.Fatalf("Apply: %d, %v; want 0 and %v", n, err, tc.want)
			}
			if !strings.Contains(err.Error(), "injected by the test") || strings.Contains(err.Error(), "S 0/1") {
				t.Errorf("error text %q: want the kernel's message without P4TC's batch summary", err)
			}
		})
	}
	s.set(func(s *standIn) { s.failEntry = nil })
	// Without injection: a real duplicate.
	if _, err := b.Apply(ins); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(ins); !errors.Is(err, translator.ErrExists) {
		t.Fatalf("duplicate insert: %v", err)
	}
}

// TestPrivilegedEvents subscribes to entry events and checks what an entry
// created by the datapath and an entry aged out look like.
func TestPrivilegedEvents(t *testing.T) {
	testutil.Privileged(t)
	for _, abi := range []ABI{ABISeries1, ABILK13} {
		t.Run(abi.String(), func(t *testing.T) {
			s, b, _ := newStandInBackend(t, abi)
			s.set(func(s *standIn) { s.group = RTNLGRP_TC })
			h := translatortest.New(t, sample(t, "l2fwd"))
			if err := b.Commit(h.Config); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			evs, err := b.Events(ctx)
			if err != nil {
				t.Fatal(err)
			}
			next := func() Event {
				t.Helper()
				select {
				case ev, ok := <-evs:
					if !ok {
						t.Fatal("event channel closed")
					}
					return ev
				case <-time.After(5 * time.Second):
					t.Fatal("no event")
				}
				return Event{}
			}
			key := []byte{0x02, 0, 0, 0, 0, 0x07}
			s.datapathCreate("l2fwd", "ingress/fdb", key, &siAction{kind: "l2fwd/ingress/send",
				params: []siParam{{name: "port", id: 1, bitend: 31, container: P4TC_T_DEV, raw: []byte{9, 0, 0, 0}}}})
			ev := next()
			if ev.Err != nil || !ev.DatapathCreated() || ev.TableID != 33554433 {
				t.Fatalf("event %+v", ev)
			}
			want := translator.SavedEntry{
				TableID: 33554433, Match: []translator.FieldMatch{{Value: []byte{2, 0, 0, 0, 0, 7}, Set: true}},
				ActionID: 16777217, Params: [][]byte{{9}}, Origin: translator.OriginDatapath, IdleTimeoutNs: 30_000_000_000,
			}
			if !sameSaved(ev.Saved, &want) {
				t.Errorf("datapath-created entry %+v, want %+v", ev.Saved, want)
			}
			s.age("l2fwd", "ingress/fdb", key)
			ev = next()
			if ev.Err != nil || !ev.Aged() || ev.Saved == nil || ev.Saved.Origin != translator.OriginDatapath {
				t.Fatalf("aged event %+v", ev)
			}
			// A controller write is announced too, by tc.
			ins := h.Ops(t, `type: INSERT entity { table_entry { table_id: 33554433 match { field_id: 1 exact { value: "\x00\x11\x22\x33\x44\x55" } } action { action { action_id: 16777217 params { param_id: 1 value: "\x05" } } } } }`)
			if _, err := b.Apply(ins); err != nil {
				t.Fatal(err)
			}
			ev = next()
			if ev.Kind != EventCreated || ev.By != EntityTC {
				t.Fatalf("controller event %+v", ev)
			}
			cancel()
			for range evs {
			}
		})
	}
}

// TestPrivilegedStockKernel checks the probe against the kernel of the
// machine, which has no P4TC unless P4TCD_P4TC_KERNEL says otherwise.
func TestPrivilegedStockKernel(t *testing.T) {
	testutil.Privileged(t)
	if p4tcKernel() {
		t.Skip("P4TCD_P4TC_KERNEL=1: this kernel has P4TC")
	}
	ns := testutil.NewNetNS(t)
	err := Probe(Options{NetNS: ns.Handle()})
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Probe: %v, want ErrNotSupported", err)
	}
	var ke *KernelError
	if !errors.As(err, &ke) || ke.Errno != unix.EOPNOTSUPP {
		t.Errorf("Probe error %v: want the kernel's EOPNOTSUPP inside", err)
	}
}
