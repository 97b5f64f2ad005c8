// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * ctbench: conntrack's tables (examples/conntrack) with a datapath made to
 * measure, for BenchmarkPrivilegedCreate. A UDP frame to port 1 creates
 * the ct entry of a new flow on every run (the source port comes from a
 * counter, the way conntrack's add-on-miss path does it: a miss, then
 * bpf_p4tc_entry_create_on_miss); any other frame looks its own flow up
 * (a hit once the entry exists). Both return the create's result or the
 * act_id.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "../../examples/conntrack/conntrack_tables.h"
#include <p4tc_runtime.h>

/* Shared, not per CPU: a test run may move between CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} bench_flows SEC(".maps");

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = {.tblid = CONNTRACK_CT_TBLID};
	struct p4tc_table_entry_act_bpf *act;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__be16 *ports = (void *)(ip + 1);
	struct conntrack_ct_key ct;
	__u32 zero = 0;
	__u64 *n;

	if ((void *)(ports + 2) > end)
		return TC_ACT_OK;
	__builtin_memset(&ct, 0, sizeof(ct));
	ct.keysz = 104;
	ct.inside_addr = ip->saddr;
	ct.outside_addr = ip->daddr;
	ct.proto = ip->protocol;
	ct.inside_port = bpf_ntohs(ports[0]);
	ct.outside_port = bpf_ntohs(ports[1]);
	if (ct.outside_port == 1) {
		/* A new flow per run: 2^32 source addresses x ports. */
		__u64 flow;

		n = bpf_map_lookup_elem(&bench_flows, &zero);
		if (!n)
			return TC_ACT_OK;
		flow = __sync_fetch_and_add(n, 1);
		ct.inside_addr = bpf_htonl(0x0a000000 | (__u32)(flow >> 16));
		ct.inside_port = (__u16)flow;
	}
	act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &ct, sizeof(ct));
	if (act && act->hit)
		return act->act_id;
	{
		struct p4tc_table_entry_create_bpf_params__local cp;
		__u32 in_port = 1;

		__builtin_memset(&cp, 0, sizeof(cp));
		cp.act_bpf.act_id = CONNTRACK_CT_ACT_CT_FLOW;
		__builtin_memcpy(cp.act_bpf.params, &in_port, sizeof(in_port));
		cp.tblid = CONNTRACK_CT_TBLID;
		return 100 + bpf_p4tc_entry_create_on_miss(skb, &cp, sizeof(cp), &ct, sizeof(ct));
	}
}

char _license[] SEC("license") = "Dual BSD/GPL";
