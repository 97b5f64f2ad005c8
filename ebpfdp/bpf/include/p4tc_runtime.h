/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Copyright The p4tcd Authors. */

/*
 * p4tc_runtime.h: P4TC's datapath interface over plain BPF maps.
 *
 * A datapath written for P4TC calls the kfunc bpf_p4tc_tbl_read() (tc) or
 * xdp_p4tc_tbl_read() (XDP) with {pipeid, tblid} and a P4TC key blob. On a
 * stock kernel there is no P4TC module, so this header provides functions
 * with the same names, argument structs and return struct, implemented over
 * maps that p4tcd (package ebpfdp) fills:
 *
 *   p4tc_t<id>        entries: HASH (exact), LPM_TRIE (one LPM field),
 *                     HASH keyed by the masked key (ternary: tuple space)
 *   p4tc_t<id>_masks  ternary only: ARRAY_OF_MAPS whose single slot holds the
 *                     current mask list (replaced whole, never edited)
 *   p4tc_t<id>_mprio  ternary only: the top priority of each mask (mmapable)
 *   p4tc_t<id>_dflt   ARRAY_OF_MAPS whose single slot holds the default miss
 *                     action (replaced whole, never edited: no torn reads)
 *   p4tc_t<id>_stat   PERCPU_ARRAY: hit, miss, created and failed-create
 *                     counters
 *   p4tc_t<id>_pool   exact only: the pool of datapath-created entries,
 *                     {cap, used}, mmapable (p4tcd sets cap, frees slots)
 *   p4tc_t<id>_dcnt   tables with direct resources (P4TC_TF_DIRECT): their
 *   p4tc_t<id>_dmtr   direct counter and meter cells (p4tc_externs.h)
 *
 * The P4 externs (counters, meters, registers, action selectors, value
 * sets) are in p4tc_externs.h, which this header includes; the packet
 * replication engine is in p4tc_pre.h.
 *
 * The tables come from a generated header (p4tcd-gen tables) that defines
 * P4TC_TABLES(X) as one X(id, kind, keysz, ksz, psz, entries, masks, flags,
 * acts) per table; include it before this file. bpf_p4tc_tbl_read() switches
 * on the table id, which P4TC datapaths always pass as a constant, so the
 * switch folds away and each call site becomes the lookup of one table.
 *
 * Entries the datapath creates (bpf_p4tc_entry_create_on_miss and friends,
 * PNA add-on-miss) go into exact tables whose permissions let the datapath
 * create (flag P4TC_TF_DATA_CREATE), drawing a slot from the table's pool;
 * they are always dynamic: p4tcd deletes them when they stay unhit for the
 * aging of their timer profile. Tables with idle timeouts or datapath
 * creates (P4TC_TF_AGED) keep, in every entry, the time of its last hit.
 *
 * docs/ebpf-datapath.md describes the map layouts and limits.
 */
#ifndef P4TC_RUNTIME_H
#define P4TC_RUNTIME_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef P4TC_TABLES
#error "include the generated <pipeline>_tables.h (p4tcd-gen tables) before p4tc_runtime.h"
#endif

/* The errnos the entry calls return (negated), as in <linux/errno.h>. */
#ifndef EPERM
#define EPERM 1
#endif
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef EEXIST
#define EEXIST 17
#endif
#ifndef EINVAL
#define EINVAL 22
#endif
#ifndef EOPNOTSUPP
#define EOPNOTSUPP 95
#endif

/* P4TC's argument and result structs (include/net/p4tc.h). */

struct p4tc_table_entry_act_bpf_params {
	__u32 pipeid;
	__u32 tblid;
};

/* The p4c tc backend names its copy of the params struct with __local. */
#define p4tc_table_entry_act_bpf_params__local p4tc_table_entry_act_bpf_params

struct __attribute__((__packed__)) p4tc_table_entry_act_bpf {
	__u32 act_id;
	__u32 hit:1,
	      is_default_miss_act:1,
	      is_default_hit_act:1;
	__u8 params[124];
};

/*
 * The arguments of the entry create, update and delete calls: the action
 * of the new entry, the timer profile whose aging it gets, and the ids of
 * the table. P4TC's filter fields (handle, chain, classid, proto, prio)
 * name the p4 classifier instance; the runtime does not use them.
 */
struct p4tc_table_entry_create_bpf_params {
	struct p4tc_table_entry_act_bpf act_bpf;
	__u32 profile_id;
	__u32 pipeid;
	__u32 tblid;
	__u32 handle;
	__u32 chain;
	__u32 classid;
	__u16 proto;
	__u16 prio;
};

#define p4tc_table_entry_create_bpf_params__local p4tc_table_entry_create_bpf_params

enum {
	P4TC_ENTRY_CREATE_BPF_PARAMS_SZ = 160,
	P4TC_ENTRY_ACT_BPF_PARAMS_SZ = 8,
};

_Static_assert(sizeof(struct p4tc_table_entry_create_bpf_params) == P4TC_ENTRY_CREATE_BPF_PARAMS_SZ,
	       "P4TC's create params are 160 bytes");

struct p4tc_table_entry_key {
	__u32 keysz;  /* bits of the key fields */
	__u32 maskid; /* 0 in lookups */
	__u8 fa_key[] __attribute__((aligned(8)));
};

/* Table kinds (P4TC_TABLE_TYPE_*), plus KEYLESS for tables without key. */
#define P4TC_KIND_KEYLESS 0
#define P4TC_KIND_EXACT   1
#define P4TC_KIND_LPM     2
#define P4TC_KIND_TERNARY 3

/* Largest number of masks of a ternary table. */
#define P4TC_MAX_MASKS 1024

/* Table flags (the generated header's flags column). */
#define P4TC_TF_AGED        (1 << 0) /* entries record their last hit */
#define P4TC_TF_DATA_CREATE (1 << 1) /* the datapath may create entries */
#define P4TC_TF_DATA_UPDATE (1 << 2) /* ... update the entries it created */
#define P4TC_TF_DATA_DELETE (1 << 3) /* ... delete the entries it created */
#define P4TC_TF_DIRECT      (1 << 4) /* a direct counter or meter: entries carry a cell */

/*
 * A hit writes the time into the entry only when it moved by more than
 * this much since the last write, so a busy entry's cache line is written
 * a few times a second, not once per packet.
 */
#ifndef P4TC_HIT_RESOLUTION_NS
#define P4TC_HIT_RESOLUTION_NS 100000000ULL
#endif

#define P4TC_PAD8(n) (((n) + 7) & ~7)

/*
 * The head of every entry value: struct p4tc_table_entry_act_bpf without
 * its params. That struct is packed, so its three bit-fields take one
 * byte: the params start at offset 5 and the struct is 129 bytes, in P4TC
 * and in the value structs the p4c tc backend generates alike.
 */
struct __attribute__((__packed__)) p4tc_act_head {
	__u32 act_id;
	__u8 flags; /* bit 0 hit, bit 1 default miss, bit 2 default hit */
};

/* A default action slot: an act_bpf, spelled without bit-fields for BTF. */
struct __attribute__((__packed__)) p4tc_act_slot {
	struct p4tc_act_head act;
	__u8 params[124];
};

_Static_assert(sizeof(struct p4tc_act_slot) == sizeof(struct p4tc_table_entry_act_bpf),
	       "a slot is an act_bpf");

/* Entry values: the head, the params, padding to 8 bytes. */
#define P4TC_PARAMS_PAD(PSZ) (P4TC_PAD8(5 + (PSZ)) - 5)

/*
 * The tail of the entries of P4TC_TF_AGED tables, after the params (at an
 * 8-byte boundary): when the entry was last hit, and for entries the
 * datapath created, their timer profile.
 */
struct p4tc_aged {
	__u64 last_hit;   /* bpf_ktime_get_coarse_ns() of the last hit or write */
	__u32 profile_id; /* datapath-created entries: their timer profile */
	__u32 flags;      /* P4TC_AGED_* */
};

#define P4TC_AGED_DATAPATH (1 << 0) /* created by the datapath */

/* Bytes of the aged tail in a table's entry values. */
#define P4TC_AGED_SZ(FLAGS) (((FLAGS) & P4TC_TF_AGED) ? sizeof(struct p4tc_aged) : 0)

/*
 * The tail of the entries of P4TC_TF_DIRECT tables, after the aged tail
 * (for ternary tables before the priority and owner): the cell of the
 * entry's direct counter and meter (p4tc_t<id>_dcnt, p4tc_t<id>_dmtr).
 * Cell 1 is the default entry's; 0 is no cell (entries the datapath
 * creates). p4tcd allocates the cells.
 */
struct p4tc_direct {
	__u32 cell;
	__u32 pad;
};

#define P4TC_DIRECT_SZ(FLAGS) (((FLAGS) & P4TC_TF_DIRECT) ? sizeof(struct p4tc_direct) : 0)

/* The direct cell of the default entry. */
#define P4TC_DIRECT_DEFAULT 1

struct p4tc_table_stats {
	__u64 hits;
	__u64 misses;
	__u64 created;       /* entries the datapath created */
	__u64 create_failed; /* creates refused: pool empty, entry exists... */
};

/* The pool of an exact table's datapath-created entries. */
struct p4tc_pool {
	__u32 cap;  /* slots: the device config's datapath_pool_size */
	__u32 used; /* slots taken; p4tcd gives them back when entries go */
};

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* p4tc_pool_release gives back a slot of an entry the datapath deleted,
 * never leaving used below zero: should used ever be undercounted (an entry
 * created or deleted while p4tcd recounted the pool after a restart), a
 * plain decrement would wrap it and the pool would look full for good. A
 * decrement that finds zero or less is taken back at once (BPF atomics with
 * fetch, -mcpu=v3): "or less" because two releases racing at zero see 0 and
 * then -1, and both must take theirs back. A create racing with them may
 * see the pool full once. */
static __always_inline void p4tc_pool_release(struct p4tc_pool *pool)
{
	if ((__s32)__sync_fetch_and_sub(&pool->used, 1) <= 0)
		__sync_fetch_and_add(&pool->used, 1);
}

/*
 * Direct resources count the entry the last lookup of their table
 * matched: a hit records the entry's cell, a miss the default entry's, in
 * p4tc_dlast (per CPU, by table id), where the counter and meter calls of
 * p4tc_externs.h find it. A P4 action can only use its own table's direct
 * resources, so that entry is the one the action runs for.
 */
#ifdef P4TC_HAS_DIRECT
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, P4TC_MAX_TBLID + 1);
	__type(key, __u32);
	__type(value, __u32);
} p4tc_dlast SEC(".maps");

static __always_inline void p4tc__direct_last(__u32 tblid, __u32 cell)
{
	__u32 *last = bpf_map_lookup_elem(&p4tc_dlast, &tblid);

	if (last)
		*last = cell;
}
#else
static __always_inline void p4tc__direct_last(__u32 tblid, __u32 cell)
{
}
#endif

/*
 * Maps and lookup of one table. Every table has a default slot and
 * counters; the kind adds its entries map.
 */

#define P4TC__COMMON(ID, PSZ, FLAGS)                                    \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);               \
		__uint(max_entries, 1);                                 \
		__type(key, __u32);                                     \
		__array(values, struct {                                \
			__uint(type, BPF_MAP_TYPE_ARRAY);               \
			__uint(max_entries, 1);                         \
			__type(key, __u32);                             \
			__type(value, __u8[sizeof(struct p4tc_act_slot)]); \
		});                                                     \
	} p4tc_t##ID##_dflt SEC(".maps");                               \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                \
		__uint(max_entries, 1);                                 \
		__type(key, __u32);                                     \
		__type(value, struct p4tc_table_stats);                 \
	} p4tc_t##ID##_stat SEC(".maps");                               \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_miss(void)                                         \
	{                                                               \
		__u32 zero = 0;                                         \
		struct p4tc_table_stats *st;                            \
		void *slot;                                             \
		st = bpf_map_lookup_elem(&p4tc_t##ID##_stat, &zero);    \
		if (st)                                                 \
			st->misses++;                                   \
		if ((FLAGS) & P4TC_TF_DIRECT)                           \
			p4tc__direct_last(ID, P4TC_DIRECT_DEFAULT);     \
		slot = bpf_map_lookup_elem(&p4tc_t##ID##_dflt, &zero);  \
		if (!slot)                                              \
			return 0;                                       \
		return bpf_map_lookup_elem(slot, &zero);                \
	}                                                               \
	static __always_inline void p4tc_t##ID##_hit(void *v)           \
	{                                                               \
		__u32 zero = 0;                                         \
		struct p4tc_table_stats *st;                            \
		st = bpf_map_lookup_elem(&p4tc_t##ID##_stat, &zero);    \
		if (st)                                                 \
			st->hits++;                                     \
		if ((FLAGS) & P4TC_TF_AGED) {                           \
			struct p4tc_aged *ag = v + P4TC_PAD8(5 + (PSZ)); \
			__u64 now = bpf_ktime_get_coarse_ns();          \
			if (now - ag->last_hit > P4TC_HIT_RESOLUTION_NS) \
				ag->last_hit = now;                     \
		}                                                       \
		if ((FLAGS) & P4TC_TF_DIRECT) {                         \
			struct p4tc_direct *d = v + P4TC_PAD8(5 + (PSZ)) + \
						P4TC_AGED_SZ(FLAGS);    \
			p4tc__direct_last(ID, d->cell);                 \
		}                                                       \
	}                                                               \
	static __always_inline struct p4tc_table_stats *                \
	p4tc_t##ID##_stats(void)                                        \
	{                                                               \
		__u32 zero = 0;                                         \
		return bpf_map_lookup_elem(&p4tc_t##ID##_stat, &zero);  \
	}

#define P4TC__KEY(ID, KSZ)                                              \
	struct p4tc_t##ID##_key {                                       \
		__u32 keysz;                                            \
		__u32 maskid;                                           \
		__u64 w[((KSZ) - 8) / 8];                               \
	}

#define P4TC__VALUE(ID, PSZ, FLAGS)                                     \
	struct p4tc_t##ID##_value {                                     \
		struct p4tc_act_head act;                               \
		__u8 params[P4TC_PARAMS_PAD(PSZ)];                      \
		__u8 aged[P4TC_AGED_SZ(FLAGS)];                         \
		__u8 direct[P4TC_DIRECT_SZ(FLAGS)];                     \
	}

/*
 * Entry writes from the datapath. Only exact tables hold entries the
 * datapath creates (as in P4TC); the other kinds refuse with -EINVAL.
 */
#define P4TC__NO_WRITES(ID)                                             \
	static __always_inline int                                      \
	p4tc_t##ID##_create(struct p4tc_table_entry_create_bpf_params *params, \
			    void *key, __u32 key__sz)                   \
	{                                                               \
		return -EINVAL;                                         \
	}                                                               \
	static __always_inline int                                      \
	p4tc_t##ID##_update(struct p4tc_table_entry_create_bpf_params *params, \
			    void *key, __u32 key__sz)                   \
	{                                                               \
		return -EINVAL;                                         \
	}                                                               \
	static __always_inline int                                      \
	p4tc_t##ID##_delete(void *key, __u32 key__sz)                   \
	{                                                               \
		return -EINVAL;                                         \
	}

/*
 * Exact tables: create takes a slot of the pool (-ENOENT when there is
 * none left, as P4TC answers when its preallocated actions run out) and
 * inserts the entry if its key is new (-EEXIST otherwise); the entry is
 * dynamic, aged by its timer profile. Update changes the action of an
 * entry the datapath created (-ENOENT when there is none); delete removes
 * one and gives its slot back. Entries the controller wrote are the
 * controller's: update and delete refuse them with -EPERM. The permission
 * bits of the table (its introspection permissions, data-path C, U and D)
 * gate each call (-EPERM), as in P4TC.
 */
#define P4TC__EXACT_WRITES(ID, KEYSZ, KSZ, PSZ, FLAGS, ACTS)                     \
	static __always_inline int                                               \
	p4tc_t##ID##_check(struct p4tc_table_entry_create_bpf_params *params,    \
			   void *key, __u32 key__sz)                             \
	{                                                                        \
		__u32 act = params->act_bpf.act_id;                              \
		if (key__sz != (KSZ) ||                                          \
		    ((struct p4tc_table_entry_key *)key)->keysz != (KEYSZ))      \
			return -EINVAL;                                          \
		if (act >= 64 || !(((__u64)(ACTS) >> act) & 1))                  \
			return -EINVAL;                                          \
		return 0;                                                        \
	}                                                                        \
	static __always_inline void                                              \
	p4tc_t##ID##_fill(struct p4tc_t##ID##_value *v,                          \
			  struct p4tc_table_entry_create_bpf_params *params,     \
			  __u32 profile, __u64 last_hit)                         \
	{                                                                        \
		struct p4tc_aged *ag = (void *)v + P4TC_PAD8(5 + (PSZ));         \
		__builtin_memset(v, 0, sizeof(*v));                              \
		v->act.act_id = params->act_bpf.act_id;                          \
		v->act.flags = 1;                                                \
		__builtin_memcpy(v->params, params->act_bpf.params, (PSZ));      \
		ag->last_hit = last_hit;                                         \
		ag->profile_id = profile;                                        \
		ag->flags = P4TC_AGED_DATAPATH;                                  \
	}                                                                        \
	static __always_inline int                                               \
	p4tc_t##ID##_insert(struct p4tc_table_entry_create_bpf_params *params,   \
			    void *key)                                           \
	{                                                                        \
		struct p4tc_t##ID##_value v;                                     \
		struct p4tc_pool *pool;                                          \
		__u32 zero = 0;                                                  \
		int err;                                                         \
		pool = bpf_map_lookup_elem(&p4tc_t##ID##_pool, &zero);           \
		if (!pool)                                                       \
			return -ENOENT;                                          \
		if (__sync_fetch_and_add(&pool->used, 1) >= pool->cap) {         \
			__sync_fetch_and_sub(&pool->used, 1);                    \
			return -ENOENT;                                          \
		}                                                                \
		p4tc_t##ID##_fill(&v, params, params->profile_id,                \
				  bpf_ktime_get_coarse_ns());                    \
		err = bpf_map_update_elem(&p4tc_t##ID, key, &v, BPF_NOEXIST);    \
		if (err)                                                         \
			__sync_fetch_and_sub(&pool->used, 1);                    \
		return err;                                                      \
	}                                                                        \
	static __always_inline int                                               \
	p4tc_t##ID##_create(struct p4tc_table_entry_create_bpf_params *params,   \
			    void *key, __u32 key__sz)                            \
	{                                                                        \
		struct p4tc_table_stats *st;                                     \
		int err;                                                         \
		if (!((FLAGS) & P4TC_TF_DATA_CREATE))                            \
			return -EPERM;                                           \
		err = p4tc_t##ID##_check(params, key, key__sz);                  \
		if (!err)                                                        \
			err = p4tc_t##ID##_insert(params, key);                  \
		st = p4tc_t##ID##_stats();                                       \
		if (st) {                                                        \
			if (err)                                                 \
				st->create_failed++;                             \
			else                                                     \
				st->created++;                                   \
		}                                                                \
		return err;                                                      \
	}                                                                        \
	static __always_inline int                                               \
	p4tc_t##ID##_update(struct p4tc_table_entry_create_bpf_params *params,   \
			    void *key, __u32 key__sz)                            \
	{                                                                        \
		struct p4tc_t##ID##_value v, *old;                               \
		struct p4tc_aged *ag;                                            \
		int err;                                                         \
		if (!((FLAGS) & P4TC_TF_DATA_UPDATE))                            \
			return -EPERM;                                           \
		err = p4tc_t##ID##_check(params, key, key__sz);                  \
		if (err)                                                         \
			return err;                                              \
		old = bpf_map_lookup_elem(&p4tc_t##ID, key);                     \
		if (!old)                                                        \
			return -ENOENT;                                          \
		ag = (void *)old + P4TC_PAD8(5 + (PSZ));                         \
		if (!(ag->flags & P4TC_AGED_DATAPATH))                           \
			return -EPERM;                                           \
		p4tc_t##ID##_fill(&v, params, params->profile_id,                \
				  bpf_ktime_get_coarse_ns());                    \
		return bpf_map_update_elem(&p4tc_t##ID, key, &v, BPF_EXIST);     \
	}                                                                        \
	static __always_inline int                                               \
	p4tc_t##ID##_delete(void *key, __u32 key__sz)                            \
	{                                                                        \
		struct p4tc_t##ID##_value *old;                                  \
		struct p4tc_pool *pool;                                          \
		struct p4tc_aged *ag;                                            \
		__u32 zero = 0;                                                  \
		int err;                                                         \
		if (!((FLAGS) & P4TC_TF_DATA_DELETE))                            \
			return -EPERM;                                           \
		if (key__sz != (KSZ) ||                                          \
		    ((struct p4tc_table_entry_key *)key)->keysz != (KEYSZ))      \
			return -EINVAL;                                          \
		old = bpf_map_lookup_elem(&p4tc_t##ID, key);                     \
		if (!old)                                                        \
			return -ENOENT;                                          \
		ag = (void *)old + P4TC_PAD8(5 + (PSZ));                         \
		if (!(ag->flags & P4TC_AGED_DATAPATH))                           \
			return -EPERM;                                           \
		err = bpf_map_delete_elem(&p4tc_t##ID, key);                     \
		pool = bpf_map_lookup_elem(&p4tc_t##ID##_pool, &zero);           \
		if (!err && pool)                                                \
			p4tc_pool_release(pool);                                 \
		return err;                                                      \
	}

/* Keyless: the default action is the table. */
#define P4TC__TABLE_KEYLESS(ID, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	P4TC__COMMON(ID, PSZ, (FLAGS) & P4TC_TF_DIRECT)                 \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                     \
	{                                                               \
		return p4tc_t##ID##_miss();                             \
	}                                                               \
	P4TC__NO_WRITES(ID)

/* Exact: the caller's key struct is the hash key. */
#define P4TC__TABLE_EXACT(ID, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	P4TC__COMMON(ID, PSZ, FLAGS)                                    \
	P4TC__KEY(ID, KSZ);                                             \
	P4TC__VALUE(ID, PSZ, FLAGS);                                    \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_HASH);                        \
		__uint(max_entries, NENT);                              \
		__type(key, struct p4tc_t##ID##_key);                   \
		__type(value, struct p4tc_t##ID##_value);               \
	} p4tc_t##ID SEC(".maps");                                      \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_ARRAY);                       \
		__uint(map_flags, BPF_F_MMAPABLE);                      \
		__uint(max_entries, 1);                                 \
		__type(key, __u32);                                     \
		__type(value, struct p4tc_pool);                        \
	} p4tc_t##ID##_pool SEC(".maps");                               \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                     \
	{                                                               \
		struct p4tc_t##ID##_value *v;                           \
		if (key__sz != (KSZ))                                   \
			return 0;                                       \
		v = bpf_map_lookup_elem(&p4tc_t##ID, key);              \
		if (!v)                                                 \
			return p4tc_t##ID##_miss();                     \
		p4tc_t##ID##_hit(v);                                    \
		return (struct p4tc_table_entry_act_bpf *)v;            \
	}                                                               \
	P4TC__EXACT_WRITES(ID, KEYSZ, KSZ, PSZ, FLAGS, ACTS)

/*
 * LPM: the key struct doubles as the trie key. keysz is the trie's
 * prefixlen while the lookup runs (all data bits), maskid is the first 32
 * data bits (always 0), the LPM field is the last field, in network order.
 */
#define P4TC__TABLE_LPM(ID, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	P4TC__COMMON(ID, PSZ, FLAGS)                                    \
	P4TC__KEY(ID, KSZ);                                             \
	P4TC__VALUE(ID, PSZ, FLAGS);                                    \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_LPM_TRIE);                    \
		__uint(map_flags, BPF_F_NO_PREALLOC);                   \
		__uint(max_entries, NENT);                              \
		__type(key, struct p4tc_t##ID##_key);                   \
		__type(value, struct p4tc_t##ID##_value);               \
	} p4tc_t##ID SEC(".maps");                                      \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                     \
	{                                                               \
		struct p4tc_table_entry_key *k = key;                   \
		struct p4tc_t##ID##_value *v;                           \
		__u32 saved;                                            \
		if (key__sz != (KSZ))                                   \
			return 0;                                       \
		saved = k->keysz;                                       \
		k->keysz = ((KSZ) - 4) * 8;                             \
		v = bpf_map_lookup_elem(&p4tc_t##ID, key);              \
		k->keysz = saved;                                       \
		if (!v)                                                 \
			return p4tc_t##ID##_miss();                     \
		p4tc_t##ID##_hit(v);                                    \
		return (struct p4tc_table_entry_act_bpf *)v;            \
	}                                                               \
	P4TC__NO_WRITES(ID)

/*
 * Ternary (tuple space search): the mask list names each mask in use by its
 * id (the maskid of its keys) and its slot in p4tc_t<id>_mprio, which holds
 * the highest priority of the mask's entries. Each step masks the key, sets
 * maskid and looks the result up in the hash; the best priority wins, and a
 * mask whose entries cannot beat the best so far is skipped. bpf_loop runs
 * the walk; the kernel inlines it because the callback is a constant.
 *
 * The list is replaced whole (map-in-map) when masks come and go; the
 * priorities change in place, one aligned 32-bit store each (the array is
 * mmapable and p4tcd writes it with atomic stores), so the walk never
 * depends on the order of the list for its answer.
 */
#define P4TC__TABLE_TERNARY(ID, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS)    \
	P4TC__COMMON(ID, PSZ, FLAGS)                                          \
	P4TC__KEY(ID, KSZ);                                                   \
	struct p4tc_t##ID##_value {                                           \
		struct p4tc_act_head act;                                     \
		__u8 params[P4TC_PARAMS_PAD(PSZ)];                            \
		__u8 aged[P4TC_AGED_SZ(FLAGS)];                               \
		__u8 direct[P4TC_DIRECT_SZ(FLAGS)];                           \
		__u32 prio;                                                   \
		__u32 owner;                                                  \
	};                                                                    \
	struct p4tc_t##ID##_mask {                                            \
		__u32 id;                                                     \
		__u32 slot;                                                   \
		__u64 w[((KSZ) - 8) / 8];                                     \
	};                                                                    \
	struct p4tc_t##ID##_masklist {                                        \
		__u32 n;                                                      \
		__u32 pad;                                                    \
		struct p4tc_t##ID##_mask m[NMASK];                            \
	};                                                                    \
	_Static_assert((NMASK) >= 1 && (NMASK) <= P4TC_MAX_MASKS,            \
		       "table " #ID ": masks out of range");                  \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_HASH);                              \
		__uint(max_entries, NENT);                                    \
		__type(key, struct p4tc_t##ID##_key);                         \
		__type(value, struct p4tc_t##ID##_value);                     \
	} p4tc_t##ID SEC(".maps");                                            \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);                     \
		__uint(max_entries, 1);                                       \
		__type(key, __u32);                                           \
		__array(values, struct {                                      \
			__uint(type, BPF_MAP_TYPE_ARRAY);                     \
			__uint(max_entries, 1);                               \
			__type(key, __u32);                                   \
			__type(value,                                         \
			       __u8[sizeof(struct p4tc_t##ID##_masklist)]);   \
		});                                                           \
	} p4tc_t##ID##_masks SEC(".maps");                                    \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_ARRAY);                             \
		__uint(map_flags, BPF_F_MMAPABLE);                            \
		__uint(max_entries, NMASK);                                   \
		__type(key, __u32);                                           \
		__type(value, __u32);                                         \
	} p4tc_t##ID##_mprio SEC(".maps");                                    \
	struct p4tc_t##ID##_walk {                                            \
		const struct p4tc_t##ID##_key *key;                           \
		const struct p4tc_t##ID##_masklist *ml;                       \
		struct p4tc_t##ID##_value *best;                              \
		__u32 bestprio;                                               \
	};                                                                    \
	static long p4tc_t##ID##_step(__u32 i, void *ctx)                     \
	{                                                                     \
		struct p4tc_t##ID##_walk *w = ctx;                            \
		const struct p4tc_t##ID##_mask *m;                            \
		struct p4tc_t##ID##_key mk;                                   \
		struct p4tc_t##ID##_value *v;                                 \
		__u32 *top;                                                   \
		if (i >= (NMASK))                                             \
			return 1;                                             \
		m = &w->ml->m[i];                                             \
		if (w->best) {                                                \
			top = bpf_map_lookup_elem(&p4tc_t##ID##_mprio,        \
						  &m->slot);                  \
			if (top && w->bestprio >= *top)                       \
				return 0;                                     \
		}                                                             \
		mk.keysz = (KEYSZ);                                           \
		mk.maskid = m->id;                                            \
		for (int j = 0; j < ((KSZ) - 8) / 8; j++)                     \
			mk.w[j] = w->key->w[j] & m->w[j];                     \
		v = bpf_map_lookup_elem(&p4tc_t##ID, &mk);                    \
		if (v && (!w->best || v->prio > w->bestprio)) {               \
			w->best = v;                                          \
			w->bestprio = v->prio;                                \
		}                                                             \
		return 0;                                                     \
	}                                                                     \
	static __always_inline struct p4tc_table_entry_act_bpf *              \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                           \
	{                                                                     \
		struct p4tc_t##ID##_walk w = {.key = key};                    \
		__u32 zero = 0;                                               \
		void *slot;                                                   \
		if (key__sz != (KSZ))                                         \
			return 0;                                             \
		slot = bpf_map_lookup_elem(&p4tc_t##ID##_masks, &zero);       \
		if (slot)                                                     \
			w.ml = bpf_map_lookup_elem(slot, &zero);              \
		if (w.ml && w.ml->n)                                          \
			bpf_loop(w.ml->n, p4tc_t##ID##_step, &w, 0);          \
		if (!w.best)                                                  \
			return p4tc_t##ID##_miss();                           \
		p4tc_t##ID##_hit(w.best);                                     \
		return (struct p4tc_table_entry_act_bpf *)w.best;             \
	}                                                                     \
	P4TC__NO_WRITES(ID)

#define P4TC__TABLE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	P4TC__TABLE_##KIND(ID, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS)

P4TC_TABLES(P4TC__TABLE)

#define P4TC__CASE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	case ID:                                                        \
		return p4tc_t##ID##_read(key, key__sz);

static __always_inline struct p4tc_table_entry_act_bpf *
p4tc__tbl_read(struct p4tc_table_entry_act_bpf_params *params,
	       const __u32 params__sz, void *key, const __u32 key__sz)
{
	if (params__sz != sizeof(*params))
		return 0;
	switch (params->tblid) {
	P4TC_TABLES(P4TC__CASE)
	}
	return 0;
}

/*
 * bpf_p4tc_tbl_read looks key up in table params->tblid and returns the
 * action of the matching entry (hit = 1) or the table's default miss action
 * (is_default_miss_act = 1), or NULL when the table has no default action or
 * the arguments do not fit the table. The result points into a map: read
 * it, never write it. P4TC's kfunc of the same name does the same with
 * kernel tables.
 */
static __always_inline struct p4tc_table_entry_act_bpf *
bpf_p4tc_tbl_read(struct __sk_buff *skb,
		  struct p4tc_table_entry_act_bpf_params *params,
		  const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__tbl_read(params, params__sz, key, key__sz);
}

/* xdp_p4tc_tbl_read is bpf_p4tc_tbl_read for XDP programs. */
static __always_inline struct p4tc_table_entry_act_bpf *
xdp_p4tc_tbl_read(struct xdp_md *ctx,
		  struct p4tc_table_entry_act_bpf_params *params,
		  const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__tbl_read(params, params__sz, key, key__sz);
}

#define P4TC__CREATE_CASE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	case ID:                                                                \
		return p4tc_t##ID##_create(params, key, key__sz);
#define P4TC__UPDATE_CASE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	case ID:                                                                \
		return p4tc_t##ID##_update(params, key, key__sz);
#define P4TC__DELETE_CASE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK, FLAGS, ACTS) \
	case ID:                                                                \
		return p4tc_t##ID##_delete(key, key__sz);

static __always_inline int
p4tc__entry_create(struct p4tc_table_entry_create_bpf_params *params,
		   const __u32 params__sz, void *key, const __u32 key__sz)
{
	if (!params || !key || params__sz != P4TC_ENTRY_CREATE_BPF_PARAMS_SZ)
		return -EINVAL;
	switch (params->tblid) {
	P4TC_TABLES(P4TC__CREATE_CASE)
	}
	return -ENOENT;
}

static __always_inline int
p4tc__entry_update(struct p4tc_table_entry_create_bpf_params *params,
		   const __u32 params__sz, void *key, const __u32 key__sz)
{
	if (!params || !key || params__sz != P4TC_ENTRY_CREATE_BPF_PARAMS_SZ)
		return -EINVAL;
	switch (params->tblid) {
	P4TC_TABLES(P4TC__UPDATE_CASE)
	}
	return -ENOENT;
}

static __always_inline int
p4tc__entry_delete(struct p4tc_table_entry_create_bpf_params *params,
		   const __u32 params__sz, void *key, const __u32 key__sz)
{
	if (!params || !key || params__sz != P4TC_ENTRY_CREATE_BPF_PARAMS_SZ)
		return -EINVAL;
	switch (params->tblid) {
	P4TC_TABLES(P4TC__DELETE_CASE)
	}
	return -ENOENT;
}

/*
 * bpf_p4tc_entry_create inserts key into exact table params->tblid with
 * the action params->act_bpf (act_id and params; the flags are ignored) as
 * a dynamic entry aged by timer profile params->profile_id, taking a slot
 * of the table's pool. 0 on success; -ENOENT when the pool is empty (or
 * the table unknown), -EEXIST when the key is in the table, -EPERM without
 * the table's data-path create permission, -EINVAL for a key or action
 * that does not fit. P4TC's kfunc of the same name does the same with
 * kernel tables and preallocated action instances.
 */
static __always_inline int
bpf_p4tc_entry_create(struct __sk_buff *skb,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__entry_create(params, params__sz, key, key__sz);
}

/*
 * bpf_p4tc_entry_create_on_miss is bpf_p4tc_entry_create, for the miss
 * path of add-on-miss tables (PNA add_entry()); P4TC's kfuncs are the same
 * code too.
 */
static __always_inline int
bpf_p4tc_entry_create_on_miss(struct __sk_buff *skb,
			      struct p4tc_table_entry_create_bpf_params *params,
			      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__entry_create(params, params__sz, key, key__sz);
}

/*
 * bpf_p4tc_entry_update replaces the action (and timer profile) of an
 * entry the datapath created; -ENOENT when there is none, -EPERM for an
 * entry the controller wrote or without data-path update permission.
 */
static __always_inline int
bpf_p4tc_entry_update(struct __sk_buff *skb,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__entry_update(params, params__sz, key, key__sz);
}

/*
 * bpf_p4tc_entry_delete removes an entry the datapath created and frees
 * its pool slot; -ENOENT when there is none, -EPERM for an entry the
 * controller wrote or without data-path delete permission.
 */
static __always_inline int
bpf_p4tc_entry_delete(struct __sk_buff *skb,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__entry_delete(params, params__sz, key, key__sz);
}

/*
 * The XDP variants. In p4tcd the XDP tier holds only controller entries
 * (placed hw or both): entries the datapath creates live in the software
 * (tc) tier, where a miss in XDP passes the packet (XDP_PASS) and the tc
 * program creates them. So these calls refuse with -EOPNOTSUPP.
 */
static __always_inline int
xdp_p4tc_entry_create(struct xdp_md *ctx,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return -EOPNOTSUPP;
}

static __always_inline int
xdp_p4tc_entry_create_on_miss(struct xdp_md *ctx,
			      struct p4tc_table_entry_create_bpf_params *params,
			      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return -EOPNOTSUPP;
}

static __always_inline int
xdp_p4tc_entry_update(struct xdp_md *ctx,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return -EOPNOTSUPP;
}

static __always_inline int
xdp_p4tc_entry_delete(struct xdp_md *ctx,
		      struct p4tc_table_entry_create_bpf_params *params,
		      const __u32 params__sz, void *key, const __u32 key__sz)
{
	return -EOPNOTSUPP;
}

/* The P4 externs: counters, meters, registers, action selectors... */
#include "p4tc_externs.h"

#endif /* P4TC_RUNTIME_H */
