package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// ValueSetMember is one member of a parser value set: a match over the
// set's fields, laid out like a table key.
type ValueSetMember struct {
	// Match has one element per field, by field index; a field left out
	// (lpm, ternary, range, optional don't-care) is not Set.
	Match []FieldMatch
	// Key and Mask are the member's key and mask blobs (ValueSet.Layout),
	// nil without a layout; Mask is nil for exact-only sets.
	Key, Mask []byte
}

// ValueSetWrite replaces the members of a value set.
type ValueSetWrite struct {
	ValueSet *ValueSet
	Members  []ValueSetMember
	// Prev are the members replaced.
	Prev []ValueSetMember
}

// valueSetState is a value set's members as written.
type valueSetState struct {
	vs      *ValueSet
	members []ValueSetMember
	keys    map[string]bool
	// proto are the members as written, canonical, in order.
	proto []*p4v1.ValueSetMember
}

func (w *batch) stageValueSet(i int, ve *p4v1.ValueSetEntry, op writeOp) error {
	cfg := w.d.cfg
	if op != opModify {
		return errorf(ErrInvalid, "value set entries can only be modified, not %s (P4Runtime §9.6)", opName(op))
	}
	if ve.GetValueSetId() == 0 {
		return errorf(ErrInvalid, "value_set_id 0 is only valid in wildcard reads")
	}
	vs := cfg.ValueSets[ve.GetValueSetId()]
	if vs == nil {
		return errorf(ErrInvalid, "value set id %#x is not a value set of the pipeline%s", ve.GetValueSetId(), cfg.kindHint(ve.GetValueSetId()))
	}
	what := "value set " + vs.Name
	if !w.sc.allows(vs.ID) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	if err := w.need(ExternValueSets, what); err != nil {
		return err
	}
	if int64(len(ve.GetMembers())) > int64(vs.Size) {
		return errorf(ErrFull, "%s holds at most %d members, got %d", what, vs.Size, len(ve.GetMembers()))
	}
	members := make([]ValueSetMember, len(ve.GetMembers()))
	keys := make(map[string]bool, len(members))
	for j, m := range ve.GetMembers() {
		e := newEntry(vs.match)
		if _, err := cfg.parseMatch(vs.match, &p4v1.TableEntry{Match: m.GetMatch()}, e, true); err != nil {
			return errorf(ErrInvalid, "%v (member %d)", err, j)
		}
		if keys[e.skey] {
			// §9.6: duplicates are ALREADY_EXISTS, for read-write symmetry.
			return errorf(ErrExists, "%s: member %d %s is given twice", what, j, describeKey(e))
		}
		keys[e.skey] = true
		members[j] = ValueSetMember{Match: e.Match, Key: e.Key, Mask: e.Mask}
	}
	st := w.d.st.valueSets[vs.ID]
	old := *st
	st.members, st.keys, st.proto = members, keys, ve.GetMembers()
	w.pushExt(i, &ExternOp{Kind: ExtWriteValueSet, ValueSet: &ValueSetWrite{ValueSet: vs, Members: members, Prev: old.members}},
		func() { *st = old })
	return nil
}
