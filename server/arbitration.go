package server

import (
	"fmt"
	"sync"

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
}

// arbiter chooses the primary controller per role of the one device p4tcd
// serves (P4Runtime §5 "Client Arbitration and Controller Replication").
type arbiter struct {
	maxControllers int
	deviceID       uint64

	// mu guards roles and every roleState and controller in it.
	mu    sync.Mutex
	roles map[string]*roleState
}

func newArbiter(deviceID uint64, maxControllers int) *arbiter {
	return &arbiter{deviceID: deviceID, maxControllers: maxControllers, roles: map[string]*roleState{}}
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
// Any holding a p4tcd.v1.RoleConfig, or nothing (full access).
func parseRoleConfig(role *p4v1.Role) (*p4tcdv1.RoleConfig, error) {
	cfg := role.GetConfig()
	if cfg == nil {
		return nil, nil
	}
	var rc p4tcdv1.RoleConfig
	if err := cfg.UnmarshalTo(&rc); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "role %q: role.config must be a p4tcd.v1.RoleConfig, got %q", role.GetName(), cfg.GetTypeUrl())
	}
	return &rc, nil
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
		a.notifyAllLocked(rs)
	}
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

// scopeOf turns a role config into the translator's scope: the ids it lists
// are all the role may write (Stratum's P4RoleConfig semantics).
func scopeOf(role string, rc *p4tcdv1.RoleConfig) *translator.Scope {
	sc := &translator.Scope{Role: role}
	if rc == nil || (len(rc.GetExclusiveP4Ids()) == 0 && len(rc.GetSharedP4Ids()) == 0) {
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
