package tcbackend

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p4tcd/p4tcd/translator"
	"github.com/p4tcd/p4tcd/translator/translatortest"
)

// sample loads a sample pipeline of testdata/samples.
func sample(t testing.TB, name string) translatortest.Pipeline {
	t.Helper()
	dir := filepath.Join("testdata", "samples", name)
	info, err := os.ReadFile(filepath.Join(dir, name+".p4info.txt"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	pl := translatortest.Pipeline{P4Info: string(info), Name: name, Introspection: js}
	// Optional device config table settings, one TableConfig per line.
	if b, err := os.ReadFile(filepath.Join(dir, name+".tables.txt")); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			pl.Tables = append(pl.Tables, l)
		}
	}
	return pl
}

// samplePlan compiles a sample and derives its plan for an ABI.
func samplePlan(t testing.TB, abi ABI, name string) (*plan, *translator.Config) {
	t.Helper()
	c, err := translatortest.Compile(sample(t, name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := tableFor(abi)
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPlan(a, c)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// tableOf returns the plan of a P4TC table of a plan.
func tableOf(t testing.TB, p *plan, name string) *tablePlan {
	t.Helper()
	tp := p.byName[name]
	if tp == nil {
		t.Fatalf("no table %s", name)
	}
	return tp
}

// wb writes netlink bytes by hand, with encoding/binary in host order, as
// the golden messages' independent source: it shares no code with the
// encoder (which builds on vishvananda/netlink's nl package).
type wb struct{ b []byte }

// ne is the host byte order, in which netlink carries integers.
func ne() nativeOrder { return binary.NativeEndian }

type nativeOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (w *wb) pad() {
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
}

// attr appends one attribute: u16 length (header + payload, unpadded), u16
// type, payload, padding to 4.
func (w *wb) attr(typ uint16, v []byte) *wb {
	w.b = ne().AppendUint16(w.b, uint16(4+len(v)))
	w.b = ne().AppendUint16(w.b, typ)
	w.b = append(w.b, v...)
	w.pad()
	return w
}

func (w *wb) str(typ uint16, s string) *wb { return w.attr(typ, append([]byte(s), 0)) }
func (w *wb) u8(typ uint16, v uint8) *wb   { return w.attr(typ, []byte{v}) }
func (w *wb) u16(typ uint16, v uint16) *wb { return w.attr(typ, ne().AppendUint16(nil, v)) }
func (w *wb) u32(typ uint16, v uint32) *wb { return w.attr(typ, ne().AppendUint32(nil, v)) }
func (w *wb) u64(typ uint16, v uint64) *wb { return w.attr(typ, ne().AppendUint64(nil, v)) }

// nest appends a nested attribute with NLA_F_NESTED.
func (w *wb) nest(typ uint16, f func(*wb)) *wb { return w.nestFlags(typ|NLA_F_NESTED, f) }

// nestNoFlag appends a nested attribute without NLA_F_NESTED.
func (w *wb) nestNoFlag(typ uint16, f func(*wb)) *wb { return w.nestFlags(typ, f) }

func (w *wb) nestFlags(typ uint16, f func(*wb)) *wb {
	start := len(w.b)
	w.b = append(w.b, 0, 0, 0, 0)
	f(w)
	ne().PutUint16(w.b[start:], uint16(len(w.b)-start))
	ne().PutUint16(w.b[start+2:], typ)
	return w
}

// nlmsg builds a whole message: struct nlmsghdr (pid 0), struct p4tcmsg,
// then the attributes body writes.
func nlmsg(typ, flags uint16, seq, pipeid, obj uint32, body func(*wb)) []byte {
	w := &wb{}
	w.b = make([]byte, 16)
	w.b = ne().AppendUint32(w.b, pipeid)
	w.b = ne().AppendUint32(w.b, obj)
	body(w)
	ne().PutUint32(w.b[0:], uint32(len(w.b)))
	ne().PutUint16(w.b[4:], typ)
	ne().PutUint16(w.b[6:], flags)
	ne().PutUint32(w.b[8:], seq)
	return w.b
}

// tcActP4Bytes is struct tc_act_p4 with action TC_ACT_PIPE.
func tcActP4Bytes() []byte {
	b := make([]byte, sizeofTcActP4)
	ne().PutUint32(b[8:], TC_ACT_PIPE)
	return b
}

// tree renders an attribute stream for failure messages.
func tree(b []byte) string {
	var sb strings.Builder
	var walk func(b []byte, depth int)
	walk = func(b []byte, depth int) {
		for len(b) >= 4 {
			l := int(ne().Uint16(b))
			typ := ne().Uint16(b[2:])
			if l < 4 || l > len(b) {
				fmt.Fprintf(&sb, "%s!! bad length %d of %d\n", strings.Repeat("  ", depth), l, len(b))
				return
			}
			v := b[4:l]
			fmt.Fprintf(&sb, "%stype %d%s len %d", strings.Repeat("  ", depth), typ&^NLA_F_NESTED, map[bool]string{true: " (nested)"}[typ&NLA_F_NESTED != 0], l)
			if typ&NLA_F_NESTED != 0 || looksNested(v) {
				sb.WriteString("\n")
				walk(v, depth+1)
			} else {
				fmt.Fprintf(&sb, " % x\n", v)
			}
			n := (l + 3) &^ 3
			if n > len(b) {
				n = len(b)
			}
			b = b[n:]
		}
	}
	if len(b) >= 24 {
		fmt.Fprintf(&sb, "nlmsghdr % x\np4tcmsg % x\n", b[:16], b[16:24])
		walk(b[24:], 0)
	}
	return sb.String()
}

// looksNested guesses whether an unflagged attribute is a nest (tc action
// list indices carry no NLA_F_NESTED).
func looksNested(v []byte) bool {
	if len(v) < 4 {
		return false
	}
	for len(v) >= 4 {
		l := int(ne().Uint16(v))
		if l < 4 || l > len(v) {
			return false
		}
		n := (l + 3) &^ 3
		if n > len(v) {
			return n-len(v) < 4 && len(v) == l
		}
		v = v[n:]
	}
	return len(v) == 0
}

// offlineBackend is a Backend with a committed plan and no socket: enough to
// prepare and encode ops.
func offlineBackend(t testing.TB, abi ABI, c *translator.Config) *Backend {
	t.Helper()
	a, err := tableFor(abi)
	if err != nil {
		t.Fatal(err)
	}
	p, err := buildPlan(a, c)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{a: a, enc: encoder{a}, state: map[string]*tableState{}}
	b.adopt(p, nil)
	return b
}

// messagesFor encodes one op as Apply would send it alone (timer profile
// updates first), and commits its reservations as if it took effect.
func (b *Backend) messagesFor(t testing.TB, op translator.Op) []*message {
	t.Helper()
	if op.Kind == translator.OpSetDefault {
		tp := b.p.tables[op.Entry.Table.ID]
		call, err := tp.actionCall(op.Entry.Action, b.ports, 0)
		if err != nil {
			t.Fatal(err)
		}
		return []*message{b.enc.defaultMissMsg(b.p.pname, tp, call)}
	}
	verb := verbOf(op.Kind)
	pd, pre, err := b.prepare(verb, op.Entry)
	if err != nil {
		t.Fatal(err)
	}
	pd.commit()
	var out []*message
	if pre != nil {
		out = append(out, pre)
	}
	return append(out, b.enc.entriesMsg(verb, b.p.pname, []*entrySpec{pd.spec}))
}
