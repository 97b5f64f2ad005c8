package ebpfdp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/p4tcd/p4tcd/internal/p4test"
	"github.com/p4tcd/p4tcd/internal/testutil"
	"github.com/p4tcd/p4tcd/translator"
)

// routes installs the entries most l3router tests start from: 10.1/16 via
// next hop 10 (out of port 2, MACs rewritten).
func routes(tb testing.TB, sw *l3Switch) {
	tb.Helper()
	sw.write(tb,
		p4test.Insert(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(10))},
			Action: actForward, Params: [][]byte{macB, macR, u32(2)}}),
		p4test.Insert(p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.0.0"), 16)},
			Action: actSetNhop, Params: [][]byte{u16(10)}}),
	)
}

func TestPrivilegedL3RouterForward(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	routes(t, sw)

	in := frame(17, "10.0.0.1", "10.1.2.3", 1234, 80, 64)
	ret, out := sw.run(t, in)
	if ret != tcActRedirct {
		t.Fatalf("verdict %d, want redirect (%d)", ret, tcActRedirct)
	}
	if !bytes.Equal(out[0:6], macB) || !bytes.Equal(out[6:12], macR) {
		t.Errorf("MACs %x %x, want dst %x src %x", out[0:6], out[6:12], []byte(macB), []byte(macR))
	}
	if out[22] != 63 {
		t.Errorf("TTL %d, want 63", out[22])
	}
	if !ipValid(out[14:34]) {
		t.Errorf("IPv4 checksum %x does not verify", out[24:26])
	}
	if !bytes.Equal(out[26:], in[26:]) {
		t.Errorf("bytes after the checksum changed")
	}

	// TTL 1 and non-IPv4 frames go to the host stack.
	if ret, _ := sw.run(t, frame(17, "10.0.0.1", "10.1.2.3", 1, 2, 1)); ret != tcActOK {
		t.Errorf("TTL 1: verdict %d, want TC_ACT_OK", ret)
	}
	arp := frame(17, "10.0.0.1", "10.1.2.3", 1, 2, 64)
	arp[12], arp[13] = 0x08, 0x06
	if ret, _ := sw.run(t, arp); ret != tcActOK {
		t.Errorf("ARP: verdict %d, want TC_ACT_OK", ret)
	}

	c, err := sw.b.Counters(tblLPM)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hits != 1 || c.Misses != 0 {
		t.Errorf("ipv4_lpm counters %+v, want 1 hit", c)
	}
}

func TestPrivilegedL3RouterLPM(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	routes(t, sw)
	sw.write(t,
		p4test.Insert(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(20))},
			Action: actForward, Params: [][]byte{macA, macR, u32(1)}}),
		p4test.Insert(p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.2.0"), 24)},
			Action: actSetNhop, Params: [][]byte{u16(20)}}),
		p4test.Insert(p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.2.128"), 25)},
			Action: actDrop}),
	)
	for _, tc := range []struct {
		dst  string
		ret  uint32
		dmac []byte
	}{
		{"10.1.9.9", tcActRedirct, macB}, // /16
		{"10.1.2.3", tcActRedirct, macA}, // /24
		{"10.1.2.200", tcActShot, nil},   // /25 drop
		{"10.2.0.1", tcActShot, nil},     // miss: default drop
		{"192.0.2.1", tcActShot, nil},    // miss
		{"10.1.255.255", tcActRedirct, macB},
	} {
		ret, out := sw.run(t, frame(17, "10.0.0.1", tc.dst, 1, 2, 64))
		if ret != tc.ret || (tc.dmac != nil && !bytes.Equal(out[0:6], tc.dmac)) {
			t.Errorf("dst %s: verdict %d dmac %x, want %d %x", tc.dst, ret, out[0:6], tc.ret, tc.dmac)
		}
	}
	c, _ := sw.b.Counters(tblLPM)
	if c.Hits != 4 || c.Misses != 2 {
		t.Errorf("ipv4_lpm counters %+v, want 4 hits 2 misses", c)
	}

	// Default action: a miss now goes to next hop 20.
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblLPM, Default: true, Action: actSetNhop, Params: [][]byte{u16(20)}}))
	if ret, out := sw.run(t, frame(17, "10.0.0.1", "10.2.0.1", 1, 2, 64)); ret != tcActRedirct || !bytes.Equal(out[0:6], macA) {
		t.Errorf("miss after default set_nhop(20): verdict %d dmac %x", ret, out[0:6])
	}
	// Back to the program's default (MODIFY without action).
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblLPM, Default: true}))
	if ret, _ := sw.run(t, frame(17, "10.0.0.1", "10.2.0.1", 1, 2, 64)); ret != tcActShot {
		t.Errorf("miss after default reset: verdict %d, want drop", ret)
	}

	// Modify and delete.
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.2.128"), 25)},
		Action: actSetNhop, Params: [][]byte{u16(10)}}))
	if ret, out := sw.run(t, frame(17, "10.0.0.1", "10.1.2.200", 1, 2, 64)); ret != tcActRedirct || !bytes.Equal(out[0:6], macB) {
		t.Errorf("after modify /25: verdict %d dmac %x", ret, out[0:6])
	}
	sw.write(t, p4test.Delete(p4test.Entry{Table: tblLPM, Match: []p4test.Match{p4test.LPM(1, ip4("10.1.2.0"), 24)}}))
	if ret, out := sw.run(t, frame(17, "10.0.0.1", "10.1.2.3", 1, 2, 64)); ret != tcActRedirct || !bytes.Equal(out[0:6], macB) {
		t.Errorf("after delete /24: verdict %d dmac %x, want the /16", ret, out[0:6])
	}
}

func TestPrivilegedL3RouterExact(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	routes(t, sw)
	in := frame(17, "10.0.0.1", "10.1.2.3", 1, 2, 64)
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(10))},
		Action: actForward, Params: [][]byte{macA, macB, u32(1)}}))
	if ret, out := sw.run(t, in); ret != tcActRedirct || !bytes.Equal(out[0:6], macA) || !bytes.Equal(out[6:12], macB) {
		t.Errorf("after modify: verdict %d MACs %x %x", ret, out[0:6], out[6:12])
	}
	sw.write(t, p4test.Delete(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(10))}}))
	if ret, _ := sw.run(t, in); ret != tcActShot {
		t.Errorf("next hop deleted: verdict %d, want drop (default)", ret)
	}
	// Ports are --port numbers: an unknown one is refused.
	err := p4test.Write(sw.dev, p4test.Insert(p4test.Entry{Table: tblNexthop, Match: []p4test.Match{p4test.Exact(1, u16(11))},
		Action: actForward, Params: [][]byte{macA, macB, u32(7)}}))
	if !errors.Is(err, translator.ErrInvalid) {
		t.Errorf("forward to port 7: %v, want ErrInvalid", err)
	}
	c, _ := sw.b.Counters(tblNexthop)
	if c.Hits != 1 || c.Misses != 1 {
		t.Errorf("nexthop counters %+v", c)
	}
}

func aclEntry(prio int32, action uint32, m ...p4test.Match) p4test.Entry {
	return p4test.Entry{Table: tblACL, Priority: prio, Match: m, Action: action}
}

func TestPrivilegedL3RouterTernary(t *testing.T) {
	testutil.Privileged(t)
	sw := newL3Switch(t)
	routes(t, sw)
	sw.write(t,
		p4test.Insert(aclEntry(5, actDeny, p4test.Ternary(1, ip4("10.9.0.0"), ip4("255.255.0.0")))),
		p4test.Insert(aclEntry(20, actPermit, p4test.Ternary(1, ip4("10.9.9.0"), ip4("255.255.255.0")))),
		p4test.Insert(aclEntry(10, actDeny, p4test.Range(5, u16(1000), u16(2000)))),
		p4test.Insert(aclEntry(30, actDeny, p4test.Optional(3, []byte{6}), p4test.Range(5, u16(22), u16(22)))),
		p4test.Insert(aclEntry(40, actPermit, p4test.Ternary(2, ip4("10.1.7.7"), ip4("255.255.255.255")))),
	)
	for _, tc := range []struct {
		name  string
		proto byte
		src   string
		dst   string
		dport uint16
		ret   uint32
	}{
		{"no acl entry", 17, "10.0.0.1", "10.1.2.3", 80, tcActRedirct},
		{"deny 10.9/16", 17, "10.9.1.1", "10.1.2.3", 80, tcActShot},
		{"permit 10.9.9/24 beats deny 10.9/16", 17, "10.9.9.9", "10.1.2.3", 80, tcActRedirct},
		{"range low-1", 17, "10.0.0.1", "10.1.2.3", 999, tcActRedirct},
		{"range low", 17, "10.0.0.1", "10.1.2.3", 1000, tcActShot},
		{"range mid", 17, "10.0.0.1", "10.1.2.3", 1537, tcActShot},
		{"range high", 17, "10.0.0.1", "10.1.2.3", 2000, tcActShot},
		{"range high+1", 17, "10.0.0.1", "10.1.2.3", 2001, tcActRedirct},
		{"optional tcp/22", 6, "10.0.0.1", "10.1.2.3", 22, tcActShot},
		{"optional udp/22", 17, "10.0.0.1", "10.1.2.3", 22, tcActRedirct},
		{"permit dst beats range", 17, "10.0.0.1", "10.1.7.7", 1500, tcActRedirct},
		{"permit dst beats tcp/22", 6, "10.0.0.1", "10.1.7.7", 22, tcActRedirct},
	} {
		if ret, _ := sw.run(t, frame(tc.proto, tc.src, tc.dst, 5555, tc.dport, 64)); ret != tc.ret {
			t.Errorf("%s: verdict %d, want %d", tc.name, ret, tc.ret)
		}
	}

	// Same masked key, two priorities: the winner is kept in the map, the
	// loser comes back when the winner goes.
	hi := aclEntry(50, actDeny, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))
	lo := aclEntry(45, actPermit, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))
	sw.write(t, p4test.Insert(lo), p4test.Insert(hi))
	f := frame(17, "10.5.1.1", "10.1.2.3", 1, 80, 64)
	if ret, _ := sw.run(t, f); ret != tcActShot {
		t.Errorf("deny 50 over permit 45: verdict %d", ret)
	}
	sw.write(t, p4test.Delete(hi))
	if ret, _ := sw.run(t, f); ret != tcActRedirct {
		t.Errorf("permit 45 promoted: verdict %d", ret)
	}
	sw.write(t, p4test.Modify(aclEntry(45, actDeny, p4test.Ternary(1, ip4("10.5.0.0"), ip4("255.255.0.0")))))
	if ret, _ := sw.run(t, f); ret != tcActShot {
		t.Errorf("modified to deny: verdict %d", ret)
	}

	// Default action of the ACL.
	sw.write(t, p4test.Modify(p4test.Entry{Table: tblACL, Default: true, Action: actDeny}))
	if ret, _ := sw.run(t, frame(17, "10.0.0.1", "10.1.2.3", 1, 80, 64)); ret != tcActShot {
		t.Errorf("acl default deny: verdict %d", ret)
	}

	// Deleting the only entry of a mask frees the mask.
	ts := sw.b.cur.byID[tblACL]
	before := len(ts.tss.masks)
	sw.write(t, p4test.Delete(aclEntry(40, 0, p4test.Ternary(2, ip4("10.1.7.7"), ip4("255.255.255.255")))))
	if got := len(ts.tss.masks); got != before-1 {
		t.Errorf("%d masks in use after delete, want %d", got, before-1)
	}
}
