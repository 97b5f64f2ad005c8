package ebpfdp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// The kinds test pipeline (testdata/kinds.*): one table per layout.
const (
	kindsP4Info    = "testdata/kinds.p4info.txt"
	kindsJSON      = "testdata/kinds.json"
	kindsObject    = "testdata/kinds.o"
	tKeyless       = 33554689
	tExactMix      = 33554690
	tVrfLPM6       = 33554691
	tTwoLPM        = 33554692
	tClassify      = 33554693
	aSetPort       = 16777473
	aMark          = 16777474
	aDrop          = 16777475
	p4tcSetPort    = 1
	p4tcMark       = 2
	p4tcDrop       = 3
	flagsHit       = 1
	flagsMiss      = 2
	kindsFrameSize = 14 + 42 + 5*8
)

// kindsIn is the input header of a kinds frame.
type kindsIn struct {
	port  uint32
	vlan  uint16
	mac   [6]byte
	vrf   uint16
	dst6  netip.Addr
	src4  netip.Addr
	dst4  netip.Addr
	proto byte
	flags byte
	dport uint16
}

func (in *kindsIn) frame() []byte {
	b := make([]byte, kindsFrameSize)
	binary.BigEndian.PutUint16(b[12:], 0x88b5)
	h := b[14:]
	ne.PutUint32(h[0:], in.port)
	ne.PutUint16(h[4:], in.vlan)
	copy(h[6:12], in.mac[:])
	ne.PutUint16(h[12:], in.vrf)
	if in.dst6.IsValid() {
		a := in.dst6.As16()
		copy(h[14:30], a[:])
	}
	if in.src4.IsValid() {
		a := in.src4.As4()
		copy(h[30:34], a[:])
	}
	if in.dst4.IsValid() {
		a := in.dst4.As4()
		copy(h[34:38], a[:])
	}
	h[38], h[39] = in.proto, in.flags
	binary.BigEndian.PutUint16(h[40:], in.dport)
	return b
}

// kindsOut is what the datapath read from one table.
type kindsOut struct {
	act   uint32
	flags byte
	p0    byte
}

func kindsResults(b []byte) [5]kindsOut {
	var out [5]kindsOut
	for i := range out {
		r := b[14+42+8*i:]
		out[i] = kindsOut{act: ne.Uint32(r), flags: r[4], p0: r[5]}
	}
	return out
}

type kindsSwitch struct {
	*l3Switch
	xdp *ebpf.Program
}

func newKindsSwitch(t *testing.T) *kindsSwitch {
	t.Helper()
	ns, ports := portNS(t)
	sw := &l3Switch{ns: ns, root: filepath.Join(tempBPFFS(t), "p4tcd")}
	sw.open(t, ports, false)
	obj, err := os.ReadFile(kindsObject)
	if err != nil {
		t.Fatal(err)
	}
	fpc, err := p4test.Pipeline(kindsP4Info, kindsJSON, obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.dev.SetPipeline(p4test.Commit, fpc); err != nil {
		t.Fatalf("commit kinds: %v", err)
	}
	sw.ifindex = map[uint32]int{}
	for p, i := range sw.b.ports.ifindex {
		sw.ifindex[p] = int(i)
	}
	// The XDP program of the object, on the backend's maps.
	cur := sw.b.cur
	spec := cur.bind.spec.Copy()
	repl := map[string]*ebpf.Map{}
	for _, ts := range cur.tables {
		for name, m := range ts.maps() {
			repl[name] = m
		}
	}
	for name := range spec.Programs {
		if name != "kinds_xdp" {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		t.Fatalf("load kinds_xdp: %v", err)
	}
	t.Cleanup(func() { coll.Close() })
	return &kindsSwitch{l3Switch: sw, xdp: coll.Programs["kinds_xdp"]}
}

// read runs a frame through the tc and XDP programs, checks they agree
// and returns what the tables gave.
func (ks *kindsSwitch) read(t *testing.T, in kindsIn) [5]kindsOut {
	t.Helper()
	f := in.frame()
	_, tcOut := ks.run(t, f)
	out := make([]byte, len(f)+256)
	if _, err := ks.xdp.Run(&ebpf.RunOptions{Data: f, DataOut: out}); err != nil {
		t.Fatalf("xdp test run: %v", err)
	}
	tc, xdp := kindsResults(tcOut), kindsResults(out)
	if tc != xdp {
		t.Errorf("tc read %v, xdp read %v", tc, xdp)
	}
	return tc
}

func TestPrivilegedKinds(t *testing.T) {
	testutil.Privileged(t)
	ks := newKindsSwitch(t)
	mac := [6]byte{2, 0, 0, 0, 0, 0xaa}
	v6 := func(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
	mark := func(m byte) [][]byte { return [][]byte{{m}} }
	ks.write(t,
		p4test.Insert(p4test.Entry{Table: tExactMix, Action: aMark, Params: mark(7), Match: []p4test.Match{
			p4test.Exact(1, u32(1)), p4test.Exact(2, u16(0x123)), p4test.Exact(3, mac[:])}}),
		p4test.Insert(p4test.Entry{Table: tVrfLPM6, Action: aMark, Params: mark(1), Match: []p4test.Match{
			p4test.Exact(1, u16(5)), p4test.LPM(2, v6("2001:db8::"), 32)}}),
		p4test.Insert(p4test.Entry{Table: tVrfLPM6, Action: aMark, Params: mark(2), Match: []p4test.Match{
			p4test.Exact(1, u16(5)), p4test.LPM(2, v6("2001:db8:1::"), 48)}}),
		p4test.Insert(p4test.Entry{Table: tVrfLPM6, Action: aMark, Params: mark(3), Match: []p4test.Match{
			p4test.Exact(1, u16(6)), p4test.LPM(2, v6("2001:db8::"), 32)}}),
		p4test.Insert(p4test.Entry{Table: tVrfLPM6, Action: aMark, Params: mark(9), Match: []p4test.Match{
			p4test.Exact(1, u16(9))}}),
		p4test.Insert(p4test.Entry{Table: tTwoLPM, Action: aMark, Params: mark(1), Match: []p4test.Match{
			p4test.LPM(1, ip4("10.0.0.0"), 8)}}),
		p4test.Insert(p4test.Entry{Table: tTwoLPM, Action: aMark, Params: mark(2), Match: []p4test.Match{
			p4test.LPM(2, ip4("192.168.0.0"), 16)}}),
		p4test.Insert(p4test.Entry{Table: tTwoLPM, Action: aMark, Params: mark(3), Match: []p4test.Match{
			p4test.LPM(1, ip4("10.1.0.0"), 16), p4test.LPM(2, ip4("192.168.1.0"), 24)}}),
		p4test.Insert(p4test.Entry{Table: tClassify, Priority: 10, Action: aMark, Params: mark(10), Match: []p4test.Match{
			p4test.Optional(1, []byte{6}), p4test.Range(3, u16(80), u16(89))}}),
		p4test.Insert(p4test.Entry{Table: tClassify, Priority: 20, Action: aMark, Params: mark(20), Match: []p4test.Match{
			p4test.Ternary(2, []byte{2}, []byte{2})}}),
		p4test.Insert(p4test.Entry{Table: tClassify, Priority: 5, Action: aMark, Params: mark(5), Match: []p4test.Match{
			p4test.Range(3, u16(0), u16(1023))}}),
	)
	hit := func(m byte) kindsOut { return kindsOut{act: p4tcMark, flags: flagsHit, p0: m} }
	miss := kindsOut{act: p4tcDrop, flags: flagsMiss}
	port1 := uint32(ks.ifindex[1])
	base := kindsIn{port: port1, vlan: 0x123, mac: mac, vrf: 5,
		dst6: netip.MustParseAddr("2001:db8:1::1"), src4: netip.MustParseAddr("10.1.1.1"),
		dst4: netip.MustParseAddr("192.168.1.1"), proto: 6, dport: 85}
	type want struct {
		table int
		out   kindsOut
	}
	for _, tc := range []struct {
		name string
		edit func(*kindsIn)
		want []want
	}{
		{"base", func(*kindsIn) {}, []want{
			{0, miss}, {1, hit(7)}, {2, hit(2)}, {3, hit(3)}, {4, hit(10)}}},
		{"exact: other vlan", func(in *kindsIn) { in.vlan = 0x124 }, []want{{1, miss}}},
		{"exact: other port", func(in *kindsIn) { in.port = uint32(ks.ifindex[2]) }, []want{{1, miss}}},
		{"lpm: shorter prefix", func(in *kindsIn) { in.dst6 = netip.MustParseAddr("2001:db8:2::1") }, []want{{2, hit(1)}}},
		{"lpm: other vrf", func(in *kindsIn) { in.vrf = 6 }, []want{{2, hit(3)}}},
		{"lpm: /0 under vrf 9", func(in *kindsIn) { in.vrf = 9; in.dst6 = netip.MustParseAddr("::1") }, []want{{2, hit(9)}}},
		{"lpm: miss", func(in *kindsIn) { in.vrf = 7 }, []want{{2, miss}}},
		{"two lpm: dst /16 beats src /8", func(in *kindsIn) { in.src4 = netip.MustParseAddr("10.2.2.2") }, []want{{3, hit(2)}}},
		{"two lpm: src /8", func(in *kindsIn) {
			in.src4, in.dst4 = netip.MustParseAddr("10.2.2.2"), netip.MustParseAddr("8.8.8.8")
		}, []want{{3, hit(1)}}},
		{"two lpm: miss", func(in *kindsIn) {
			in.src4, in.dst4 = netip.MustParseAddr("11.0.0.1"), netip.MustParseAddr("8.8.8.8")
		}, []want{{3, miss}}},
		{"classify: flag bit beats tcp/80-89", func(in *kindsIn) { in.flags = 2 }, []want{{4, hit(20)}}},
		{"classify: udp falls to 0-1023", func(in *kindsIn) { in.proto = 17 }, []want{{4, hit(5)}}},
		{"classify: range end", func(in *kindsIn) { in.dport = 89 }, []want{{4, hit(10)}}},
		{"classify: past the range", func(in *kindsIn) { in.dport = 90 }, []want{{4, hit(5)}}},
		{"classify: miss", func(in *kindsIn) { in.proto, in.dport = 17, 2000 }, []want{{4, miss}}},
	} {
		in := base
		tc.edit(&in)
		got := ks.read(t, in)
		for _, w := range tc.want {
			if got[w.table] != w.out {
				t.Errorf("%s: table %d read %+v, want %+v", tc.name, w.table, got[w.table], w.out)
			}
		}
	}

	// Keyless: the default action is the table; ports become ifindexes.
	ks.write(t, p4test.Modify(p4test.Entry{Table: tKeyless, Default: true, Action: aSetPort, Params: [][]byte{u32(2)}}))
	if got := ks.read(t, base)[0]; got != (kindsOut{act: p4tcSetPort, flags: flagsMiss, p0: byte(ks.ifindex[2])}) {
		t.Errorf("keyless set_port(2): %+v, want ifindex %d", got, ks.ifindex[2])
	}
	c, err := ks.b.Counters(tKeyless)
	if err != nil || c.Hits != 0 || c.Misses == 0 {
		t.Errorf("keyless counters %+v %v", c, err)
	}
	// A default port must be a switch port.
	err = p4test.Write(ks.dev, p4test.Modify(p4test.Entry{Table: tKeyless, Default: true, Action: aSetPort, Params: [][]byte{u32(3)}}))
	if !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("default set_port(3): %v, want ErrInvalid", err)
	}
}

func TestPrivilegedTernaryFull(t *testing.T) {
	testutil.Privileged(t)
	ks := newKindsSwitch(t)
	mark := func(m byte) [][]byte { return [][]byte{{m}} }
	// classify holds 64 entries, 128 masked keys. A range 1..65534 expands
	// to 30 keys: the fifth such entry does not fit.
	wide := func(prio int32) p4test.Update {
		return p4test.Insert(p4test.Entry{Table: tClassify, Priority: prio, Action: aMark, Params: mark(byte(prio)),
			Match: []p4test.Match{p4test.Optional(1, []byte{byte(prio)}), p4test.Range(3, u16(1), u16(65534))}})
	}
	errs, err := ks.dev.Write([]p4test.Update{wide(1), wide(2), wide(3), wide(4), wide(5), wide(6)}, p4test.ContinueOnError, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if full := i >= 4; full != errors.Is(e, translator.ErrFull) {
			t.Errorf("update %d: %v", i, e)
		}
	}
	ts := ks.b.cur.byID[tClassify]
	if n := len(ts.tss.slots); n != 120 {
		t.Errorf("%d masked keys in the state, want 120", n)
	}
	if n := countKeys(t, ts); n != 120 {
		t.Errorf("%d keys in the map, want 120", n)
	}
	recs := 0
	for ref := range ks.b.cur.side.recs {
		if ref.table == tClassify {
			recs++
		}
	}
	if recs != 4 {
		t.Errorf("%d side records for classify, want 4", recs)
	}
	in := kindsIn{proto: 2, dport: 7}
	if got := ks.read(t, in)[4]; got != (kindsOut{act: p4tcMark, flags: flagsHit, p0: 2}) {
		t.Errorf("entry 2 after the failed ones: %+v", got)
	}
	in.proto = 5
	if got := ks.read(t, in)[4]; got.act != p4tcDrop {
		t.Errorf("entry 5 was refused but reads %+v", got)
	}

	// two_lpm holds 16 masks: src prefixes /1 .. /17 need 17.
	var us []p4test.Update
	for plen := int32(1); plen <= 17; plen++ {
		us = append(us, p4test.Insert(p4test.Entry{Table: tTwoLPM, Action: aMark, Params: mark(byte(plen)),
			Match: []p4test.Match{p4test.LPM(1, ip4("128.0.0.0"), plen)}}))
	}
	errs, err = ks.dev.Write(us, p4test.ContinueOnError, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if full := i == 16; full != errors.Is(e, translator.ErrFull) {
			t.Errorf("two_lpm update %d: %v", i, e)
		}
	}
	if got := ks.read(t, kindsIn{src4: netip.MustParseAddr("128.0.0.1"), dst4: netip.MustParseAddr("1.1.1.1")})[3]; got.p0 != 16 {
		t.Errorf("longest src prefix: %+v, want /16", got)
	}
}

func countKeys(t *testing.T, ts *tableState) int {
	t.Helper()
	k, v := make([]byte, ts.plan.keySize), make([]byte, ts.plan.valueSize())
	n := 0
	it := ts.entries.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}
