// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * The externs on a ternary table (testdata/xtss.p4info.txt): look the IPv4
 * destination up, count and meter the entry that matched, resolve its
 * member or group (hashing the source), and return 100 + the member's tag
 * (1: the default action; 3: RED; 4: no member).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xtss_tables.h"
#include <p4tc_runtime.h>

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = { .tblid = XTSS_ACL_TBLID };
	struct p4tc_ext_bpf_params ext;
	struct p4tc_table_entry_act_bpf *act;
	struct xtss_acl_value *v;
	struct xtss_acl_key key;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be32 src;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	src = ip->saddr;
	__builtin_memset(&key, 0, sizeof(key));
	key.keysz = 32;
	key.dst = ip->daddr;
	act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
	if (!act)
		return 0;
	__builtin_memset(&ext, 0, sizeof(ext));
	ext.tbl_id = XTSS_ACL_TBLID;
	ext.flags = P4TC_EXT_CNT_DIRECT;
	bpf_p4tc_extern_count_pktsnbytes(skb, &ext, sizeof(ext), &key, sizeof(key));
	ext.flags = P4TC_EXT_METER_DIRECT;
	if (bpf_p4tc_extern_meter_pkts(skb, &ext, sizeof(ext), &key, sizeof(key)) == P4TC_METER_RED)
		return 3;
	act = p4tc_action_select(XTSS_PROFILE_SEL, act, p4tc_hash(&src, sizeof(src)));
	v = (void *)act;
	if (!v)
		return 4;
	if (v->act_id == XTSS_ACL_ACT_FWD)
		return 100 + v->u.fwd.tag;
	return 1;
}

char _license[] SEC("license") = "Dual BSD/GPL";
