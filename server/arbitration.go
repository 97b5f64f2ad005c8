package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	p4tcdv1 "github.com/p4tcd/p4tcd/proto/p4tcd/v1"
	"github.com/p4tcd/p4tcd/translator"
)

// electionID is a P4Runtime Uint128 election id.
type electionID struct{ high, low uint64 }

func idOf(u *p4v1.Uint128) electionID { return electionID{u.GetHigh(), u.GetLow()} }

func (a electionID) less(b electionID) bool {
	return a.high < b.high || (a.high == b.high && a.low < b.low)
}

func (a electionID) proto() *p4v1.Uint128 { return &p4v1.Uint128{High: a.high, Low: a.low} }

func (a electionID) String() string {
	if a.high == 0 {
		return fmt.Sprintf("%d", a.low)
	}
	return fmt.Sprintf("(%d,%d)", a.high, a.low)
}

// controller is one live StreamChannel that has sent a successful
// MasterArbitrationUpdate.
type controller struct {
	role  string
	id    electionID
	hasID bool // an unset election id is lower than any id (§5.3)
	out   *sendQueue
}

// roleState is the arbitration state of one (device, role) pair.
type roleState struct {
	name        string
	controllers map[*controller]struct{}
	primary     *controller
	// past is election_id_past: the highest election id ever seen for the
	// role (P4Runtime §5.3); everPrimary says whether there was a primary.
	past        electionID
	everPrimary bool
	// config is the role.config the latest primary sent, and its decoded
	// form (nil: full access).
	config *anypb.Any
	parsed *p4tcdv1.RoleConfig
	// lostAt is when the role last lost its primary; zero while it has
	// one or never had one.
	lostAt time.Time
}

// arbiter chooses the primary controller per role of the one device p4tcd
// serves (P4Runtime §5 "Client Arbitration and Controller Replication").
type arbiter struct {
	maxControllers int
	deviceID       uint64
	log            *slog.Logger
	m              *metrics

	// mu guards roles and every roleState and controller in it.
	mu    sync.Mutex
	roles map[string]*roleState
}

func newArbiter(deviceID uint64, maxControllers int, log *slog.Logger, m *metrics) *arbiter {
	return &arbiter{deviceID: deviceID, maxControllers: maxControllers, log: log, m: m, roles: map[string]*roleState{}}
}

// roleLocked returns the state of a role, creating it.
func (a *arbiter) roleLocked(name string) *roleState {
	rs := a.roles[name]
	if rs == nil {
		rs = &roleState{name: name, controllers: map[*controller]struct{}{}}
		a.roles[name] = rs
	}
	return rs
}

// parseRoleConfig checks role.config against the scheme p4tcd accepts: an
// Any holding a p4tcd.v1.RoleConfig, or nothing (full access). It checks
// the config on its own, as Stratum does: the default role has none, and a
// packet_in_filter needs receives_packet_ins, a metadata id and a value,
// which it returns in canonical form. Conflicts with other roles are
// checked by checkExclusiveLocked.
func parseRoleConfig(role *p4v1.Role) (*p4tcdv1.RoleConfig, error) {
	cfg := role.GetConfig()
	if cfg == nil {
		return nil, nil
	}
	if role.GetName() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "the default role has full access and cannot have a role config: name the role")
	}
	var rc p4tcdv1.RoleConfig
	if err := cfg.UnmarshalTo(&rc); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "role %q: role.config must be a p4tcd.v1.RoleConfig, got %q", role.GetName(), cfg.GetTypeUrl())
	}
	if f := rc.GetPacketInFilter(); f != nil {
		switch {
		case !rc.GetReceivesPacketIns():
			return nil, status.Errorf(codes.InvalidArgument, "role %q: role config has a packet_in_filter but receives_packet_ins is false", role.GetName())
		case f.GetMetadataId() == 0:
			return nil, status.Errorf(codes.InvalidArgument, "role %q: packet_in_filter has no metadata_id", role.GetName())
		case len(f.GetValue()) == 0:
			return nil, status.Errorf(codes.InvalidArgument, "role %q: packet_in_filter has an empty value", role.GetName())
		}
		f.Value = canonicalBytes(f.GetValue())
	}
	return &rc, nil
}

// canonicalBytes strips the leading zero bytes of a P4Runtime bytestring,
// keeping at least one (P4Runtime §8.3 "Bytestrings").
func canonicalBytes(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// checkExclusiveLocked refuses a role config that claims what another role
// holds (Stratum's P4RoleConfig rules): rc's exclusive ids may appear in no
// other role's config, and its shared ids in no other role's exclusive
// list. The other roles' configs are the ones their primaries set last;
// they stay in force after those controllers leave, as the spec has the
// server remember role.config per role.
func (a *arbiter) checkExclusiveLocked(role string, rc *p4tcdv1.RoleConfig) error {
	if rc == nil {
		return nil
	}
	for _, other := range a.roles {
		if other.name == role || other.parsed == nil {
			continue
		}
		theirs := other.parsed
		for _, id := range rc.GetExclusiveP4Ids() {
			if slices.Contains(theirs.GetExclusiveP4Ids(), id) {
				return status.Errorf(codes.InvalidArgument, "role %q: P4 id %#x is exclusive to role %q", role, id, other.name)
			}
			if slices.Contains(theirs.GetSharedP4Ids(), id) {
				return status.Errorf(codes.InvalidArgument, "role %q: P4 id %#x cannot be exclusive: role %q shares it", role, id, other.name)
			}
		}
		for _, id := range rc.GetSharedP4Ids() {
			if slices.Contains(theirs.GetExclusiveP4Ids(), id) {
				return status.Errorf(codes.InvalidArgument, "role %q: P4 id %#x cannot be shared: it is exclusive to role %q", role, id, other.name)
			}
		}
	}
	return nil
}

// arbitrate handles one MasterArbitrationUpdate from c (first is true for a
// stream's first one; c is then not yet a member). It returns the status
// error that terminates the stream, if any (P4Runtime §5.3).
func (a *arbiter) arbitrate(c *controller, upd *p4v1.MasterArbitrationUpdate, first bool, missingIDAsZero bool) error {
	roleName := upd.GetRole().GetName()
	if upd.GetRole().GetId() != 0 && roleName == "" {
		return status.Errorf(codes.InvalidArgument, "role.id is deprecated and not supported: name the role")
	}
	rc, err := parseRoleConfig(upd.GetRole())
	if err != nil {
		return err
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if !first && roleName != c.role {
		return status.Errorf(codes.FailedPrecondition, "stream is for role %q, not %q: open a new stream to change role", c.role, roleName)
	}
	if err := a.checkExclusiveLocked(roleName, rc); err != nil {
		return err
	}
	rs := a.roleLocked(roleName)
	id, hasID := idOf(upd.GetElectionId()), upd.GetElectionId() != nil
	if !hasID && missingIDAsZero && rs.primary == nil && !rs.everPrimary {
		// PI-compatible: a controller without an election id takes (0,0)
		// while nobody is primary (PTF's base test relies on it).
		id, hasID = electionID{}, true
	}
	if hasID {
		for o := range rs.controllers {
			if o != c && o.hasID && o.id == id {
				return status.Errorf(codes.InvalidArgument, "election id %v is already used by another controller of role %q", id, roleName)
			}
		}
	}
	if first {
		if len(rs.controllers) >= a.maxControllers {
			return status.Errorf(codes.ResourceExhausted, "role %q already has %d controllers, the most p4tcd accepts", roleName, a.maxControllers)
		}
		c.role = roleName
		rs.controllers[c] = struct{}{}
	}
	c.id, c.hasID = id, hasID

	wasPrimary := rs.primary == c
	if hasID && (!rs.everPrimary || !id.less(rs.past)) {
		// Becomes or stays primary; its role config becomes the role's.
		if !wasPrimary {
			a.electedLocked(rs, id)
		}
		rs.primary = c
		rs.past = id
		rs.everPrimary = true
		rs.config, rs.parsed = upd.GetRole().GetConfig(), rc
		a.notifyAllLocked(rs)
		return nil
	}
	if wasPrimary {
		// The primary downgraded itself: nobody is primary now.
		rs.primary = nil
		a.lostLocked(rs, "downgraded")
		a.notifyAllLocked(rs)
		return nil
	}
	a.notifyLocked(rs, c)
	return nil
}

// leave removes c from its role; if it was primary every other controller
// learns that there is none.
func (a *arbiter) leave(c *controller) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.roles[c.role]
	if rs == nil {
		return
	}
	if _, ok := rs.controllers[c]; !ok {
		return
	}
	delete(rs.controllers, c)
	if rs.primary == c {
		rs.primary = nil
		a.lostLocked(rs, "left")
		a.notifyAllLocked(rs)
	}
}

// electedLocked logs and counts a new primary of rs, with election id id
// (rs still holds the previous primary, if any); a role that was without a
// primary reports how long (the failover time when its primary had left).
func (a *arbiter) electedLocked(rs *roleState, id electionID) {
	var vacant time.Duration
	attrs := []any{"role", rs.name, "election_id", id.String()}
	switch {
	case rs.primary != nil:
		attrs = append(attrs, "replaces", rs.primary.id.String())
	case !rs.lostAt.IsZero():
		vacant = time.Since(rs.lostAt)
		attrs = append(attrs, "without_primary_for", vacant)
	}
	rs.lostAt = time.Time{}
	a.log.Info("primary elected", attrs...)
	a.m.arbitrationChange(eventElected, vacant)
}

// lostLocked logs and counts rs losing its primary.
func (a *arbiter) lostLocked(rs *roleState, why string) {
	rs.lostAt = time.Now()
	a.log.Info("primary lost", "role", rs.name, "reason", why, "election_id_past", rs.past.String())
	a.m.arbitrationChange(eventLost, 0)
}

// notifyAllLocked sends every controller of the role its arbitration status,
// backups first and the primary last (§5.3 step 1.b).
func (a *arbiter) notifyAllLocked(rs *roleState) {
	for c := range rs.controllers {
		if c != rs.primary {
			a.notifyLocked(rs, c)
		}
	}
	if rs.primary != nil {
		a.notifyLocked(rs, rs.primary)
	}
}

// notifyLocked sends c the advisory message of §5.4 "Client Arbitration
// Notifications".
func (a *arbiter) notifyLocked(rs *roleState, c *controller) {
	upd := &p4v1.MasterArbitrationUpdate{DeviceId: a.deviceID}
	if rs.name != "" || rs.config != nil {
		upd.Role = &p4v1.Role{Name: rs.name, Config: rs.config}
	}
	if rs.everPrimary {
		upd.ElectionId = rs.past.proto()
	}
	switch {
	case rs.primary == c:
		upd.Status = &rpcstatus.Status{Code: int32(code.Code_OK), Message: "you are the primary"}
	case rs.primary != nil:
		upd.Status = &rpcstatus.Status{Code: int32(code.Code_ALREADY_EXISTS), Message: "another controller is the primary"}
	default:
		upd.Status = &rpcstatus.Status{Code: int32(code.Code_NOT_FOUND), Message: "there is no primary"}
	}
	c.out.push(&p4v1.StreamMessageResponse{Update: &p4v1.StreamMessageResponse_Arbitration{Arbitration: upd}}, false)
}

// authorize checks that a Write or SetForwardingPipelineConfig comes from the
// primary of its role (§12: NOT_FOUND for an unknown role, PERMISSION_DENIED
// for anyone but the primary) and returns the role's scope.
func (a *arbiter) authorize(role string, eid *p4v1.Uint128, missingIDAsZero bool) (*translator.Scope, *p4tcdv1.RoleConfig, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.roles[role]
	if rs == nil {
		if role == "" && missingIDAsZero && eid == nil {
			// PI-compatible: nobody ever arbitrated; a client without an
			// election id may write.
			return &translator.Scope{}, nil, nil
		}
		if role != "" {
			return nil, nil, status.Errorf(codes.NotFound, "unknown role %q: no controller has arbitrated for it", role)
		}
		return nil, nil, status.Errorf(codes.PermissionDenied, "not the primary: no controller has become primary (send a MasterArbitrationUpdate first)")
	}
	if rs.primary == nil {
		return nil, nil, status.Errorf(codes.PermissionDenied, "not the primary: role %q has no primary controller", role)
	}
	id, hasID := idOf(eid), eid != nil
	if !hasID && missingIDAsZero {
		id, hasID = electionID{}, true
	}
	if !hasID || id != rs.primary.id {
		return nil, nil, status.Errorf(codes.PermissionDenied, "not the primary: election id %v is not the primary's of role %q", describeID(eid), role)
	}
	return scopeOf(role, rs.parsed), rs.parsed, nil
}

func describeID(u *p4v1.Uint128) string {
	if u == nil {
		return "unset"
	}
	return idOf(u).String()
}

// readScope is the scope a Read of the role sees; unknown roles see all.
func (a *arbiter) readScope(role string) *translator.Scope {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rs := a.roles[role]; rs != nil {
		return scopeOf(role, rs.parsed)
	}
	return &translator.Scope{Role: role}
}

// scopeOf turns a role config into the translator's scope: without a
// config the role has full access; with one, the ids it lists are all the
// role may write and read (Stratum's P4RoleConfig semantics: a config that
// lists nothing allows nothing).
func scopeOf(role string, rc *p4tcdv1.RoleConfig) *translator.Scope {
	sc := &translator.Scope{Role: role}
	if pl, ok := translator.PlacementOf(rc.GetPlacement()); ok {
		// The role's entries go to the tiers its config names.
		sc.Placement = &pl
	}
	if rc == nil {
		return sc
	}
	sc.Writable = map[uint32]bool{}
	for _, id := range rc.GetExclusiveP4Ids() {
		sc.Writable[id] = true
	}
	for _, id := range rc.GetSharedP4Ids() {
		sc.Writable[id] = true
	}
	return sc
}

// isPrimary reports whether c is its role's primary.
func (a *arbiter) isPrimary(c *controller) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := a.roles[c.role]
	return rs != nil && rs.primary == c
}

// packetInTargets returns the controllers a PacketIn with metadata md goes
// to: the primary of every role whose config lets it receive PacketIns
// (P4Runtime "Packet I/O": only primaries receive them). A role without a
// config receives every PacketIn; one with a config only if
// receives_packet_ins is set and, when it has a packet_in_filter, md
// carries that metadata id with that value (compared in canonical form).
func (a *arbiter) packetInTargets(md []*p4v1.PacketMetadata) []*controller {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*controller
	for _, rs := range a.roles {
		if rs.primary != nil && receivesPacketIn(rs.parsed, md) {
			out = append(out, rs.primary)
		}
	}
	return out
}

// receivesPacketIn applies a role config to a PacketIn's metadata.
func receivesPacketIn(rc *p4tcdv1.RoleConfig, md []*p4v1.PacketMetadata) bool {
	if rc == nil {
		return true
	}
	if !rc.GetReceivesPacketIns() {
		return false
	}
	f := rc.GetPacketInFilter()
	if f == nil {
		return true
	}
	for _, m := range md {
		if m.GetMetadataId() == f.GetMetadataId() && bytes.Equal(canonicalBytes(m.GetValue()), f.GetValue()) {
			return true
		}
	}
	return false
}
