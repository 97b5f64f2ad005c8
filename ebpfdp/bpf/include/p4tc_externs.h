/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Copyright The p4tcd Authors. */

/*
 * p4tc_externs.h: the P4 externs of p4tcd's eBPF runtime, over maps p4tcd
 * fills and reads (package ebpfdp). p4tc_runtime.h includes it; the
 * generated tables header declares the instances:
 *
 *   P4TC_COUNTERS(X)         X(inst, cells, unit)          p4tc_cnt<inst>
 *   P4TC_METERS(X)           X(inst, cells, unit)          p4tc_mtr<inst>
 *   P4TC_REGISTERS(X)        X(inst, cells, cell size)     p4tc_reg<inst>
 *   P4TC_PROFILES(X)         X(inst, members, buckets)     p4tc_ap<inst>_mbr, _grp
 *   P4TC_VALUE_SETS(X)       X(inst, key size, members)    p4tc_vs<inst>
 *   P4TC_DIRECT_COUNTERS(X)  X(tblid, cells, unit)         p4tc_t<id>_dcnt
 *   P4TC_DIRECT_METERS(X)    X(tblid, cells, unit)         p4tc_t<id>_dmtr
 *
 * inst is the instance's P4TC id: its inst_id in the introspection json
 * when that lists it (the p4c tc backend passes it in ext_params.inst_id),
 * else the low 24 bits of its P4Info id.
 *
 * Where P4TC has a kfunc (counters and meters), the function here has its
 * name, argument structs and results, so C written for P4TC compiles:
 *
 *   bpf_p4tc_extern_count_pktsnbytes/_pkts/_bytes(skb, params, sz, key, ksz)
 *   bpf_p4tc_extern_meter_pkts/_bytes[_color](skb, params, sz, key, ksz)
 *
 * and the xdp_ twins. What P4TC lacks has plain functions: p4tc_counter_count,
 * p4tc_meter_execute, p4tc_register_cell (read and write a register in
 * place), p4tc_action_select (a member of an action profile or selector
 * group), p4tc_hash (selector hashing), p4tc_value_set_match. Multicast
 * and clone sessions are in p4tc_pre.h.
 *
 * docs/ebpf-datapath.md §8 describes the maps, their limits and what p4tcd
 * writes into them.
 */
#ifndef P4TC_EXTERNS_H
#define P4TC_EXTERNS_H

#ifndef P4TC_COUNTERS
#define P4TC_COUNTERS(X)
#endif
#ifndef P4TC_METERS
#define P4TC_METERS(X)
#endif
#ifndef P4TC_REGISTERS
#define P4TC_REGISTERS(X)
#endif
#ifndef P4TC_PROFILES
#define P4TC_PROFILES(X)
#endif
#ifndef P4TC_VALUE_SETS
#define P4TC_VALUE_SETS(X)
#endif
#ifndef P4TC_DIRECT_COUNTERS
#define P4TC_DIRECT_COUNTERS(X)
#endif
#ifndef P4TC_DIRECT_METERS
#define P4TC_DIRECT_METERS(X)
#endif

#ifndef ERANGE
#define ERANGE 34
#endif

/* P4TC's extern ids (the p4c tc backend's ext_id values). */
#define P4TC_EXTERN_COUNTER_ID        0x19000000
#define P4TC_EXTERN_DIRECT_COUNTER_ID 0x1A000000
#define P4TC_EXTERN_METER_ID          0x1B000000
#define P4TC_EXTERN_DIRECT_METER_ID   0x1C000000

/*
 * ext_params.flags: a direct resource (tbl_id names the table, the entry
 * is the one its last lookup matched) or an indexed one (inst_id, index).
 */
#ifndef P4TC_EXT_CNT_DIRECT
#define P4TC_EXT_CNT_DIRECT (1 << 0)
#endif
#ifndef P4TC_EXT_CNT_INDIRECT
#define P4TC_EXT_CNT_INDIRECT (1 << 1)
#endif
#ifndef P4TC_EXT_METER_DIRECT
#define P4TC_EXT_METER_DIRECT (1 << 0)
#endif
#ifndef P4TC_EXT_METER_INDIRECT
#define P4TC_EXT_METER_INDIRECT (1 << 1)
#endif

/* P4TC's extern call arguments and result. */
struct p4tc_ext_bpf_params {
	__u32 pipe_id;
	__u32 ext_id;
	__u32 inst_id;
	__u32 tbl_id;
	__u32 index;
	__u32 flags;
	__u8 in_params[64]; /* meters: the pre-colour (a __u32) */
};

struct p4tc_ext_bpf_val {
	__u32 ext_id;
	__u32 index_id;
	__u32 verdict;
	__u8 out_params[64];
};

#define P4TC_EXT_BPF_PARAMS_SZ sizeof(struct p4tc_ext_bpf_params)

/* What a counter counts (the unit column). */
#define P4TC_UNIT_PACKETS (1 << 0)
#define P4TC_UNIT_BYTES   (1 << 1)
#define P4TC_UNIT_BOTH    (P4TC_UNIT_PACKETS | P4TC_UNIT_BYTES)

/* Meter colours, as PNA_MeterColor_t numbers them (and P4TC returns). */
#define P4TC_METER_RED    0
#define P4TC_METER_GREEN  1
#define P4TC_METER_YELLOW 2

/* ------------------------------------------------------------------ */
/* Counters: per-CPU cells of packets and bytes; p4tcd sums the CPUs.  */

struct p4tc_counter {
	__u64 packets;
	__u64 bytes;
};

#define P4TC__COUNTER_MAP(NAME, CELLS)                          \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);        \
		__uint(max_entries, CELLS);                     \
		__type(key, __u32);                             \
		__type(value, struct p4tc_counter);             \
	} NAME SEC(".maps");

#define P4TC__COUNTER(INST, CELLS, UNIT) P4TC__COUNTER_MAP(p4tc_cnt##INST, CELLS)
#define P4TC__DCOUNTER(ID, CELLS, UNIT) P4TC__COUNTER_MAP(p4tc_t##ID##_dcnt, CELLS)
P4TC_COUNTERS(P4TC__COUNTER)
P4TC_DIRECT_COUNTERS(P4TC__DCOUNTER)

static __always_inline int p4tc__count(struct p4tc_counter *c, __u32 unit, __u32 len)
{
	if (!c)
		return -ERANGE;
	if (unit & P4TC_UNIT_PACKETS)
		c->packets++;
	if (unit & P4TC_UNIT_BYTES)
		c->bytes += len;
	return 0;
}

/* The cell the last lookup of table tblid selected: its entry's, or the
 * default entry's after a miss; 0 without one. */
static __always_inline __u32 p4tc__direct_cell(__u32 tblid)
{
#ifdef P4TC_HAS_DIRECT
	__u32 *cell = bpf_map_lookup_elem(&p4tc_dlast, &tblid);

	return cell ? *cell : 0;
#else
	return 0;
#endif
}

#define P4TC__COUNTER_CASE(INST, CELLS, UNIT)                                 \
	case INST:                                                            \
		return p4tc__count(bpf_map_lookup_elem(&p4tc_cnt##INST, &index), \
				   unit ? unit : (UNIT), len);

/*
 * p4tc_counter_count counts a packet of len bytes in cell index of
 * counter inst: packets, bytes or both as unit says (0: the counter's
 * P4Info unit). 0, or -ERANGE for an index beyond the counter, -ENOENT
 * for an unknown counter. Like `count(index)` of a P4 Counter.
 */
static __always_inline int p4tc_counter_count(__u32 inst, __u32 index, __u32 unit, __u32 len)
{
	switch (inst) {
	P4TC_COUNTERS(P4TC__COUNTER_CASE)
	}
	return -ENOENT;
}

#define P4TC__DCOUNTER_CASE(ID, CELLS, UNIT)                                 \
	case ID:                                                             \
		return p4tc__count(bpf_map_lookup_elem(&p4tc_t##ID##_dcnt, &cell), \
				   unit ? unit : (UNIT), len);

/*
 * p4tc_direct_count counts a packet in the direct counter of table tblid,
 * in the cell of the entry its last lookup matched (the default entry's
 * after a miss). Entries the datapath created have no cell: -ERANGE.
 */
static __always_inline int p4tc_direct_count(__u32 tblid, __u32 unit, __u32 len)
{
	__u32 cell = p4tc__direct_cell(tblid);

	if (!cell)
		return -ERANGE;
	switch (tblid) {
	P4TC_DIRECT_COUNTERS(P4TC__DCOUNTER_CASE)
	}
	return -ENOENT;
}

static __always_inline int p4tc__count_ext(struct p4tc_ext_bpf_params *params, const __u32 params__sz,
					   __u32 unit, __u32 len)
{
	if (!params || params__sz != P4TC_EXT_BPF_PARAMS_SZ)
		return -EINVAL;
	if (params->flags & P4TC_EXT_CNT_DIRECT)
		return p4tc_direct_count(params->tbl_id, unit, len);
	return p4tc_counter_count(params->inst_id, params->index, unit, len);
}

/*
 * P4TC's counter calls. With P4TC_EXT_CNT_INDIRECT in params->flags they
 * count in cell params->index of counter params->inst_id (key is NULL);
 * with P4TC_EXT_CNT_DIRECT in the direct counter of table params->tbl_id,
 * in the cell of the entry its last bpf_p4tc_tbl_read matched on this CPU
 * (P4TC looks key up again; an action only counts for its own table's
 * entry, which is that one). _pkts counts packets, _bytes bytes (the
 * frame, Ethernet header included), _pktsnbytes both.
 */
static __always_inline int
bpf_p4tc_extern_count_pktsnbytes(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
				 const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_BOTH, skb->len);
}

static __always_inline int
bpf_p4tc_extern_count_pkts(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
			   const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_PACKETS, skb->len);
}

static __always_inline int
bpf_p4tc_extern_count_bytes(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
			    const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_BYTES, skb->len);
}

static __always_inline __u32 p4tc__xdp_len(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data;
}

static __always_inline int
xdp_p4tc_extern_count_pktsnbytes(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
				 const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_BOTH, p4tc__xdp_len(ctx));
}

static __always_inline int
xdp_p4tc_extern_count_pkts(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
			   const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_PACKETS, p4tc__xdp_len(ctx));
}

static __always_inline int
xdp_p4tc_extern_count_bytes(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
			    const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__count_ext(params, params__sz, P4TC_UNIT_BYTES, p4tc__xdp_len(ctx));
}

/* ------------------------------------------------------------------ */
/* Meters: token buckets under a spin lock.                            */

/*
 * A meter cell. Tokens are counted in nano-units (a unit is a packet or a
 * byte, by the meter's unit): a bucket gains rate tokens per nanosecond,
 * so rates need no rounding. p4tcd writes the configuration (and full
 * buckets) with BPF_F_LOCK; the datapath updates the buckets under the
 * lock. One lock, not atomics: a decision changes two buckets and the
 * time together, and BPF has no multi-word compare-and-swap; per-CPU
 * buckets would let each CPU pass the whole rate.
 *
 *   mode P4TC_METER_TRTCM (RFC 2698): c fills at cir up to cburst, p at
 *        pir up to pburst. RED if p lacks the packet, else YELLOW if c
 *        lacks it (p pays), else GREEN (both pay).
 *   mode P4TC_METER_SRTCM (RFC 2697): c fills at cir up to cburst and
 *        overflows into p (up to eburst). GREEN if c has the packet (c
 *        pays), else YELLOW if p has it (p pays), else RED. Without
 *        eburst: GREEN or RED.
 *   mode P4TC_METER_NONE: unconfigured, every packet GREEN (P4Runtime's
 *        default).
 * A colour-aware call never improves the colour it is given.
 */
struct p4tc_meter {
	struct bpf_spin_lock lock;
	__u32 mode;
	__u64 cir;    /* units per second */
	__u64 pir;    /* units per second (trTCM) */
	__u64 cap_c;  /* cburst, nano-units */
	__u64 cap_p;  /* pburst (trTCM) or eburst (srTCM), nano-units */
	__u64 fill_c; /* ns to fill bucket c from empty; ~0 when cir is 0 */
	__u64 fill_p; /* ns to fill bucket p (srTCM: c and p) from empty */
	__u64 tc;     /* tokens, nano-units */
	__u64 tp;
	__u64 last;   /* bpf_ktime_get_ns() of the last update */
};

#define P4TC_METER_NONE  0
#define P4TC_METER_TRTCM 1
#define P4TC_METER_SRTCM 2

#define P4TC__NS 1000000000ULL

#define P4TC__METER_MAP(NAME, CELLS)                            \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY);               \
		__uint(max_entries, CELLS);                     \
		__type(key, __u32);                             \
		__type(value, struct p4tc_meter);               \
	} NAME SEC(".maps");

#define P4TC__METER(INST, CELLS, UNIT) P4TC__METER_MAP(p4tc_mtr##INST, CELLS)
#define P4TC__DMETER(ID, CELLS, UNIT) P4TC__METER_MAP(p4tc_t##ID##_dmtr, CELLS)
P4TC_METERS(P4TC__METER)
P4TC_DIRECT_METERS(P4TC__DMETER)

static __always_inline __u64 p4tc__fill(__u64 tokens, __u64 elapsed, __u64 rate, __u64 full, __u64 cap)
{
	if (elapsed >= full)
		return cap;
	tokens += elapsed * rate; /* < cap: elapsed < full = cap / rate */
	return tokens > cap ? cap : tokens;
}

/*
 * p4tc__meter colours a packet of units units (a packet: 1; bytes: its
 * length) that arrives with colour color (P4TC_METER_GREEN when the call
 * is colour-blind).
 */
static __always_inline int p4tc__meter(struct p4tc_meter *m, __u64 units, int color)
{
	__u64 now, el, need = units * P4TC__NS;
	int ret = color;

	if (!m)
		return -ERANGE;
	if (color == P4TC_METER_RED)
		return P4TC_METER_RED;
	now = bpf_ktime_get_ns();
	bpf_spin_lock(&m->lock);
	if (m->mode == P4TC_METER_NONE)
		goto out;
	el = now > m->last ? now - m->last : 0;
	m->last = now;
	if (m->mode == P4TC_METER_TRTCM) {
		m->tc = p4tc__fill(m->tc, el, m->cir, m->fill_c, m->cap_c);
		m->tp = p4tc__fill(m->tp, el, m->pir, m->fill_p, m->cap_p);
		if (m->tp < need) {
			ret = P4TC_METER_RED;
		} else if (color == P4TC_METER_YELLOW || m->tc < need) {
			m->tp -= need;
			ret = P4TC_METER_YELLOW;
		} else {
			m->tp -= need;
			m->tc -= need;
			ret = P4TC_METER_GREEN;
		}
	} else {
		if (el >= m->fill_p) {
			m->tc = m->cap_c;
			m->tp = m->cap_p;
		} else {
			__u64 tc = m->tc + el * m->cir; /* < cap_c + cap_p */

			if (tc > m->cap_c) {
				m->tp += tc - m->cap_c;
				if (m->tp > m->cap_p)
					m->tp = m->cap_p;
				tc = m->cap_c;
			}
			m->tc = tc;
		}
		if (color != P4TC_METER_YELLOW && m->tc >= need) {
			m->tc -= need;
			ret = P4TC_METER_GREEN;
		} else if (m->tp >= need) {
			m->tp -= need;
			ret = P4TC_METER_YELLOW;
		} else {
			ret = P4TC_METER_RED;
		}
	}
out:
	bpf_spin_unlock(&m->lock);
	return ret;
}

#define P4TC__METER_CASE(INST, CELLS, UNIT)                                        \
	case INST:                                                                 \
		return p4tc__meter(bpf_map_lookup_elem(&p4tc_mtr##INST, &index),  \
				   ((UNIT) & P4TC_UNIT_BYTES) ? len : 1, color);

/*
 * p4tc_meter_execute colours a packet of len bytes with cell index of
 * meter inst (its P4Info unit says whether it meters packets or bytes),
 * given its colour so far (P4TC_METER_GREEN for a colour-blind meter): a
 * P4TC_METER_* colour, -ERANGE for an index beyond the meter, -ENOENT for
 * an unknown meter. Like `execute(index)` of a P4 Meter.
 */
static __always_inline int p4tc_meter_execute(__u32 inst, __u32 index, __u32 len, int color)
{
	switch (inst) {
	P4TC_METERS(P4TC__METER_CASE)
	}
	return -ENOENT;
}

#define P4TC__DMETER_CASE(ID, CELLS, UNIT)                                        \
	case ID:                                                                  \
		return p4tc__meter(bpf_map_lookup_elem(&p4tc_t##ID##_dmtr, &cell), \
				   ((UNIT) & P4TC_UNIT_BYTES) ? len : 1, color);

/*
 * p4tc_direct_meter colours a packet with the direct meter of table
 * tblid, in the cell of the entry its last lookup matched (the default
 * entry's after a miss).
 */
static __always_inline int p4tc_direct_meter(__u32 tblid, __u32 len, int color)
{
	__u32 cell = p4tc__direct_cell(tblid);

	if (!cell)
		return -ERANGE;
	switch (tblid) {
	P4TC_DIRECT_METERS(P4TC__DMETER_CASE)
	}
	return -ENOENT;
}

static __always_inline int p4tc__meter_ext(struct p4tc_ext_bpf_params *params, const __u32 params__sz,
					   __u32 len, int aware)
{
	int color = P4TC_METER_GREEN;

	if (!params || params__sz != P4TC_EXT_BPF_PARAMS_SZ)
		return -EINVAL;
	if (aware) {
		color = *(__u32 *)params->in_params;
		if (color < P4TC_METER_RED || color > P4TC_METER_YELLOW)
			return -EINVAL;
	}
	if (params->flags & P4TC_EXT_METER_DIRECT)
		return p4tc_direct_meter(params->tbl_id, len, color);
	return p4tc_meter_execute(params->inst_id, params->index, len, color);
}

/*
 * P4TC's meter calls: the packet's colour (P4TC_METER_RED, _GREEN or
 * _YELLOW) or a negative error. Indexed meters (P4TC_EXT_METER_INDIRECT:
 * params->inst_id, params->index) or direct ones (P4TC_EXT_METER_DIRECT:
 * params->tbl_id, the entry its last lookup matched). _pkts and _bytes
 * name the unit the caller meters in; the meter's P4Info unit decides
 * what is metered. The _color calls are colour-aware: the pre-colour is
 * the __u32 at params->in_params.
 */
static __always_inline int
bpf_p4tc_extern_meter_pkts(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
			   const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, skb->len, 0);
}

static __always_inline int
bpf_p4tc_extern_meter_bytes(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
			    const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, skb->len, 0);
}

static __always_inline int
bpf_p4tc_extern_meter_pkts_color(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
				 const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, skb->len, 1);
}

static __always_inline int
bpf_p4tc_extern_meter_bytes_color(struct __sk_buff *skb, struct p4tc_ext_bpf_params *params,
				  const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, skb->len, 1);
}

static __always_inline int
xdp_p4tc_extern_meter_pkts(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
			   const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, p4tc__xdp_len(ctx), 0);
}

static __always_inline int
xdp_p4tc_extern_meter_bytes(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
			    const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, p4tc__xdp_len(ctx), 0);
}

static __always_inline int
xdp_p4tc_extern_meter_pkts_color(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
				 const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, p4tc__xdp_len(ctx), 1);
}

static __always_inline int
xdp_p4tc_extern_meter_bytes_color(struct xdp_md *ctx, struct p4tc_ext_bpf_params *params,
				  const __u32 params__sz, void *key, const __u32 key__sz)
{
	return p4tc__meter_ext(params, params__sz, p4tc__xdp_len(ctx), 1);
}

/* ------------------------------------------------------------------ */
/* Registers: plain arrays, shared by every CPU.                       */

/*
 * A cell of a register of W bits is the C container of W (__u8, __u16,
 * __u32, __u64) in host byte order for W <= 64, else ceil(W/8) bytes in
 * network order. p4tcd reads and writes the same cells.
 */
#define P4TC__REGISTER(INST, CELLS, SIZE)                       \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_ARRAY);               \
		__uint(max_entries, CELLS);                     \
		__type(key, __u32);                             \
		__type(value, __u8[SIZE]);                      \
	} p4tc_reg##INST SEC(".maps");
P4TC_REGISTERS(P4TC__REGISTER)

#define P4TC__REGISTER_CASE(INST, CELLS, SIZE) \
	case INST:                             \
		return bpf_map_lookup_elem(&p4tc_reg##INST, &index);

/*
 * p4tc_register_cell returns cell index of register inst, to read and
 * write in place (P4 Register read() and write(); atomics work on it), or
 * NULL for an index beyond the register.
 */
static __always_inline void *p4tc_register_cell(__u32 inst, __u32 index)
{
	switch (inst) {
	P4TC_REGISTERS(P4TC__REGISTER_CASE)
	}
	return 0;
}

/*
 * p4tc_register_read(inst, index, &v) and p4tc_register_write(inst, index,
 * v) copy a cell of the type of v: 0, or -ERANGE for an index beyond the
 * register.
 */
#define p4tc_register_read(INST, INDEX, PTR)                            \
	({                                                              \
		void *__cell = p4tc_register_cell((INST), (INDEX));     \
		int __ret = -ERANGE;                                    \
		if (__cell) {                                           \
			__builtin_memcpy((PTR), __cell, sizeof(*(PTR)));\
			__ret = 0;                                      \
		}                                                       \
		__ret;                                                  \
	})

#define p4tc_register_write(INST, INDEX, VAL)                           \
	({                                                              \
		__typeof__(VAL) __v = (VAL);                            \
		void *__cell = p4tc_register_cell((INST), (INDEX));     \
		int __ret = -ERANGE;                                    \
		if (__cell) {                                           \
			__builtin_memcpy(__cell, &__v, sizeof(__v));    \
			__ret = 0;                                      \
		}                                                       \
		__ret;                                                  \
	})

/* ------------------------------------------------------------------ */
/* Port liveness, for watch ports (and the PRE).                       */

#ifndef P4TC_MAX_PORTS
#define P4TC_MAX_PORTS 1024
#endif

/*
 * p4tc_port_down holds the P4 ports whose link is down (not IFF_UP or no
 * carrier), written by p4tcd from netlink link events as they come. A
 * port it does not hold is up. Only pipelines with action selectors have
 * it (the generated header defines P4TC_HAS_SELECTORS).
 */
#ifdef P4TC_HAS_SELECTORS
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, P4TC_MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} p4tc_port_down SEC(".maps");

/* p4tc_port_is_up reports whether P4 port port is up (1) or down (0). */
static __always_inline int p4tc_port_is_up(__u32 port)
{
	return bpf_map_lookup_elem(&p4tc_port_down, &port) == 0;
}
#else
static __always_inline int p4tc_port_is_up(__u32 port)
{
	return 1;
}
#endif

/* ------------------------------------------------------------------ */
/* Action profiles and selectors.                                      */

/*
 * An entry of a table implemented by an action profile holds, instead of
 * an action, a member or a group (act_id P4TC_ACT_MEMBER or
 * P4TC_ACT_GROUP, the id a __u32 at params[0]); p4tc_action_select turns
 * it into the member's action. Members are act_bpf slots, by member id.
 * A group is an array of buckets: each member repeated by its weight
 * (WCMP), interleaved, with its watch port. p4tcd replaces a member or a
 * group whole (NO_PREALLOC hashes free the old value after an RCU grace
 * period), so a packet sees the old one or the new one.
 */
#define P4TC_ACT_MEMBER 0xfffffffeU
#define P4TC_ACT_GROUP  0xfffffffdU

struct p4tc_bucket {
	__u32 member;
	__u32 watch; /* P4 port whose liveness the member depends on; 0 none */
};

#define P4TC__PROFILE(INST, MEMBERS, BUCKETS)                                 \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_HASH);                              \
		__uint(map_flags, BPF_F_NO_PREALLOC);                         \
		__uint(max_entries, MEMBERS);                                 \
		__type(key, __u32);                                           \
		__type(value, struct p4tc_act_slot);                          \
	} p4tc_ap##INST##_mbr SEC(".maps");                                   \
	struct p4tc_ap##INST##_group {                                        \
		__u32 n; /* buckets in use */                                 \
		__u32 pad;                                                    \
		struct p4tc_bucket b[(BUCKETS) ? (BUCKETS) : 1];              \
	};                                                                    \
	struct {                                                              \
		__uint(type, BPF_MAP_TYPE_HASH);                              \
		__uint(map_flags, BPF_F_NO_PREALLOC);                         \
		__uint(max_entries, (BUCKETS) ? (MEMBERS) : 1);               \
		__type(key, __u32);                                           \
		__type(value, struct p4tc_ap##INST##_group);                  \
	} p4tc_ap##INST##_grp SEC(".maps");                                   \
	struct p4tc_ap##INST##_probe {                                        \
		struct p4tc_ap##INST##_group *g;                              \
		__u32 n, start, member;                                       \
	};                                                                    \
	static long p4tc_ap##INST##_step(__u32 i, void *ctx)                  \
	{                                                                     \
		struct p4tc_ap##INST##_probe *p = ctx;                        \
		__u32 j = p->start + i;                                       \
		if (j >= p->n)                                                \
			j -= p->n;                                            \
		if (j >= ((BUCKETS) ? (BUCKETS) : 1))                         \
			return 1;                                             \
		if (p->g->b[j].watch && !p4tc_port_is_up(p->g->b[j].watch))   \
			return 0;                                             \
		p->member = p->g->b[j].member;                                \
		return 1;                                                     \
	}                                                                     \
	static __always_inline struct p4tc_table_entry_act_bpf *              \
	p4tc_ap##INST##_select(struct p4tc_table_entry_act_bpf *act, __u32 hash) \
	{                                                                     \
		struct p4tc_ap##INST##_probe p = {};                          \
		__u32 id;                                                     \
		if (!act)                                                     \
			return 0;                                             \
		if (act->act_id != P4TC_ACT_MEMBER && act->act_id != P4TC_ACT_GROUP) \
			return act;                                           \
		id = *(__u32 *)act->params;                                   \
		if (act->act_id == P4TC_ACT_GROUP) {                          \
			p.g = bpf_map_lookup_elem(&p4tc_ap##INST##_grp, &id); \
			if (!p.g)                                             \
				return 0;                                     \
			p.n = p.g->n;                                         \
			if (p.n == 0 || p.n > ((BUCKETS) ? (BUCKETS) : 1))    \
				return 0;                                     \
			p.start = ((__u64)hash * p.n) >> 32;                  \
			p.member = 0;                                         \
			bpf_loop(p.n, p4tc_ap##INST##_step, &p, 0);           \
			if (!p.member)                                        \
				return 0;                                     \
			id = p.member;                                        \
		}                                                             \
		return bpf_map_lookup_elem(&p4tc_ap##INST##_mbr, &id);        \
	}
P4TC_PROFILES(P4TC__PROFILE)

#define P4TC__PROFILE_CASE(INST, MEMBERS, BUCKETS) \
	case INST:                                 \
		return p4tc_ap##INST##_select(act, hash);

/*
 * p4tc_action_select resolves what a lookup of a table implemented by
 * action profile inst returned: a member's action; for a group, the
 * action of the member hash picks among the group's buckets (weights
 * repeat members), skipping members whose watch port is down (the next
 * bucket is tried, and so on); the action itself when it is not a member
 * or group (a default action). NULL for NULL, for a group that is empty
 * or whose members are all down, and for a member or group that is gone.
 * The result points into a map: read it, never write it.
 */
static __always_inline struct p4tc_table_entry_act_bpf *
p4tc_action_select(__u32 inst, struct p4tc_table_entry_act_bpf *act, __u32 hash)
{
	switch (inst) {
	P4TC_PROFILES(P4TC__PROFILE_CASE)
	}
	return 0;
}

static __always_inline __u32 p4tc__rotl(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/*
 * p4tc_hash hashes len bytes (a constant: the fields a selector hashes,
 * in a struct) into 32 bits that spread well over a selector's buckets:
 * 32-bit words mixed MurmurHash3-style, with its finaliser.
 */
static __always_inline __u32 p4tc_hash(const void *data, const __u32 len)
{
	const __u8 *p = data;
	__u32 h = 0x9747b28cU ^ len, k, i;

#pragma unroll
	for (i = 0; i + 4 <= len && i < 256; i += 4) {
		__builtin_memcpy(&k, p + i, 4);
		k *= 0xcc9e2d51U;
		k = p4tc__rotl(k, 15);
		k *= 0x1b873593U;
		h ^= k;
		h = p4tc__rotl(h, 13);
		h = h * 5 + 0xe6546b64U;
	}
	k = 0;
#pragma unroll
	for (; i < len && i < 256; i++)
		k = (k << 8) | p[i];
	h ^= k * 0xcc9e2d51U;
	h ^= h >> 16;
	h *= 0x85ebca6bU;
	h ^= h >> 13;
	h *= 0xc2b2ae35U;
	h ^= h >> 16;
	return h;
}

/* ------------------------------------------------------------------ */
/* Parser value sets.                                                  */

/*
 * A value set's members are keys like a table's (struct <prefix>_<set>_key
 * of the generated header: keysz, maskid 0, the fields), in a hash.
 */
#define P4TC__VALUE_SET(INST, KSZ, SIZE)                        \
	struct p4tc_vs##INST##_key {                            \
		__u32 keysz;                                    \
		__u32 maskid;                                   \
		__u64 w[((KSZ) - 8) / 8];                       \
	};                                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                \
		__uint(max_entries, SIZE);                      \
		__type(key, struct p4tc_vs##INST##_key);        \
		__type(value, __u8);                            \
	} p4tc_vs##INST SEC(".maps");
P4TC_VALUE_SETS(P4TC__VALUE_SET)

#define P4TC__VALUE_SET_CASE(INST, KSZ, SIZE)                                \
	case INST:                                                           \
		return key__sz == (KSZ) && bpf_map_lookup_elem(&p4tc_vs##INST, key);

/*
 * p4tc_value_set_match reports whether key (key__sz bytes: the set's key
 * struct, zeroed, keysz set, fields filled) is a member of value set inst:
 * a parser's `select(...) { set: state; }`.
 */
static __always_inline int p4tc_value_set_match(__u32 inst, void *key, const __u32 key__sz)
{
	switch (inst) {
	P4TC_VALUE_SETS(P4TC__VALUE_SET_CASE)
	}
	return 0;
}

#endif /* P4TC_EXTERNS_H */
