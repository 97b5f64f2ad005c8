/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Copyright The p4tcd Authors. */

/*
 * p4tc_pre.h: the packet replication engine (P4Runtime §9.5) of p4tcd's
 * eBPF runtime, for tc programs (include it after p4tc_runtime.h). P4TC
 * has no PRE; this is p4tcd's.
 *
 *   p4tc_mcast  multicast groups by id: their replicas (port, instance)
 *   p4tc_clones clone sessions by id: replicas and class of service
 *
 * p4tcd writes each group or session whole (the old value is freed after
 * an RCU grace period: a packet replicates to the old replicas or the new
 * ones, never a mix), with the ifindex of each replica's port.
 *
 * Replication is a bounded loop of bpf_clone_redirect(): each replica is a
 * copy of the packet as it is when the call is made, sent out of the
 * replica's port (its egress, like `tc ... action mirred egress mirror`).
 * At most P4TC_MAX_REPLICAS replicas per group or session. The calls
 * change the packet's skb: reload packet pointers afterwards. The XDP
 * tier cannot clone: pass such packets to tc (XDP_PASS).
 *
 * A replica's instance (P4Runtime's egress_rid) tells copies to one port
 * apart: two replicas on a port send two copies. p4tcd has no egress
 * pipeline that could treat them differently.
 */
#ifndef P4TC_PRE_H
#define P4TC_PRE_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef P4TC_MAX_REPLICAS
#define P4TC_MAX_REPLICAS 64
#endif
#ifndef P4TC_MAX_MCAST_GROUPS
#define P4TC_MAX_MCAST_GROUPS 4096
#endif
#ifndef P4TC_MAX_CLONE_SESSIONS
#define P4TC_MAX_CLONE_SESSIONS 1024
#endif

struct p4tc_replica {
	__u32 ifindex;  /* the port's interface */
	__u32 port;     /* its P4 port number */
	__u32 instance; /* P4Runtime's replica instance */
	__u32 pad;
};

struct p4tc_replicas {
	__u32 n;   /* replicas in use */
	__u32 cos; /* clone sessions: class of service, as skb->priority */
	struct p4tc_replica r[P4TC_MAX_REPLICAS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, P4TC_MAX_MCAST_GROUPS);
	__type(key, __u32);
	__type(value, struct p4tc_replicas);
} p4tc_mcast SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, P4TC_MAX_CLONE_SESSIONS);
	__type(key, __u32);
	__type(value, struct p4tc_replicas);
} p4tc_clones SEC(".maps");

struct p4tc__replicate {
	struct __sk_buff *skb;
	struct p4tc_replicas *reps;
	__u32 skip; /* ifindex not to send to; 0 none */
	int sent;
};

static long p4tc__replicate_one(__u32 i, void *ctx)
{
	struct p4tc__replicate *r = ctx;
	struct p4tc_replica *rep;

	if (i >= P4TC_MAX_REPLICAS)
		return 1;
	rep = &r->reps->r[i];
	if (!rep->ifindex || rep->ifindex == r->skip)
		return 0;
	if (bpf_clone_redirect(r->skb, rep->ifindex, 0) == 0)
		r->sent++;
	return 0;
}

static __always_inline int p4tc__replicate(struct __sk_buff *skb, struct p4tc_replicas *reps, __u32 skip)
{
	struct p4tc__replicate r = { .skb = skb, .reps = reps, .skip = skip };
	__u32 n;

	if (!reps)
		return -ENOENT;
	n = reps->n;
	if (n > P4TC_MAX_REPLICAS)
		n = P4TC_MAX_REPLICAS;
	bpf_loop(n, p4tc__replicate_one, &r, 0);
	return r.sent;
}

/*
 * p4tc_multicast sends a copy of the packet to every replica of multicast
 * group group, but those on interface skip_ifindex (pass the ingress
 * ifindex to keep a broadcast off the port it came from; 0 skips none).
 * It returns the copies sent, or -ENOENT when the group does not exist.
 * The packet itself is not consumed: drop it (TC_ACT_SHOT) once
 * replicated, as PSA's multicast does with the original.
 */
static __always_inline int p4tc_multicast(struct __sk_buff *skb, __u32 group, __u32 skip_ifindex)
{
	return p4tc__replicate(skb, bpf_map_lookup_elem(&p4tc_mcast, &group), skip_ifindex);
}

/*
 * p4tc_clone sends a copy of the packet, as it is now, to every replica of
 * clone session session, with the session's class of service in
 * skb->priority (the packet keeps its own). It returns the copies sent,
 * or -ENOENT when the session does not exist. The packet goes on.
 */
static __always_inline int p4tc_clone(struct __sk_buff *skb, __u32 session)
{
	struct p4tc_replicas *reps = bpf_map_lookup_elem(&p4tc_clones, &session);
	__u32 prio = skb->priority;
	int n;

	if (!reps)
		return -ENOENT;
	skb->priority = reps->cos;
	n = p4tc__replicate(skb, reps, 0);
	skb->priority = prio;
	return n;
}

#endif /* P4TC_PRE_H */
