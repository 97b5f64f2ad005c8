package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Member is an action profile member: an action with its arguments that
// table entries and groups refer to by id (P4Runtime §9.2.1).
type Member struct {
	Profile *ActionProfile
	ID      uint32
	Action  *ActionCall
	// OneShot: the Device made the member for an action of a one-shot
	// entry; controllers never see it.
	OneShot bool

	proto *p4v1.ActionProfileMember
}

// GroupMember is a member of a group.
type GroupMember struct {
	// Member is the member id.
	Member uint32
	// Weight is the member's weight; 0 when the selector disallows weights
	// (each member then counts once).
	Weight int32
	// WatchPort is the port whose liveness the member depends on; 0 is
	// none. The datapath leaves a member out of selection while its
	// watch port is down.
	WatchPort uint32
	// LegacyWatch: the port was given in the deprecated watch field.
	LegacyWatch bool
}

// Group is an action selector group (P4Runtime §9.2.2).
type Group struct {
	Profile *ActionProfile
	ID      uint32
	Members []GroupMember
	// MaxSize is the max_size given at INSERT; 0 lets the selector's
	// bounds apply.
	MaxSize int32
	// OneShot: the Device made the group for a one-shot entry.
	OneShot bool

	// size is the group's size by the selector's size semantics.
	size  int64
	proto *p4v1.ActionProfileGroup
}

// IndirectAction is what an entry of an indirect table runs: a member, a
// group, or a one-shot action set, which the Device realises as a group of
// hidden members (P4Runtime §9.2.3: "semantically equivalent to programming
// the table entry, group, and members individually").
type IndirectAction struct {
	// Member is the member id, or 0.
	Member uint32
	// Group is the group id, or 0. For a one-shot entry it is the id of
	// the group the Device made.
	Group uint32
	// OneShot is the entry's one-shot action set, or nil.
	OneShot *ActionSet
}

// ActionSet is a one-shot action set. Its actions are not coalesced: two
// identical actions are two members (§9.2.3).
type ActionSet struct {
	Actions []SetAction
}

// SetAction is one action of a one-shot set.
type SetAction struct {
	Action      *ActionCall
	Weight      int32
	WatchPort   uint32
	LegacyWatch bool
	// Member is the id of the hidden member the Device made for it.
	Member uint32
}

// profileState is the members and groups of one action profile.
type profileState struct {
	p       *ActionProfile
	members map[uint32]*Member
	groups  map[uint32]*Group
	// mgroups and mentries count the groups and table entries that use
	// each member; gentries the entries that use each group.
	mgroups, mentries, gentries map[uint32]int32
	// visible counts the members and groups controllers wrote; oneShots
	// the entries written with action sets. At most one is non-zero
	// (§9.2.3: no mixing on a selector).
	visible, oneShots int
	// used is the size of all groups together.
	used int64
	// nextID is where the search for a free hidden id starts.
	nextID uint32
}

func newProfileState(p *ActionProfile) *profileState {
	return &profileState{p: p, members: map[uint32]*Member{}, groups: map[uint32]*Group{},
		mgroups: map[uint32]int32{}, mentries: map[uint32]int32{}, gentries: map[uint32]int32{}}
}

// link counts the references of a stored entry.
func (ps *profileState) link(e *Entry) { ps.ref(e, 1) }

// unlink drops the references of an entry leaving the store.
func (ps *profileState) unlink(e *Entry) { ps.ref(e, -1) }

func (ps *profileState) ref(e *Entry, d int32) {
	if e == nil || e.Indirect == nil {
		return
	}
	ind := e.Indirect
	switch {
	case ind.Member != 0:
		ps.mentries[ind.Member] += d
	case ind.Group != 0:
		ps.gentries[ind.Group] += d
	}
	if ind.OneShot != nil {
		ps.oneShots += int(d)
	}
}

// putMember replaces member prev (nil: none) with m (nil: delete) and
// returns the undo.
func (ps *profileState) putMember(id uint32, prev, m *Member) func() {
	set := func(from, to *Member) {
		if from != nil && !from.OneShot {
			ps.visible--
		}
		if to != nil {
			ps.members[id] = to
			if !to.OneShot {
				ps.visible++
			}
		} else {
			delete(ps.members, id)
		}
	}
	set(prev, m)
	return func() { set(m, prev) }
}

// putGroup replaces group prev (nil: none) with g (nil: delete), moving the
// member references and the selector's used size, and returns the undo.
func (ps *profileState) putGroup(id uint32, prev, g *Group) func() {
	set := func(from, to *Group) {
		if from != nil {
			for _, m := range from.Members {
				ps.mgroups[m.Member]--
			}
			ps.used -= from.size
			if !from.OneShot {
				ps.visible--
			}
		}
		if to != nil {
			for _, m := range to.Members {
				ps.mgroups[m.Member]++
			}
			ps.used += to.size
			if !to.OneShot {
				ps.visible++
			}
			ps.groups[id] = to
		} else {
			delete(ps.groups, id)
		}
	}
	set(prev, g)
	return func() { set(g, prev) }
}

// hiddenID returns an id unused in ids for a one-shot member or group.
// Controllers' ids cannot collide: a selector with one-shot entries has no
// controller members or groups.
func hiddenID[V any](ps *profileState, ids map[uint32]V) uint32 {
	for {
		ps.nextID++
		if ps.nextID == 0 {
			continue
		}
		if _, used := ids[ps.nextID]; !used {
			return ps.nextID
		}
	}
}

// groupSize is a group's size by the selector's size semantics (P4Info
// selector_size_semantics, v1.4): the number of members, or the sum of
// their weights (each member counting once when weights are disallowed).
func (p *ActionProfile) groupSize(weights func(yield func(int32) bool)) int64 {
	var n int64
	for w := range weights {
		if p.SumOfMembers || p.WeightsDisallowed {
			n++
		} else {
			n += int64(w)
		}
	}
	return n
}

// checkWeight applies §9.2.2's weight rules: only 0 when weights are
// disallowed, else positive; under sum_of_members at most
// max_member_weight.
func (p *ActionProfile) checkWeight(w int32, what string) error {
	if p.WeightsDisallowed {
		if w != 0 {
			return errorf(ErrInvalid, "%s: action selector %s disallows weights; weight must be 0, got %d", what, p.Name, w)
		}
		return nil
	}
	if w <= 0 {
		return errorf(ErrInvalid, "%s: weight must be positive, got %d", what, w)
	}
	if p.SumOfMembers && p.MaxMemberWeight > 0 && w > p.MaxMemberWeight {
		return errorf(ErrInvalid, "%s: weight %d exceeds max_member_weight %d of action selector %s", what, w, p.MaxMemberWeight, p.Name)
	}
	return nil
}

// watchPort checks a member's watch port: watch_port bytes must be empty or
// an SDN port (canonicalised in place); the deprecated watch int32 must not
// be negative (0 is none). p4tcd does not know which ports exist (the
// datapath does): existence is the backend's check.
// legacy is true for the deprecated form.
func watchPort(kind any, what string) (port uint32, legacy bool, err error) {
	switch x := kind.(type) {
	case *p4v1.ActionProfileGroup_Member_Watch:
		return deprecatedWatch(x.Watch, what)
	case *p4v1.ActionProfileAction_Watch:
		return deprecatedWatch(x.Watch, what)
	case *p4v1.ActionProfileGroup_Member_WatchPort:
		return watchBytes(&x.WatchPort, what)
	case *p4v1.ActionProfileAction_WatchPort:
		return watchBytes(&x.WatchPort, what)
	}
	return 0, false, nil
}

func watchBytes(b *[]byte, what string) (uint32, bool, error) {
	if len(*b) == 0 {
		return 0, false, nil
	}
	p, err := sdnPort(*b, what+": watch_port")
	if err == nil {
		*b = canonicalPort(*b)
	}
	return p, false, err
}

func deprecatedWatch(w int32, what string) (uint32, bool, error) {
	if w < 0 {
		return 0, true, errorf(ErrInvalid, "%s: negative watch port %d", what, w)
	}
	return uint32(w), true, nil
}

// profileOf resolves an action_profile_id of a member or group message.
func (p *Pipeline) profileOf(id uint32) (*ActionProfile, error) {
	if id == 0 {
		return nil, errorf(ErrInvalid, "action_profile_id 0 is only valid in wildcard reads")
	}
	prof := p.Profiles[id]
	if prof == nil {
		return nil, errorf(ErrInvalid, "action profile id %#x is not an action profile of the pipeline%s", id, p.kindHint(id))
	}
	return prof, nil
}

// parseMemberAction checks a member's action: it must be an action of every
// table the profile implements (§9.2.1) and usable in entries.
func (p *Pipeline) parseMemberAction(prof *ActionProfile, a *p4v1.Action, what string) (*ActionCall, error) {
	if a == nil {
		return nil, errorf(ErrInvalid, "%s: the action is required", what)
	}
	act := p.Actions[a.GetActionId()]
	if act == nil {
		return nil, errorf(ErrInvalid, "%s: action id %#x is not an action%s", what, a.GetActionId(), p.kindHint(a.GetActionId()))
	}
	for _, t := range prof.tables {
		ar := t.Actions[act.ID]
		if ar == nil {
			return nil, errorf(ErrInvalid, "%s: action %s is not an action of table %s", what, act.Name, t.Name)
		}
		if ar.DefaultOnly {
			return nil, errorf(ErrPermission, "%s: action %s is @defaultonly in table %s and cannot be used by entries", what, act.Name, t.Name)
		}
	}
	ac := newActionCall(act)
	if _, err := parseParams(act, a.GetParams(), ac.Params, nil); err != nil {
		return nil, errorf(ErrInvalid, "%s: %v", what, err)
	}
	return ac, nil
}

// parseIndirect checks the action of an entry of an indirect table.
func (p *Pipeline) parseIndirect(t *Table, ta *p4v1.TableAction) (*IndirectAction, error) {
	prof := t.Profile
	switch x := ta.GetType().(type) {
	case *p4v1.TableAction_ActionProfileMemberId:
		if x.ActionProfileMemberId == 0 {
			return nil, errorf(ErrInvalid, "table %s: action_profile_member_id 0 is not a member", t.Name)
		}
		return &IndirectAction{Member: x.ActionProfileMemberId}, nil
	case *p4v1.TableAction_ActionProfileGroupId:
		if !prof.WithSelector {
			return nil, errorf(ErrInvalid, "table %s: action profile %s has no selector, so no groups: give a member", t.Name, prof.Name)
		}
		if x.ActionProfileGroupId == 0 {
			return nil, errorf(ErrInvalid, "table %s: action_profile_group_id 0 is not a group", t.Name)
		}
		return &IndirectAction{Group: x.ActionProfileGroupId}, nil
	case *p4v1.TableAction_ActionProfileActionSet:
		return p.parseActionSet(t, x.ActionProfileActionSet)
	}
	return nil, errorf(ErrInvalid, "table %s: action is empty", t.Name)
}

// parseActionSet checks a one-shot action set (P4Runtime §9.2.3).
func (p *Pipeline) parseActionSet(t *Table, as *p4v1.ActionProfileActionSet) (*IndirectAction, error) {
	prof := t.Profile
	what := "table " + t.Name + ": action set"
	if !prof.WithSelector {
		return nil, errorf(ErrInvalid, "%s: one-shot action sets need an action selector; action profile %s has none (give a member)", what, prof.Name)
	}
	// v1.5 per-group settings: the defaults must be supported, and so
	// must "the specific value combination that corresponds to that
	// default"; p4tcd has no per-group hash settings otherwise.
	switch m := as.GetActionSelectionMode(); m {
	case p4v1.ActionProfileActionSet_DEFAULT_MODE_DETERMINED_BY_ACTION_SELECTOR, p4v1.ActionProfileActionSet_HASH:
	case p4v1.ActionProfileActionSet_RANDOM:
		return nil, errorf(ErrUnsupported, "%s: action_selection_mode RANDOM: selectors hash; per-group selection modes are not supported", what)
	default:
		return nil, errorf(ErrInvalid, "%s: unknown action_selection_mode %d", what, m)
	}
	switch s := as.GetSizeSemantics(); s {
	case p4v1.ActionProfileActionSet_DEFAULT_SIZE_DETERMINED_BY_ACTION_SELECTOR:
	case p4v1.ActionProfileActionSet_SUM_OF_WEIGHTS, p4v1.ActionProfileActionSet_SUM_OF_MEMBERS:
		if (s == p4v1.ActionProfileActionSet_SUM_OF_MEMBERS) != prof.SumOfMembers {
			return nil, errorf(ErrUnsupported, "%s: size_semantics %v differs from action selector %s's; per-group size semantics are not supported", what, s, prof.Name)
		}
	default:
		return nil, errorf(ErrInvalid, "%s: unknown size_semantics %d", what, s)
	}
	acts := as.GetActionProfileActions()
	if len(acts) == 0 {
		return nil, errorf(ErrInvalid, "%s: no actions", what)
	}
	set := &ActionSet{Actions: make([]SetAction, len(acts))}
	for k, a := range acts {
		awhat := what + ": action " + itoa(uint64(k))
		if a.GetAction() == nil {
			return nil, errorf(ErrInvalid, "%s: action is not set", awhat)
		}
		ac, _, err := p.parseAction(t, a.GetAction(), false, nil)
		if err != nil {
			return nil, err
		}
		if err := prof.checkWeight(a.GetWeight(), awhat); err != nil {
			return nil, err
		}
		port, legacy, err := watchPort(a.GetWatchKind(), awhat)
		if err != nil {
			return nil, err
		}
		set.Actions[k] = SetAction{Action: ac, Weight: a.GetWeight(), WatchPort: port, LegacyWatch: legacy}
	}
	if prof.MaxGroupSize > 0 {
		if n := setSize(prof, set); n > int64(prof.MaxGroupSize) {
			sem := "sum of weights"
			if prof.SumOfMembers || prof.WeightsDisallowed {
				sem = "number of actions"
			}
			return nil, errorf(ErrInvalid, "%s: %s %d exceeds max_group_size %d of action selector %s", what, sem, n, prof.MaxGroupSize, prof.Name)
		}
	}
	return &IndirectAction{OneShot: set}, nil
}

func setSize(prof *ActionProfile, set *ActionSet) int64 {
	return prof.groupSize(func(yield func(int32) bool) {
		for _, a := range set.Actions {
			if !yield(a.Weight) {
				return
			}
		}
	})
}

func groupSize(prof *ActionProfile, ms []GroupMember) int64 {
	return prof.groupSize(func(yield func(int32) bool) {
		for _, m := range ms {
			if !yield(m.Weight) {
				return
			}
		}
	})
}

func (w *batch) stageMember(i int, am *p4v1.ActionProfileMember, op writeOp) error {
	cfg := w.d.cfg
	prof, err := cfg.profileOf(am.GetActionProfileId())
	if err != nil {
		return err
	}
	what := "action profile " + prof.Name + ": member " + itoa(uint64(am.GetMemberId()))
	if !w.sc.allows(prof.ID) {
		return errorf(ErrPermission, "role %q may not write action profile %s", w.sc.Role, prof.Name)
	}
	if err := w.need(ExternActionProfiles, "action profile "+prof.Name); err != nil {
		return err
	}
	id := am.GetMemberId()
	if id == 0 {
		return errorf(ErrInvalid, "action profile %s: member_id 0 is only valid in wildcard reads", prof.Name)
	}
	ps := w.d.st.profiles[prof.ID]
	prev := ps.members[id]
	if prev != nil && prev.OneShot {
		prev = nil // one-shot members are not the controller's
	}
	switch op {
	case opDelete:
		// §9.2.1: DELETE considers only the ids.
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
		if n := ps.mgroups[id]; n > 0 {
			return errorf(ErrPrecondition, "%s is in %d group(s); remove it from them first", what, n)
		}
		if n := ps.mentries[id]; n > 0 {
			return errorf(ErrPrecondition, "%s is used by %d table entr(ies)", what, n)
		}
		w.pushExt(i, &ExternOp{Kind: ExtDeleteMember, Member: prev}, ps.putMember(id, prev, nil))
		return nil
	case opInsert:
		if ps.oneShots > 0 {
			return errorf(ErrInvalid, "%s: action selector %s is programmed with one-shot action sets; members and groups cannot be mixed in (P4Runtime §9.2.3)", what, prof.Name)
		}
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
		if prof.Size > 0 && int64(len(ps.members)) >= prof.Size {
			return errorf(ErrFull, "action profile %s is full (%d members)", prof.Name, prof.Size)
		}
	case opModify:
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
	}
	ac, err := cfg.parseMemberAction(prof, am.GetAction(), what)
	if err != nil {
		return err
	}
	m := &Member{Profile: prof, ID: id, Action: ac,
		proto: &p4v1.ActionProfileMember{ActionProfileId: prof.ID, MemberId: id, Action: am.GetAction()}}
	x := &ExternOp{Kind: ExtInsertMember, Member: m}
	if prev != nil {
		x.Kind, x.PrevMember = ExtModifyMember, prev
	}
	w.pushExt(i, x, ps.putMember(id, prev, m))
	return nil
}

func (w *batch) stageGroup(i int, ag *p4v1.ActionProfileGroup, op writeOp) error {
	cfg := w.d.cfg
	prof, err := cfg.profileOf(ag.GetActionProfileId())
	if err != nil {
		return err
	}
	what := "action selector " + prof.Name + ": group " + itoa(uint64(ag.GetGroupId()))
	if !prof.WithSelector {
		return errorf(ErrInvalid, "action profile %s has no selector: it has members but no groups", prof.Name)
	}
	if !w.sc.allows(prof.ID) {
		return errorf(ErrPermission, "role %q may not write action profile %s", w.sc.Role, prof.Name)
	}
	if err := w.need(ExternActionProfiles, "action profile "+prof.Name); err != nil {
		return err
	}
	id := ag.GetGroupId()
	if id == 0 {
		return errorf(ErrInvalid, "action selector %s: group_id 0 is only valid in wildcard reads", prof.Name)
	}
	ps := w.d.st.profiles[prof.ID]
	prev := ps.groups[id]
	if prev != nil && prev.OneShot {
		prev = nil
	}
	switch op {
	case opDelete:
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
		if n := ps.gentries[id]; n > 0 {
			return errorf(ErrPrecondition, "%s is used by %d table entr(ies)", what, n)
		}
		w.pushExt(i, &ExternOp{Kind: ExtDeleteGroup, Group: prev}, ps.putGroup(id, prev, nil))
		return nil
	case opInsert:
		if ps.oneShots > 0 {
			return errorf(ErrInvalid, "%s: action selector %s is programmed with one-shot action sets; members and groups cannot be mixed in (P4Runtime §9.2.3)", what, prof.Name)
		}
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
	case opModify:
		if err := checkPresence(op, prev != nil, what); err != nil {
			return err
		}
		if ag.GetMaxSize() != prev.MaxSize {
			return errorf(ErrInvalid, "%s: max_size is fixed at INSERT (%d), got %d", what, prev.MaxSize, ag.GetMaxSize())
		}
	}
	// §9.2.2.1 "Rules on Setting max_size".
	maxSize := ag.GetMaxSize()
	switch {
	case maxSize < 0:
		return errorf(ErrInvalid, "%s: negative max_size %d", what, maxSize)
	case prof.MaxGroupSize > 0 && maxSize > prof.MaxGroupSize:
		return errorf(ErrInvalid, "%s: max_size %d exceeds max_group_size %d", what, maxSize, prof.MaxGroupSize)
	case prof.MaxGroupSize == 0 && prof.Size > 0 && int64(maxSize) > prof.Size:
		return errorf(ErrFull, "%s: max_size %d cannot be supported: the selector's size is %d", what, maxSize, prof.Size)
	}
	members := make([]GroupMember, len(ag.GetMembers()))
	seen := make(map[uint32]bool, len(members))
	for k, gm := range ag.GetMembers() {
		mid := gm.GetMemberId()
		mwhat := what + ": member " + itoa(uint64(mid))
		if mid == 0 {
			return errorf(ErrInvalid, "%s: member_id 0", what)
		}
		if seen[mid] {
			return errorf(ErrInvalid, "%s is listed twice (use its weight to repeat it)", mwhat)
		}
		seen[mid] = true
		if m := ps.members[mid]; m == nil || m.OneShot {
			return errorf(ErrNotFound, "%s does not exist in the selector", mwhat)
		}
		if err := prof.checkWeight(gm.GetWeight(), mwhat); err != nil {
			return err
		}
		port, legacy, err := watchPort(gm.GetWatchKind(), mwhat)
		if err != nil {
			return err
		}
		members[k] = GroupMember{Member: mid, Weight: gm.GetWeight(), WatchPort: port, LegacyWatch: legacy}
	}
	g := &Group{Profile: prof, ID: id, Members: members, MaxSize: maxSize, size: groupSize(prof, members),
		proto: &p4v1.ActionProfileGroup{ActionProfileId: prof.ID, GroupId: id, Members: ag.GetMembers(), MaxSize: maxSize}}
	if err := ps.checkGroupRoom(g, prev, what); err != nil {
		return err
	}
	x := &ExternOp{Kind: ExtInsertGroup, Group: g}
	if prev != nil {
		x.Kind, x.PrevGroup = ExtModifyGroup, prev
	}
	w.pushExt(i, x, ps.putGroup(id, prev, g))
	return nil
}

// checkGroupRoom refuses a group that does not fit its max_size (or the
// selector's max_group_size) or the selector's size with the other groups:
// RESOURCE_EXHAUSTED.
func (ps *profileState) checkGroupRoom(g, prev *Group, what string) error {
	prof := ps.p
	limit := int64(g.MaxSize)
	if limit == 0 {
		limit = int64(prof.MaxGroupSize)
	}
	if limit > 0 && g.size > limit {
		return errorf(ErrFull, "%s: size %d exceeds its bound %d", what, g.size, limit)
	}
	used := ps.used + g.size
	if prev != nil {
		used -= prev.size
	}
	if prof.Size > 0 && used > prof.Size {
		return errorf(ErrFull, "action selector %s is full: its groups would have size %d, more than %d", prof.Name, used, prof.Size)
	}
	return nil
}

// stageIndirect stages an entry of an indirect table: the references it
// makes must exist, and a one-shot entry brings its hidden members and
// group along (staged before the entry; a replaced or deleted one-shot
// entry's are deleted after it). ts is the table's state and prev the
// entry it holds under e's key (nil when none), which the caller looked
// up.
func (w *batch) stageIndirect(i int, e *Entry, op writeOp, ts *tableState, prev *Entry) error {
	ps := ts.prof
	prof := ps.p
	t := e.Table
	// Existence first, so that its error wins over the action's.
	switch {
	case op == opInsert && prev != nil:
		return errorf(ErrExists, "table %s: entry %s already exists", t.Name, describeKey(e))
	case op != opInsert && prev == nil:
		if op == opModify {
			return errorf(ErrNotFound, "table %s: no entry %s to modify", t.Name, describeKey(e))
		}
		return errorf(ErrNotFound, "table %s: no entry %s to delete", t.Name, describeKey(e))
	}
	if ind := e.Indirect; ind != nil {
		switch {
		case ind.OneShot != nil:
			if ps.visible > 0 {
				return errorf(ErrInvalid, "table %s: action selector %s is programmed with members and groups; one-shot action sets cannot be mixed in (P4Runtime §9.2.3)", t.Name, prof.Name)
			}
			if err := w.stageOneShot(i, ps, ind, "table "+t.Name+": action set"); err != nil {
				return err
			}
		case ind.Member != 0:
			if ps.oneShots > 0 {
				return errorf(ErrInvalid, "table %s: action selector %s is programmed with one-shot action sets; member references cannot be mixed in (P4Runtime §9.2.3)", t.Name, prof.Name)
			}
			if m := ps.members[ind.Member]; m == nil || m.OneShot {
				return errorf(ErrNotFound, "table %s: member %d of action profile %s does not exist", t.Name, ind.Member, prof.Name)
			}
		case ind.Group != 0:
			if ps.oneShots > 0 {
				return errorf(ErrInvalid, "table %s: action selector %s is programmed with one-shot action sets; group references cannot be mixed in (P4Runtime §9.2.3)", t.Name, prof.Name)
			}
			if g := ps.groups[ind.Group]; g == nil || g.OneShot {
				return errorf(ErrNotFound, "table %s: group %d of action selector %s does not exist", t.Name, ind.Group, prof.Name)
			}
		}
	}
	// The one-shot staging above changes the profile, not the slot:
	// prev is still what ts holds under e's key.
	o, u, err := ts.stage(e, op, prev)
	if err != nil {
		return err
	}
	w.pend = append(w.pend, staged{idx: i, op: o, undo: u})
	if prev != nil && prev.Indirect != nil && prev.Indirect.OneShot != nil && (op == opDelete || e.Indirect != prev.Indirect) {
		w.unstageOneShot(i, ps, prev.Indirect)
	}
	return nil
}

// stageOneShot makes the hidden members and group of a one-shot set and
// points ind at the group.
func (w *batch) stageOneShot(i int, ps *profileState, ind *IndirectAction, what string) error {
	prof := ps.p
	set := ind.OneShot
	if prof.Size > 0 && int64(len(ps.members)+len(set.Actions)) > prof.Size {
		return errorf(ErrFull, "%s: action selector %s is full (%d members)", what, prof.Name, prof.Size)
	}
	gms := make([]GroupMember, len(set.Actions))
	for k := range set.Actions {
		a := &set.Actions[k]
		a.Member = hiddenID(ps, ps.members)
		m := &Member{Profile: prof, ID: a.Member, Action: a.Action, OneShot: true}
		w.pushExt(i, &ExternOp{Kind: ExtInsertMember, Member: m}, ps.putMember(m.ID, nil, m))
		gms[k] = GroupMember{Member: a.Member, Weight: a.Weight, WatchPort: a.WatchPort, LegacyWatch: a.LegacyWatch}
	}
	g := &Group{Profile: prof, ID: hiddenID(ps, ps.groups), Members: gms, OneShot: true, size: groupSize(prof, gms)}
	if err := ps.checkGroupRoom(g, nil, what); err != nil {
		return err
	}
	w.pushExt(i, &ExternOp{Kind: ExtInsertGroup, Group: g}, ps.putGroup(g.ID, nil, g))
	ind.Group = g.ID
	return nil
}

// unstageOneShot deletes the hidden group and members of a one-shot entry
// that left the store.
func (w *batch) unstageOneShot(i int, ps *profileState, ind *IndirectAction) {
	if g := ps.groups[ind.Group]; g != nil {
		w.pushExt(i, &ExternOp{Kind: ExtDeleteGroup, Group: g}, ps.putGroup(g.ID, g, nil))
	}
	for _, a := range ind.OneShot.Actions {
		if m := ps.members[a.Member]; m != nil {
			w.pushExt(i, &ExternOp{Kind: ExtDeleteMember, Member: m}, ps.putMember(m.ID, m, nil))
		}
	}
}
