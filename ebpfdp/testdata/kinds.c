// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * kinds: a test datapath that reads every table of the "kinds" pipeline
 * and writes what it got back into the frame, for ebpfdp's tests.
 *
 * The frame is Ethernet (type 0x88b5), then struct in, then one struct
 * out per table: act_id (0xffffffff when the read returned NULL), the
 * flag byte, and the first three parameter bytes. The same function runs
 * at tc (bpf_p4tc_tbl_read) and XDP (xdp_p4tc_tbl_read).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "kinds_tables.h"
#include <p4tc_runtime.h>

struct in {
	__u32 port; /* ifindex */
	__u16 vlan;
	__u8 mac[6];
	__u16 vrf;
	__u8 dst6[16];
	__be32 src4, dst4;
	__u8 proto, flags;
	__be16 dport;
} __attribute__((packed));

struct out {
	__u32 act_id;
	__u8 flags;
	__u8 params[3];
} __attribute__((packed));

#define NTABLES 5

static __always_inline void put(struct out *o, struct p4tc_table_entry_act_bpf *a)
{
	if (!a) {
		o->act_id = 0xffffffff;
		return;
	}
	o->act_id = a->act_id;
	o->flags = a->hit | a->is_default_miss_act << 1 | a->is_default_hit_act << 2;
	o->params[0] = a->params[0];
	o->params[1] = a->params[1];
	o->params[2] = a->params[2];
}

#define READ(ctx, TID, KEY)                                                 \
	({                                                                    \
		struct p4tc_table_entry_act_bpf_params p = {.tblid = (TID)}; \
		READ_FN(ctx, &p, sizeof(p), &(KEY), sizeof(KEY));             \
	})

#define KINDS_BODY(ctx, data, end)                                            \
	struct ethhdr *eth = data;                                            \
	struct in *in = (void *)(eth + 1);                                    \
	struct out *o = (void *)(in + 1);                                     \
	if ((void *)(o + NTABLES) > end)                                      \
		return 0;                                                     \
	{                                                                     \
		struct kinds_exact_mix_key k; /* keyless: any key */          \
		__builtin_memset(&k, 0, sizeof(k));                           \
		put(&o[0], READ(ctx, KINDS_KEYLESS_TBLID, k));                \
		k.keysz = 92;                                                 \
		k.port = in->port;                                            \
		k.vlan = in->vlan;                                            \
		__builtin_memcpy(k.mac, in->mac, 6);                          \
		put(&o[1], READ(ctx, KINDS_EXACT_MIX_TBLID, k));              \
	}                                                                     \
	{                                                                     \
		struct kinds_vrf_lpm6_key k;                                  \
		__builtin_memset(&k, 0, sizeof(k));                           \
		k.keysz = 144;                                                \
		k.vrf = in->vrf;                                              \
		__builtin_memcpy(k.dst, in->dst6, 16);                        \
		put(&o[2], READ(ctx, KINDS_VRF_LPM6_TBLID, k));               \
	}                                                                     \
	{                                                                     \
		struct kinds_two_lpm_key k;                                   \
		__builtin_memset(&k, 0, sizeof(k));                           \
		k.keysz = 64;                                                 \
		k.src = in->src4;                                             \
		k.dst = in->dst4;                                             \
		put(&o[3], READ(ctx, KINDS_TWO_LPM_TBLID, k));                \
	}                                                                     \
	{                                                                     \
		struct kinds_classify_key k;                                  \
		__builtin_memset(&k, 0, sizeof(k));                           \
		k.keysz = 27;                                                 \
		k.proto = in->proto;                                          \
		k.flags = in->flags;                                          \
		k.dport = in->dport;                                          \
		put(&o[4], READ(ctx, KINDS_CLASSIFY_TBLID, k));               \
	}

#define READ_FN bpf_p4tc_tbl_read
SEC("tc")
int kinds_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	KINDS_BODY(skb, data, end)
	return TC_ACT_OK;
}
#undef READ_FN

#define READ_FN xdp_p4tc_tbl_read
SEC("xdp")
int kinds_xdp(struct xdp_md *xdp)
{
	void *data = (void *)(long)xdp->data;
	void *end = (void *)(long)xdp->data_end;

	KINDS_BODY(xdp, data, end)
	return XDP_PASS;
}
#undef READ_FN

char _license[] SEC("license") = "Dual BSD/GPL";
