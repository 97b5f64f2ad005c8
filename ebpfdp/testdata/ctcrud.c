// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * ctcrud: conntrack's tables (examples/conntrack) with the ct table's
 * data-path update and delete permissions added (ctcrud.json), for
 * TestPrivilegedDatapathUpdateDelete. The frame's UDP destination port
 * picks what the datapath does to the ct entry of its flow (inside =
 * source address and port, outside = destination address, outside port
 * 80):
 *   1  create it (bpf_p4tc_entry_create_on_miss, ct_flow(the ifindex the
 *      frame came in on)): returns 100 + the call's result;
 *   2  update it (bpf_p4tc_entry_update, the same): 200 + result;
 *   3  delete it (bpf_p4tc_entry_delete): 300 + result;
 *   otherwise look it up: on a hit act_id * 1000 + ct_flow's in_port, on
 *   a miss 0.
 * Results are 0 or a negative errno, so 98 is 100 - ENOENT.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ctcrud_tables.h"
#include <p4tc_runtime.h>

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = {.tblid = CONNTRACK_CT_TBLID};
	struct p4tc_table_entry_create_bpf_params__local cp;
	struct conntrack_ct_value *v;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be16 *ports = (void *)(ip + 1);
	struct conntrack_ct_key ct;
	__u32 in_port = skb->ingress_ifindex;
	__u16 op;

	if ((void *)(ports + 2) > end)
		return TC_ACT_OK;
	__builtin_memset(&ct, 0, sizeof(ct));
	ct.keysz = 104;
	ct.inside_addr = ip->saddr;
	ct.outside_addr = ip->daddr;
	ct.proto = ip->protocol;
	ct.inside_port = bpf_ntohs(ports[0]);
	ct.outside_port = 80;
	op = bpf_ntohs(ports[1]);

	__builtin_memset(&cp, 0, sizeof(cp));
	cp.act_bpf.act_id = CONNTRACK_CT_ACT_CT_FLOW;
	cp.tblid = CONNTRACK_CT_TBLID;
	__builtin_memcpy(cp.act_bpf.params, &in_port, sizeof(in_port));
	switch (op) {
	case 1:
		return 100 + bpf_p4tc_entry_create_on_miss(skb, &cp, sizeof(cp), &ct, sizeof(ct));
	case 2:
		return 200 + bpf_p4tc_entry_update(skb, &cp, sizeof(cp), &ct, sizeof(ct));
	case 3:
		return 300 + bpf_p4tc_entry_delete(skb, &cp, sizeof(cp), &ct, sizeof(ct));
	}
	v = (void *)bpf_p4tc_tbl_read(skb, &params, sizeof(params), &ct, sizeof(ct));
	if (!v || !v->hit)
		return 0;
	return v->act_id * 1000 + v->u.ct_flow.inside_port;
}

char _license[] SEC("license") = "Dual BSD/GPL";
