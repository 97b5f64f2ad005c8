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
 *   p4tc_t<id>_stat   PERCPU_ARRAY: hit and miss counters
 *
 * The tables come from a generated header (p4tcd-gen tables) that defines
 * P4TC_TABLES(X) as one X(id, kind, keysz, ksz, psz, entries, masks) per
 * table; include it before this file. bpf_p4tc_tbl_read() switches on the
 * table id, which P4TC datapaths always pass as a constant, so the switch
 * folds away and each call site becomes the lookup of one table.
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

struct p4tc_table_stats {
	__u64 hits;
	__u64 misses;
};

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/*
 * Maps and lookup of one table. Every table has a default slot and
 * counters; the kind adds its entries map.
 */

#define P4TC__COMMON(ID)                                                \
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
		slot = bpf_map_lookup_elem(&p4tc_t##ID##_dflt, &zero);  \
		if (!slot)                                              \
			return 0;                                       \
		return bpf_map_lookup_elem(slot, &zero);                \
	}                                                               \
	static __always_inline void p4tc_t##ID##_hit(void)              \
	{                                                               \
		__u32 zero = 0;                                         \
		struct p4tc_table_stats *st;                            \
		st = bpf_map_lookup_elem(&p4tc_t##ID##_stat, &zero);    \
		if (st)                                                 \
			st->hits++;                                     \
	}

#define P4TC__KEY(ID, KSZ)                                              \
	struct p4tc_t##ID##_key {                                       \
		__u32 keysz;                                            \
		__u32 maskid;                                           \
		__u64 w[((KSZ) - 8) / 8];                               \
	}

#define P4TC__VALUE(ID, PSZ)                                            \
	struct p4tc_t##ID##_value {                                     \
		struct p4tc_act_head act;                               \
		__u8 params[P4TC_PARAMS_PAD(PSZ)];                            \
	}

/* Keyless: the default action is the table. */
#define P4TC__TABLE_KEYLESS(ID, KEYSZ, KSZ, PSZ, NENT, NMASK)           \
	P4TC__COMMON(ID)                                                \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                     \
	{                                                               \
		return p4tc_t##ID##_miss();                             \
	}

/* Exact: the caller's key struct is the hash key. */
#define P4TC__TABLE_EXACT(ID, KEYSZ, KSZ, PSZ, NENT, NMASK)             \
	P4TC__COMMON(ID)                                                \
	P4TC__KEY(ID, KSZ);                                             \
	P4TC__VALUE(ID, PSZ);                                           \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_HASH);                        \
		__uint(max_entries, NENT);                              \
		__type(key, struct p4tc_t##ID##_key);                   \
		__type(value, struct p4tc_t##ID##_value);               \
	} p4tc_t##ID SEC(".maps");                                      \
	static __always_inline struct p4tc_table_entry_act_bpf *        \
	p4tc_t##ID##_read(void *key, __u32 key__sz)                     \
	{                                                               \
		struct p4tc_t##ID##_value *v;                           \
		if (key__sz != (KSZ))                                   \
			return 0;                                       \
		v = bpf_map_lookup_elem(&p4tc_t##ID, key);              \
		if (!v)                                                 \
			return p4tc_t##ID##_miss();                     \
		p4tc_t##ID##_hit();                                     \
		return (struct p4tc_table_entry_act_bpf *)v;            \
	}

/*
 * LPM: the key struct doubles as the trie key. keysz is the trie's
 * prefixlen while the lookup runs (all data bits), maskid is the first 32
 * data bits (always 0), the LPM field is the last field, in network order.
 */
#define P4TC__TABLE_LPM(ID, KEYSZ, KSZ, PSZ, NENT, NMASK)               \
	P4TC__COMMON(ID)                                                \
	P4TC__KEY(ID, KSZ);                                             \
	P4TC__VALUE(ID, PSZ);                                           \
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
		p4tc_t##ID##_hit();                                     \
		return (struct p4tc_table_entry_act_bpf *)v;            \
	}

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
#define P4TC__TABLE_TERNARY(ID, KEYSZ, KSZ, PSZ, NENT, NMASK)                 \
	P4TC__COMMON(ID)                                                      \
	P4TC__KEY(ID, KSZ);                                                   \
	struct p4tc_t##ID##_value {                                           \
		struct p4tc_act_head act;                                     \
		__u8 params[P4TC_PARAMS_PAD(PSZ)];                            \
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
		p4tc_t##ID##_hit();                                           \
		return (struct p4tc_table_entry_act_bpf *)w.best;             \
	}

#define P4TC__TABLE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK)             \
	P4TC__TABLE_##KIND(ID, KEYSZ, KSZ, PSZ, NENT, NMASK)

P4TC_TABLES(P4TC__TABLE)

#define P4TC__CASE(ID, KIND, KEYSZ, KSZ, PSZ, NENT, NMASK)              \
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

#endif /* P4TC_RUNTIME_H */
