package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// RegisterWrite sets cells of a register.
type RegisterWrite struct {
	Register *Register
	// Index is the cell; -1 is every cell (a RegisterEntry without index).
	Index int64
	// Value is the canonical P4Runtime bytestring of the new value: for
	// bit<W>, the unsigned value without leading zero bytes; for int<W>,
	// the two's complement value without redundant sign bytes; for bool,
	// one byte 0 or 1.
	Value []byte

	prev cellsState[[]byte]
}

// registerState is the last written value of each register cell; a nil
// value is zero.
type registerState struct {
	r *Register
	cellsState[[]byte]
}

// zeroCell is the value of a register cell never written.
var zeroCell = []byte{0}

func (rs *registerState) value(i int64) []byte {
	if v := rs.get(i); v != nil {
		return v
	}
	return zeroCell
}

func (w *batch) stageRegister(i int, re *p4v1.RegisterEntry, op writeOp) error {
	cfg := w.d.cfg
	if op != opModify {
		return errorf(ErrInvalid, "register entries can only be modified, not %s (a register's cells always exist)", opName(op))
	}
	if re.GetRegisterId() == 0 {
		return errorf(ErrInvalid, "register_id 0 is only valid in wildcard reads")
	}
	r := cfg.Registers[re.GetRegisterId()]
	if r == nil {
		return errorf(ErrInvalid, "register id %#x is not a register of the pipeline%s", re.GetRegisterId(), cfg.kindHint(re.GetRegisterId()))
	}
	what := "register " + r.Name
	if !w.sc.allows(r.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternRegisters, what); err != nil {
		return err
	}
	if r.Kind == DataUnsupported {
		return errorf(ErrUnsupported, "%s: %s", what, r.why)
	}
	idx, _, err := cellIndex(re.GetIndex(), r.Size, what)
	if err != nil {
		return err
	}
	v, err := parseP4Data(r, re.GetData(), what)
	if err != nil {
		return err
	}
	rs := w.d.st.registers[r.ID]
	rw := &RegisterWrite{Register: r, Index: idx, Value: v}
	var u func()
	rw.prev, u = rs.write(idx, v)
	w.pushExt(i, &ExternOp{Kind: ExtWriteRegister, Register: rw}, u)
	return nil
}

// parseP4Data checks a written P4Data against the register's type
// (P4Runtime §9.7: data must match type_spec, else INVALID_ARGUMENT) and
// returns its canonical bytes.
func parseP4Data(r *Register, d *p4v1.P4Data, what string) ([]byte, error) {
	switch r.Kind {
	case DataBit, DataInt:
		x, ok := d.GetData().(*p4v1.P4Data_Bitstring)
		if !ok {
			return nil, errorf(ErrInvalid, "%s: data must be a bitstring for a %s<%d> register, got %s", what, kindName(r.Kind), r.Bits, p4DataKind(d))
		}
		var c []byte
		if r.Kind == DataBit {
			c, ok = canonical(x.Bitstring, r.Bits)
		} else {
			c, ok = canonicalSigned(x.Bitstring, r.Bits)
		}
		if !ok {
			if len(x.Bitstring) == 0 {
				return nil, errorf(ErrInvalid, "%s: empty bitstring", what)
			}
			return nil, errorf(ErrInvalid, "%s: value %s does not fit in %s<%d>", what, hexOf(x.Bitstring), kindName(r.Kind), r.Bits)
		}
		x.Bitstring = c
		return c, nil
	case DataBool:
		x, ok := d.GetData().(*p4v1.P4Data_Bool)
		if !ok {
			return nil, errorf(ErrInvalid, "%s: data must be a bool, got %s", what, p4DataKind(d))
		}
		if x.Bool {
			return []byte{1}, nil
		}
		return []byte{0}, nil
	}
	return nil, errorf(ErrUnsupported, "%s: %s", what, r.why)
}

// p4Data renders a register cell value.
func p4Data(r *Register, v []byte) *p4v1.P4Data {
	if r.Kind == DataBool {
		return &p4v1.P4Data{Data: &p4v1.P4Data_Bool{Bool: len(v) > 0 && v[len(v)-1] != 0}}
	}
	return &p4v1.P4Data{Data: &p4v1.P4Data_Bitstring{Bitstring: v}}
}

// normalizeCell turns a backend's raw cell bytes into the canonical value:
// the low Bits bits, sign-extended for int<W>.
func normalizeCell(r *Register, raw []byte) []byte {
	if len(raw) == 0 {
		return zeroCell
	}
	n := r.Bytes()
	b := make([]byte, n)
	if len(raw) >= n {
		copy(b, raw[len(raw)-n:])
	} else {
		copy(b[n-len(raw):], raw)
	}
	if extra := n*8 - r.Bits; extra > 0 {
		top := byte(0xff) >> extra // the value bits of b[0]
		if r.Kind == DataInt && b[0]&(1<<(7-extra)) != 0 {
			b[0] |= ^top
		} else {
			b[0] &= top
		}
	}
	switch r.Kind {
	case DataBool:
		if isZero(b) {
			return []byte{0}
		}
		return []byte{1}
	case DataInt:
		c, _ := canonicalSigned(b, 0)
		return c
	}
	c, _ := canonical(b, 0)
	return c
}

// canonicalSigned is canonical for int<width> (P4Runtime §8.3): redundant
// sign-extension bytes removed; ok is false when b is empty or its value
// needs more than width bits in two's complement. width 0 skips the check.
func canonicalSigned(b []byte, width int) (c []byte, ok bool) {
	if len(b) == 0 {
		return nil, false
	}
	i := 0
	for i < len(b)-1 && ((b[i] == 0 && b[i+1]&0x80 == 0) || (b[i] == 0xff && b[i+1]&0x80 != 0)) {
		i++
	}
	c = b[i:]
	if width <= 0 {
		return c, true
	}
	return c, signedBits(c) <= width
}

// signedBits is the fewest bits that hold the two's complement value c.
func signedBits(c []byte) int {
	if c[0]&0x80 == 0 {
		return bitLen(c) + 1
	}
	inv := make([]byte, len(c))
	for i, x := range c {
		inv[i] = ^x
	}
	return bitLen(inv) + 1
}

func kindName(k DataKind) string {
	switch k {
	case DataBit:
		return "bit"
	case DataInt:
		return "int"
	case DataBool:
		return "bool"
	}
	return "unsupported"
}

// p4DataKind names the oneof a P4Data holds, for messages.
func p4DataKind(d *p4v1.P4Data) string {
	switch d.GetData().(type) {
	case nil:
		return "nothing"
	case *p4v1.P4Data_Bitstring:
		return "a bitstring"
	case *p4v1.P4Data_Varbit:
		return "a varbit"
	case *p4v1.P4Data_Bool:
		return "a bool"
	case *p4v1.P4Data_Tuple:
		return "a tuple"
	case *p4v1.P4Data_Struct:
		return "a struct"
	case *p4v1.P4Data_Header:
		return "a header"
	case *p4v1.P4Data_HeaderUnion:
		return "a header union"
	case *p4v1.P4Data_HeaderStack:
		return "a header stack"
	case *p4v1.P4Data_HeaderUnionStack:
		return "a header union stack"
	case *p4v1.P4Data_Enum:
		return "an enum"
	case *p4v1.P4Data_Error:
		return "an error"
	case *p4v1.P4Data_EnumValue:
		return "a serializable enum"
	}
	return "an unknown kind"
}
