package ebpfdp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// fillL3 writes entries of every sort: exact and LPM with and without
// metadata, ternary with ranges, an optional field, a shadowed entry, and
// non-initial default actions (one with metadata).
func fillL3(t *testing.T, sw *l3Switch) {
	t.Helper()
	routes(t, sw)
	nh := p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(20))},
		Action: actForward, Params: [][]byte{macA, macR, u32(1)}, ControllerMetadata: 99, Metadata: []byte("nh20")}
	rt := p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.2.0.0"), 16)},
		Action: actSetNhop, Params: [][]byte{u16(20)}, Metadata: []byte("route to 10.2/16")}
	sw.write(t, p4test.Insert(nh), p4test.Insert(rt),
		p4test.Insert(aclEntry(10, actDeny, p4test.Range(5, u16(1000), u16(2000)))),
		p4test.Insert(aclEntry(30, actDeny, p4test.Optional(3, []byte{6}), p4test.Range(5, u16(22), u16(22)))),
		p4test.Insert(aclEntry(50, actDeny, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))),
		p4test.Insert(aclEntry(45, actPermit, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))),
		p4test.Modify(p4test.Entry{Table: tblACL, Default: true, Action: actDeny, Metadata: []byte("closed")}),
		p4test.Modify(p4test.Entry{Table: tblNexthop, Default: true, Action: actForward, Params: [][]byte{macB, macR, u32(2)}}),
	)
}

func readAll(t *testing.T, d *translator.Device) []string {
	t.Helper()
	s, err := p4test.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(s)
	return s
}

func TestPrivilegedRestore(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t, true)
	fillL3(t, sw)
	before := readAll(t, sw.dev)
	gen := sw.b.cur.gen
	progID := func(b *Backend) ebpf.ProgramID {
		info, err := b.cur.prog.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		return id
	}
	id := progID(sw.b)
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}

	// The datapath outlives the backend: links and maps are pinned. A
	// backend that adopts nothing leaves them alone when it closes.
	if _, err := os.Stat(filepath.Join(sw.root, "links", "p4t0")); err != nil {
		t.Fatalf("tcx link not pinned: %v", err)
	}
	sw.open(t, sw.ports, false)
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sw.root, "links", "p4t0")); err != nil {
		t.Fatalf("a backend that ran nothing removed the pins: %v", err)
	}

	sw.open(t, sw.ports, true)
	restored, err := sw.dev.Restore()
	if err != nil || !restored {
		t.Fatalf("restore: %v %v", restored, err)
	}
	after := readAll(t, sw.dev)
	if !slices.Equal(before, after) {
		t.Errorf("restored entries differ:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	if sw.b.cur.gen != gen || progID(sw.b) != id {
		t.Errorf("restore replaced the pipeline: generation %d program %d, was %d %d", sw.b.cur.gen, progID(sw.b), gen, id)
	}
	for _, a := range sw.b.atts {
		info, err := a.tcx.Info()
		if err != nil || info.Program != id {
			t.Errorf("port %s runs program %v (%v), want %d", a.ifname, info, err, id)
		}
	}

	// The rebuilt tuple space goes on working: the shadowed permit comes
	// back when the deny above it goes.
	f := frame(17, "10.5.1.1", "10.1.2.3", 1, 80, 64)
	if ret, _ := sw.run(t, f); ret != tcActShot {
		t.Errorf("deny 50: verdict %d", ret)
	}
	sw.write(t, p4test.Delete(aclEntry(50, 0, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))))
	if ret, _ := sw.run(t, f); ret != tcActRedirct {
		t.Errorf("permit 45 after restore and delete: verdict %d", ret)
	}
	if ret, _ := sw.run(t, frame(6, "10.0.0.1", "10.1.2.3", 1, 22, 64)); ret != tcActShot {
		t.Errorf("tcp/22 after restore: verdict %d", ret)
	}
	sw.write(t, p4test.Insert(aclEntry(60, actPermit, p4test.Range(5, u16(22), u16(22)))))
	if ret, _ := sw.run(t, frame(6, "10.0.0.1", "10.1.2.3", 1, 22, 64)); ret != tcActRedirct {
		t.Errorf("permit 22 over deny tcp/22: verdict %d", ret)
	}

	// A third p4tcd without KeepForwarding restores and then cleans up.
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	sw.open(t, sw.ports, false)
	if restored, err := sw.dev.Restore(); err != nil || !restored {
		t.Fatalf("second restore: %v %v", restored, err)
	}
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sw.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin root left behind: %v", err)
	}
	if n := tcxPrograms(t, sw); n != 0 {
		t.Errorf("%d tcx programs left on p4t0", n)
	}
	// Nothing pinned: nothing to restore.
	sw.open(t, sw.ports, false)
	if restored, err := sw.dev.Restore(); err != nil || restored {
		t.Errorf("restore from nothing: %v %v", restored, err)
	}
}

// tcxPrograms counts the tcx ingress programs on port 1.
func tcxPrograms(t *testing.T, sw *l3Switch) int {
	t.Helper()
	var n int
	err := sw.ns.Do(func() error {
		l, err := netlink.LinkByName(sw.ports[1])
		if err != nil {
			return err
		}
		r, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return err
		}
		n = len(r.Programs)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPrivilegedReconcileAndCommit(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	fillL3(t, sw)
	// The ACL's default is deny: let 10.2/16 through.
	sw.write(t, p4test.Insert(aclEntry(100, actPermit, p4test.Ternary(2, ip4("10.2.0.0"), ip4("255.255.0.0")))))
	before := readAll(t, sw.dev)
	gen := sw.b.cur.gen
	in := frame(17, "10.0.0.1", "10.2.3.4", 1, 80, 64)
	if ret, out := sw.run(t, in); ret != tcActRedirct || !bytes.Equal(out[0:6], macA) {
		t.Fatalf("before reconcile: verdict %d dmac %x", ret, out[0:6])
	}
	if err := sw.dev.SetPipeline(p4test.Reconcile, l3Pipeline(t)); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if sw.b.cur.gen != gen+1 {
		t.Errorf("reconcile: generation %d, want %d", sw.b.cur.gen, gen+1)
	}
	if _, err := os.Stat(sw.b.genDir(gen)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old generation still pinned: %v", err)
	}
	if after := readAll(t, sw.dev); !slices.Equal(before, after) {
		t.Errorf("reconcile changed the entries")
	}
	if ret, out := sw.run(t, in); ret != tcActRedirct || !bytes.Equal(out[0:6], macA) {
		t.Errorf("after reconcile: verdict %d dmac %x", ret, out[0:6])
	}
	if n := tcxPrograms(t, sw); n != 1 {
		t.Errorf("%d tcx programs on p4t0, want 1", n)
	}
	// VERIFY_AND_COMMIT starts over with empty tables.
	if err := sw.dev.SetPipeline(p4test.Commit, l3Pipeline(t)); err != nil {
		t.Fatal(err)
	}
	if ret, _ := sw.run(t, in); ret != tcActShot {
		t.Errorf("after commit: verdict %d, want drop (empty tables)", ret)
	}
	if n := tcxPrograms(t, sw); n != 1 {
		t.Errorf("%d tcx programs on p4t0 after commit, want 1", n)
	}
}

func TestPrivilegedClsactFallback(t *testing.T) {
	testutil.Privileged(t)
	forceClsact = true
	t.Cleanup(func() { forceClsact = false })
	sw := newL3Switch(t)
	routes(t, sw)
	filters := func() []netlink.Filter {
		var fs []netlink.Filter
		err := sw.ns.Do(func() error {
			l, err := netlink.LinkByName(sw.ports[1])
			if err != nil {
				return err
			}
			fs, err = netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	fs := filters()
	if len(fs) != 1 || !fs[0].(*netlink.BpfFilter).DirectAction || fs[0].(*netlink.BpfFilter).Name == "" {
		t.Fatalf("ingress filters %v, want one direct-action bpf filter", fs)
	}
	if n := tcxPrograms(t, sw); n != 0 {
		t.Errorf("%d tcx programs with the fallback", n)
	}
	// A new pipeline replaces the filter in place.
	if err := sw.dev.SetPipeline(p4test.Commit, l3Pipeline(t)); err != nil {
		t.Fatal(err)
	}
	fs = filters()
	info, _ := sw.b.cur.prog.Info()
	id, _ := info.ID()
	if len(fs) != 1 || fs[0].(*netlink.BpfFilter).Id != int(id) {
		t.Errorf("after commit: filters %v, want one running program %d", fs, id)
	}
	if err := sw.b.Close(); err != nil {
		t.Fatal(err)
	}
	if fs := filters(); len(fs) != 0 {
		t.Errorf("filters left after close: %v", fs)
	}
}

func TestPrivilegedVerify(t *testing.T) {
	testutil.Privileged(t)
	ns, ports := portNS(t)
	b, err := New(Options{DeviceID: 1, Ports: ports, PinRoot: filepath.Join(tempBPFFS(t), "p4tcd"), NetNSPath: nsPath(ns)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	good, err := p4test.Compile(l3P4Info, l3JSON, mustRead(t, l3Object))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(good); err != nil {
		t.Fatalf("verify l3router: %v", err)
	}
	if b.cur != nil || dirEntries(t, b.root) != 0 {
		t.Errorf("verify changed something")
	}
	for _, tc := range []struct {
		name string
		cfg  func() *translator.Config
		opts func(*Options)
		want string
	}{
		{"verifier rejects", func() *translator.Config {
			c, err := p4test.Compile(kindsP4Info, kindsJSON, mustRead(t, "testdata/kinds_bad.o"))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, "the kernel verifier rejected the datapath"},
		{"maps do not match", func() *translator.Config {
			c, err := p4test.Compile(kindsP4Info, kindsJSON, mustRead(t, l3Object))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, "maps do not match the P4Info"},
		{"no object", func() *translator.Config {
			c, err := p4test.Compile(l3P4Info, l3JSON, nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}, nil, "no tc_object"},
		{"missing port", func() *translator.Config { return good }, func(o *Options) {
			o.Ports = map[uint32]string{1: "p4t0", 3: "p4t-nope"}
		}, "interface p4t-nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bb := b
			if tc.opts != nil {
				o := b.opts
				tc.opts(&o)
				var err error
				if bb, err = New(o); err != nil {
					t.Fatal(err)
				}
			}
			err := bb.Verify(tc.cfg())
			if !errors.Is(err, translator.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("verify: %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dirEntries(t *testing.T, dir string) int {
	es, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
