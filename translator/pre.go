package translator

import (
	"encoding/binary"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// Replica is one copy a multicast group or clone session makes (P4Runtime
// §9.5).
type Replica struct {
	// Port is the egress port: the SDN port of Replica.port, or the
	// deprecated egress_port as given (a device port; 0 is allowed there,
	// as BMv2-era clients use it).
	Port     uint32
	Instance uint32
	// LegacyPort: the replica was written with the deprecated egress_port
	// field, and reads return it that way.
	LegacyPort bool
	// Backups are the backup replicas, most preferred first (v1.5).
	Backups []BackupReplica
}

// BackupReplica is a fallback for a replica whose port is down.
type BackupReplica struct {
	Port     uint32
	Instance uint32
}

// MulticastGroup is a PRE multicast group.
type MulticastGroup struct {
	ID       uint32
	Replicas []Replica
	// Metadata is the controller's opaque metadata.
	Metadata []byte

	proto *p4v1.MulticastGroupEntry
}

// CloneSession is a PRE clone session.
type CloneSession struct {
	ID             uint32
	Replicas       []Replica
	ClassOfService uint32
	// PacketLengthBytes truncates clones to this length; 0 does not.
	PacketLengthBytes int32

	proto *p4v1.CloneSessionEntry
}

// preAllowed: the PRE has no P4Info id, so only a role without object
// restrictions (the default role, or one whose config lists no ids) may
// use it.
func (s *Scope) preAllowed() bool { return s == nil || s.Writable == nil }

func (w *batch) stagePRE(i int, pre *p4v1.PacketReplicationEngineEntry, op writeOp) error {
	if !w.sc.preAllowed() {
		return errorf(ErrPermission, "role %q may not write the packet replication engine (its role config restricts it to listed P4 objects)", w.sc.Role)
	}
	switch x := pre.GetType().(type) {
	case *p4v1.PacketReplicationEngineEntry_MulticastGroupEntry:
		return w.stageMulticast(i, x.MulticastGroupEntry, op)
	case *p4v1.PacketReplicationEngineEntry_CloneSessionEntry:
		return w.stageClone(i, x.CloneSessionEntry, op)
	}
	return errorf(ErrInvalid, "packet replication engine entry: neither multicast_group_entry nor clone_session_entry is set")
}

func (w *batch) stageMulticast(i int, mg *p4v1.MulticastGroupEntry, op writeOp) error {
	id := mg.GetMulticastGroupId()
	what := "multicast group " + itoa(uint64(id))
	if id == 0 {
		return errorf(ErrInvalid, "multicast_group_id 0 is only valid in wildcard reads (P4Runtime §9.5.1)")
	}
	if err := w.need(ExternMulticast, what); err != nil {
		return err
	}
	mcs := w.d.st.multicast
	prev := mcs[id]
	if err := checkPresence(op, prev != nil, what); err != nil {
		return err
	}
	if op == opDelete {
		delete(mcs, id)
		w.pushExt(i, &ExternOp{Kind: ExtDeleteMulticast, Multicast: prev}, func() { mcs[id] = prev })
		return nil
	}
	reps, backups, err := parseReplicas(mg.GetReplicas(), what, true)
	if err != nil {
		return err
	}
	if backups {
		if err := w.need(ExternBackupReplicas, what); err != nil {
			return err
		}
	}
	g := &MulticastGroup{ID: id, Replicas: reps, Metadata: mg.GetMetadata(),
		proto: &p4v1.MulticastGroupEntry{MulticastGroupId: id, Replicas: mg.GetReplicas(), Metadata: mg.GetMetadata()}}
	mcs[id] = g
	x := &ExternOp{Kind: ExtInsertMulticast, Multicast: g}
	if prev != nil {
		x.Kind, x.PrevMulticast = ExtModifyMulticast, prev
	}
	w.pushExt(i, x, func() {
		if prev == nil {
			delete(mcs, id)
		} else {
			mcs[id] = prev
		}
	})
	return nil
}

func (w *batch) stageClone(i int, cs *p4v1.CloneSessionEntry, op writeOp) error {
	id := cs.GetSessionId()
	what := "clone session " + itoa(uint64(id))
	if id == 0 {
		return errorf(ErrInvalid, "session_id 0 is only valid in wildcard reads (P4Runtime §9.5.2)")
	}
	if err := w.need(ExternClone, what); err != nil {
		return err
	}
	css := w.d.st.clones
	prev := css[id]
	if err := checkPresence(op, prev != nil, what); err != nil {
		return err
	}
	if op == opDelete {
		delete(css, id)
		w.pushExt(i, &ExternOp{Kind: ExtDeleteClone, Clone: prev}, func() { css[id] = prev })
		return nil
	}
	if cs.GetPacketLengthBytes() < 0 {
		return errorf(ErrInvalid, "%s: negative packet_length_bytes %d", what, cs.GetPacketLengthBytes())
	}
	reps, backups, err := parseReplicas(cs.GetReplicas(), what, false)
	if err != nil {
		return err
	}
	if backups {
		return errorf(ErrInvalid, "%s: clone sessions have no backup replicas", what)
	}
	c := &CloneSession{ID: id, Replicas: reps, ClassOfService: cs.GetClassOfService(), PacketLengthBytes: cs.GetPacketLengthBytes(),
		proto: &p4v1.CloneSessionEntry{SessionId: id, Replicas: cs.GetReplicas(), ClassOfService: cs.GetClassOfService(), PacketLengthBytes: cs.GetPacketLengthBytes()}}
	css[id] = c
	x := &ExternOp{Kind: ExtInsertClone, Clone: c}
	if prev != nil {
		x.Kind, x.PrevClone = ExtModifyClone, prev
	}
	w.pushExt(i, x, func() {
		if prev == nil {
			delete(css, id)
		} else {
			css[id] = prev
		}
	})
	return nil
}

// parseReplicas checks replicas (P4Runtime §9.5.1): a port in either form,
// (port, instance) unique across replicas and backups, no backup on its
// replica's port. It canonicalises port bytestrings in place, so reads
// return them canonical and in the form (port or egress_port) written.
func parseReplicas(rs []*p4v1.Replica, what string, backupsOK bool) ([]Replica, bool, error) {
	out := make([]Replica, len(rs))
	seen := make(map[[2]uint32]bool, len(rs))
	anyBackup := false
	for i, r := range rs {
		rep := &out[i]
		rep.Instance = r.GetInstance()
		switch x := r.GetPortKind().(type) {
		case *p4v1.Replica_EgressPort:
			rep.Port, rep.LegacyPort = x.EgressPort, true
		case *p4v1.Replica_Port:
			p, err := sdnPort(x.Port, what+": replica "+itoa(uint64(i)))
			if err != nil {
				return nil, false, err
			}
			x.Port = canonicalPort(x.Port)
			rep.Port = p
		default:
			return nil, false, errorf(ErrInvalid, "%s: replica %d has no port (set port or egress_port)", what, i)
		}
		k := [2]uint32{rep.Port, rep.Instance}
		if seen[k] {
			return nil, false, errorf(ErrInvalid, "%s: replica (port %d, instance %d) given twice", what, rep.Port, rep.Instance)
		}
		seen[k] = true
		for j, b := range r.GetBackupReplicas() {
			anyBackup = true
			if !backupsOK {
				break
			}
			p, err := sdnPort(b.GetPort(), what+": replica "+itoa(uint64(i))+": backup "+itoa(uint64(j)))
			if err != nil {
				return nil, false, err
			}
			b.Port = canonicalPort(b.Port)
			if p == rep.Port {
				return nil, false, errorf(ErrInvalid, "%s: replica %d: backup %d is on the replica's own port %d", what, i, j, p)
			}
			k := [2]uint32{p, b.GetInstance()}
			if seen[k] {
				return nil, false, errorf(ErrInvalid, "%s: (port %d, instance %d) given twice among replicas and backups", what, p, b.GetInstance())
			}
			seen[k] = true
			rep.Backups = append(rep.Backups, BackupReplica{Port: p, Instance: b.GetInstance()})
		}
	}
	return out, anyBackup, nil
}

// sdnPort checks an SDN port bytestring (P4Runtime §8.5.1 "Translation of
// Port Numbers"): at most 32 bits, and not 0, which is invalid.
func sdnPort(b []byte, what string) (uint32, error) {
	c, ok := canonical(b, 32)
	if !ok {
		if len(b) == 0 {
			return 0, errorf(ErrInvalid, "%s: empty port", what)
		}
		return 0, errorf(ErrInvalid, "%s: port %s does not fit in 32 bits", what, hexOf(b))
	}
	var buf [4]byte
	copy(buf[4-len(c):], c)
	p := binary.BigEndian.Uint32(buf[:])
	if p == 0 {
		return 0, errorf(ErrInvalid, "%s: SDN port 0 is invalid", what)
	}
	return p, nil
}

// canonicalPort is the canonical form of a valid port bytestring.
func canonicalPort(b []byte) []byte {
	c, _ := canonical(b, 0)
	return c
}

// itoa formats an unsigned number without fmt.
func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
