package translator

import (
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
)

// DigestConfig is how the server batches a digest's messages into
// DigestLists (P4Runtime §9.8). It is control-plane state: the datapath
// emits digests whatever it says.
type DigestConfig struct {
	// MaxTimeoutNs is the longest a digest message waits in the buffer.
	MaxTimeoutNs int64
	// MaxListSize is the most messages in a DigestList; 0 is no limit.
	MaxListSize int32
	// AckTimeoutNs is how long sent messages stay in the de-duplication
	// cache without an ack.
	AckTimeoutNs int64
}

// Digest returns the configuration of digest id, and whether the digest is
// enabled (a DigestEntry was inserted and not deleted).
func (d *Device) Digest(id uint32) (DigestConfig, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.st == nil {
		return DigestConfig{}, false
	}
	c := d.st.digests[id]
	if c == nil {
		return DigestConfig{}, false
	}
	return *c, true
}

// stageDigest: INSERT enables the digest with its config, MODIFY changes the
// config of an enabled digest, DELETE disables it (P4Runtime §9.8). No
// backend op: the server batches digests, the datapath only emits them.
func (w *batch) stageDigest(i int, de *p4v1.DigestEntry, op writeOp) error {
	cfg := w.d.cfg
	if de.GetDigestId() == 0 {
		return errorf(ErrInvalid, "digest_id 0 is only valid in wildcard reads")
	}
	id := de.GetDigestId()
	name, ok := cfg.digestNames[id]
	if !ok {
		return errorf(ErrInvalid, "digest id %#x is not a digest of the pipeline%s", id, cfg.kindHint(id))
	}
	what := "digest " + name
	if !w.sc.allows(id) {
		return errorf(ErrPermission, "role %q may not write %s", w.sc.Role, what)
	}
	ds := w.d.st.digests
	prev := ds[id]
	switch op {
	case opInsert:
		if prev != nil {
			return errorf(ErrExists, "%s is already enabled (MODIFY changes its config)", what)
		}
	case opModify, opDelete:
		if prev == nil {
			return errorf(ErrNotFound, "%s is not enabled (INSERT enables it)", what)
		}
	}
	var next *DigestConfig
	if op != opDelete {
		c := de.GetConfig()
		if c == nil {
			return errorf(ErrInvalid, "%s: config is required to %s", what, opName(op))
		}
		if c.GetMaxTimeoutNs() < 0 || c.GetMaxListSize() < 0 || c.GetAckTimeoutNs() < 0 {
			return errorf(ErrInvalid, "%s: negative config value (max_timeout_ns %d, max_list_size %d, ack_timeout_ns %d)", what, c.GetMaxTimeoutNs(), c.GetMaxListSize(), c.GetAckTimeoutNs())
		}
		next = &DigestConfig{MaxTimeoutNs: c.GetMaxTimeoutNs(), MaxListSize: c.GetMaxListSize(), AckTimeoutNs: c.GetAckTimeoutNs()}
	}
	set := func(c *DigestConfig) {
		if c == nil {
			delete(ds, id)
		} else {
			ds[id] = c
		}
	}
	set(next)
	w.pushStore(i, func() { set(prev) })
	return nil
}
