package tcbackend

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Attribute building. P4TC parses every nest with nla_parse_nested (strict
// validation), which refuses a nest without NLA_F_NESTED; iproute2-p4tc sets
// the flag on every nest except the tc action list indices
// (tc/p4tc_table.c parse_table_action, tc/m_action.c parse_action), which
// the kernel parses with the generic tc action code. nest and nestNoFlag
// mirror that.

// nest returns a nested attribute with NLA_F_NESTED set.
func nest(typ uint16, children ...*nl.RtAttr) *nl.RtAttr {
	a := nl.NewRtAttr(int(typ|nl.NLA_F_NESTED), nil)
	for _, c := range children {
		if c != nil {
			a.AddChild(c)
		}
	}
	return a
}

// nestNoFlag returns a nested attribute without NLA_F_NESTED.
func nestNoFlag(typ uint16, children ...*nl.RtAttr) *nl.RtAttr {
	a := nl.NewRtAttr(int(typ), nil)
	for _, c := range children {
		if c != nil {
			a.AddChild(c)
		}
	}
	return a
}

func attrBytes(typ uint16, b []byte) *nl.RtAttr { return nl.NewRtAttr(int(typ), b) }

// attrString is a NUL-terminated string, as iproute2's addattrstrz.
func attrString(typ uint16, s string) *nl.RtAttr {
	return nl.NewRtAttr(int(typ), nl.ZeroTerminated(s))
}

func attrU8(typ uint16, v uint8) *nl.RtAttr   { return nl.NewRtAttr(int(typ), nl.Uint8Attr(v)) }
func attrU16(typ uint16, v uint16) *nl.RtAttr { return nl.NewRtAttr(int(typ), nl.Uint16Attr(v)) }
func attrU32(typ uint16, v uint32) *nl.RtAttr { return nl.NewRtAttr(int(typ), nl.Uint32Attr(v)) }
func attrU64(typ uint16, v uint64) *nl.RtAttr { return nl.NewRtAttr(int(typ), nl.Uint64Attr(v)) }

// attrBitfield32 is a struct nla_bitfield32 {value, selector}.
func attrBitfield32(typ uint16, value, selector uint32) *nl.RtAttr {
	bf := nl.Uint32Bitfield{Value: value, Selector: selector}
	return nl.NewRtAttr(int(typ), bf.Serialize())
}

// Attribute parsing.

// attrs is a parsed attribute stream: every attribute by type, in order.
// Types are masked (NLA_F_NESTED and NLA_F_NET_BYTEORDER removed).
type attrs []attrEntry

type attrEntry struct {
	typ uint16
	val []byte
}

// parseAttrs parses an attribute stream with nl.ParseRouteAttr. The stream
// is padded to 4 bytes first: the nl parser slices by the aligned length and
// would run past a stream whose last attribute is unpadded.
func parseAttrs(b []byte) (attrs, error) {
	if r := len(b) % unix.NLA_ALIGNTO; r != 0 {
		p := make([]byte, len(b)+unix.NLA_ALIGNTO-r)
		copy(p, b)
		b = p
	}
	raw, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil, fmt.Errorf("parse attributes: %w: %v", ErrProtocol, err)
	}
	out := make(attrs, len(raw))
	for i, a := range raw {
		out[i] = attrEntry{typ: a.Attr.Type & nl.NLA_TYPE_MASK, val: a.Value}
	}
	return out, nil
}

// get returns the first attribute of a type.
func (as attrs) get(typ uint16) ([]byte, bool) {
	for _, a := range as {
		if a.typ == typ {
			return a.val, true
		}
	}
	return nil, false
}

// nested parses the first attribute of a type as a nest; ok is false when it
// is absent.
func (as attrs) nested(typ uint16) (attrs, bool, error) {
	v, ok := as.get(typ)
	if !ok {
		return nil, false, nil
	}
	n, err := parseAttrs(v)
	return n, true, err
}

func (as attrs) u8(typ uint16) (uint8, bool, error) {
	v, ok := as.get(typ)
	if !ok {
		return 0, false, nil
	}
	if len(v) < 1 {
		return 0, true, fmt.Errorf("attribute %d: %w: %d bytes for a u8", typ, ErrProtocol, len(v))
	}
	return v[0], true, nil
}

func (as attrs) u16(typ uint16) (uint16, bool, error) {
	v, ok := as.get(typ)
	if !ok {
		return 0, false, nil
	}
	if len(v) < 2 {
		return 0, true, fmt.Errorf("attribute %d: %w: %d bytes for a u16", typ, ErrProtocol, len(v))
	}
	return nl.NativeEndian().Uint16(v), true, nil
}

func (as attrs) u32(typ uint16) (uint32, bool, error) {
	v, ok := as.get(typ)
	if !ok {
		return 0, false, nil
	}
	if len(v) < 4 {
		return 0, true, fmt.Errorf("attribute %d: %w: %d bytes for a u32", typ, ErrProtocol, len(v))
	}
	return nl.NativeEndian().Uint32(v), true, nil
}

func (as attrs) u64(typ uint16) (uint64, bool, error) {
	v, ok := as.get(typ)
	if !ok {
		return 0, false, nil
	}
	if len(v) < 8 {
		return 0, true, fmt.Errorf("attribute %d: %w: %d bytes for a u64", typ, ErrProtocol, len(v))
	}
	return nl.NativeEndian().Uint64(v), true, nil
}

// str returns a string attribute without its NUL terminator and padding.
func (as attrs) str(typ uint16) (string, bool) {
	v, ok := as.get(typ)
	if !ok {
		return "", false
	}
	for i, c := range v {
		if c == 0 {
			return string(v[:i]), true
		}
	}
	return string(v), true
}

// native is the byte order of integers in netlink attributes.
var native binary.ByteOrder = nl.NativeEndian()
