// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Copyright The p4tcd Authors. */

/*
 * conntrack datapath: conntrack.p4 written by hand against P4TC's datapath
 * interface, the way the p4c tc backend writes its C: each table apply
 * fills the table's P4TC key struct and calls bpf_p4tc_tbl_read(); the
 * add_entry() of an add-on-miss table fills P4TC's create params and calls
 * bpf_p4tc_entry_create_on_miss(). On a P4TC kernel those are kfuncs; here
 * p4tc_runtime.h implements them over the maps p4tcd fills, and
 * conntrack_tables.h (p4tcd-gen tables) declares the tables.
 *
 * One program, attached at tc ingress of every port.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "conntrack_tables.h"
#include <p4tc_runtime.h>

SEC("tc")
int p4tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct p4tc_table_entry_act_bpf_params params = {0};
	struct p4tc_table_entry_act_bpf *act;
	struct conntrack_ct_key ct;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u16 sport, dport;
	__u32 peer;
	bool inside;

	/* MainParserImpl */
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	{
		__be16 *ports = (void *)ip + ip->ihl * 4;

		if ((void *)(ports + 2) > end)
			return TC_ACT_OK;
		sport = bpf_ntohs(ports[0]);
		dport = bpf_ntohs(ports[1]);
	}

	/* port_zone.apply() */
	{
		struct conntrack_port_zone_key key;
		struct conntrack_port_zone_value *v;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 32;
		key.input_port = skb->ingress_ifindex;
		params.tblid = CONNTRACK_PORT_ZONE_TBLID;
		act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
		v = (void *)act;
		if (!v || v->act_id != CONNTRACK_PORT_ZONE_ACT_SET_ZONE)
			return TC_ACT_SHOT; /* drop() */
		inside = v->u.set_zone.inside == 1;
		peer = v->u.set_zone.peer;
	}

	/* ct.apply(): the inside address and port first, whichever way. */
	__builtin_memset(&ct, 0, sizeof(ct));
	ct.keysz = 104;
	ct.proto = ip->protocol;
	if (inside) {
		ct.inside_addr = ip->saddr;
		ct.outside_addr = ip->daddr;
		ct.inside_port = sport;
		ct.outside_port = dport;
	} else {
		ct.inside_addr = ip->daddr;
		ct.outside_addr = ip->saddr;
		ct.inside_port = dport;
		ct.outside_port = sport;
	}
	params.tblid = CONNTRACK_CT_TBLID;
	act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &ct, sizeof(ct));
	if (act && act->hit && act->act_id == CONNTRACK_CT_ACT_CT_FLOW)
		return bpf_redirect(peer, 0); /* an established flow */

	/* ct_miss(): only the inside opens flows, where allow permits. */
	if (!inside)
		return TC_ACT_SHOT;
	{
		struct conntrack_allow_key key;

		__builtin_memset(&key, 0, sizeof(key));
		key.keysz = 32;
		key.dst = ip->daddr;
		params.tblid = CONNTRACK_ALLOW_TBLID;
		act = bpf_p4tc_tbl_read(skb, &params, sizeof(params), &key, sizeof(key));
		if (!act || act->act_id != CONNTRACK_ALLOW_ACT_PERMIT)
			return TC_ACT_SHOT; /* deny() */
	}

	/*
	 * permit(): add_entry("ct_flow", {istd.input_port}, profile 0). When
	 * the pool is empty the create fails (-ENOENT, counted by the table)
	 * and the flow goes out untracked: its return traffic is dropped.
	 */
	{
		struct p4tc_table_entry_create_bpf_params__local cp;
		__u32 in_port = skb->ingress_ifindex;

		__builtin_memset(&cp, 0, sizeof(cp));
		cp.act_bpf.act_id = CONNTRACK_CT_ACT_CT_FLOW;
		__builtin_memcpy(cp.act_bpf.params, &in_port, sizeof(in_port));
		cp.tblid = CONNTRACK_CT_TBLID;
		cp.profile_id = 0;
		bpf_p4tc_entry_create_on_miss(skb, &cp, sizeof(cp), &ct, sizeof(ct));
	}
	return bpf_redirect(peer, 0);
}

char _license[] SEC("license") = "Dual BSD/GPL";
